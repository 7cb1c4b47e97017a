// peakknn-server's open-file budget. A server whose collections needed more
// file descriptors than RLIMIT_NOFILE allowed failed a create with "Too many
// open files" and then could not even restart (recovery ran out too). So at
// start-up the server raises its soft limit to the hard one, then checks
// that --max_collections fits it in the worst case, and refuses to start
// (naming both) when it does not; the store refuses creates beyond
// --max_collections (store/collection_manager.h).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace peakknn::server {

// File descriptors the server holds besides its collections' logs, in the
// worst case the budget plans for:
//     3  standard input, output and error
//    16  gRPC core: epoll sets, wakeup eventfds, the listening sockets
//     8  /metrics (civetweb's listening socket and its queue)
//    24  the CUDA driver and plugin when loaded (/dev/nvidia*, eventfds)
//     8  one checkpoint being written (data file, MANIFEST.tmp, directory)
//        or one collection being recovered (MANIFEST, checkpoint, segment):
//        the store does these one collection at a time
//    69  client and scrape connections, one socket each
// = 128. A floor, not a cap on connections: with the usual hard limits
// (524288 or more) the slack above the budget is far larger.
inline constexpr int64_t kReservedFds = 128;

// The most file descriptors the server needs with max_collections
// collections all writing at once: kMaxWalFds (store/wal_writer.h) each,
// plus kReservedFds. Idle collections hold none.
int64_t FdsNeeded(int64_t max_collections);

struct FdLimit {
  uint64_t soft_before = 0;  // RLIMIT_NOFILE soft limit at start-up
  uint64_t soft = 0;         // the soft limit in force now
  uint64_t hard = 0;
  // Why the soft limit could not be raised (soft == soft_before then).
  absl::Status raise_error;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (which any process may
// do). An error only when the limits cannot be read.
absl::StatusOr<FdLimit> RaiseFdLimit();

// OK when FdsNeeded(max_collections) <= limit; otherwise
// INVALID_ARGUMENT naming --max_collections, what it needs and the limit,
// and the largest --max_collections that fits.
absl::Status CheckFdBudget(int64_t max_collections, uint64_t limit);

}  // namespace peakknn::server
