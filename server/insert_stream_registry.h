// The live InsertStream calls of one server: admits at most
// --max_insert_streams at once and closes streams that sat idle longer
// than --insert_stream_idle_s.
//
// An InsertStream holds a reactor, a request pool and (while a read is
// pending) a slot in gRPC's transport; without a bound, clients that open
// streams and walk away hold that memory for ever. A stream counts as idle
// while it has nothing in flight (every batch read was acknowledged) and no
// message arrived for the timeout; such a stream is finished with
// UNAVAILABLE naming the flag, and the client opens a new one. A stream
// with a batch in flight (say, waiting out a slow fsync) is never idle.
//
// A sweeper thread checks every stream about four times per timeout (at
// least every second). Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/periodic_task.h"

namespace peakknn::server {

class InsertStreamRegistry {
 public:
  struct Options {
    int64_t max_streams = 256;
    // absl::ZeroDuration(): streams never time out.
    absl::Duration idle_timeout = absl::Seconds(300);
  };

  // What the registry needs of a stream. The two-step close lets the
  // sweeper decide under its lock and finish the call after releasing it:
  // a stream that claimed the close (ClaimIdleClose returned true) stays
  // alive until FinishIdle, because gRPC ends a call (OnDone, which
  // Removes it) only after it is finished.
  class Stream {
   public:
    virtual ~Stream() = default;
    // True, and the stream will do nothing more but FinishIdle, when it
    // has nothing in flight and received nothing since `cutoff`.
    virtual bool ClaimIdleClose(absl::Time cutoff) = 0;
    // Finishes the call with UNAVAILABLE (`status` says why).
    virtual void FinishIdle(const absl::Status& status) = 0;
  };

  explicit InsertStreamRegistry(const Options& options);
  // Stops the sweeper; every stream must have been removed or be about to
  // be (gRPC ends calls before the service is destroyed).
  ~InsertStreamRegistry();
  InsertStreamRegistry(const InsertStreamRegistry&) = delete;
  InsertStreamRegistry& operator=(const InsertStreamRegistry&) = delete;

  // Admits `stream`; RESOURCE_EXHAUSTED naming --max_insert_streams when
  // max_streams are open.
  absl::Status Add(Stream* stream);
  // `stream` ended (call from its OnDone); it may be deleted afterwards.
  void Remove(Stream* stream);

  int64_t open_streams() const;

 private:
  // Closes the streams idle for longer than the timeout.
  void Sweep();

  const Options options_;
  mutable std::mutex mu_;
  absl::flat_hash_set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  // Last: stopped (by its destructor) before the members it reads.
  std::unique_ptr<PeriodicTask> sweeper_;
};

}  // namespace peakknn::server
