// Where a shard replica records how far it has applied a collection's write
// stream: one small file per collection,
//
//   <state_dir>/<collection>   "<creation_revision> <sequence>\n" (decimal)
//
// creation_revision is the collection's metadata revision
// (cluster_metadata.h): it tells this incarnation of the name from an
// earlier one whose stream was deleted, so a replica never resumes a new
// stream at an old stream's sequence. sequence is the last stream sequence
// whose batch is durable in the local collection (0: none yet).
//
// Invariant: the file is never ahead of the local collection. The replica
// writes it only after the local writes up to `sequence` are acknowledged
// with fsync durability, so after a crash the collection holds at least
// what the file says, maybe more: replay from sequence + 1 re-applies those
// batches, which is harmless because applying is idempotent
// (shard_replica.h). Kept beside the collections rather than in their
// checkpoints so that the store's format does not change for cluster mode.
//
// Written atomically (WriteFileAtomically: temp file, fsync, rename, fsync
// of the directory): a crash leaves the old or the new position.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/env.h"

namespace peakknn {

struct AppliedPosition {
  uint64_t creation_revision = 0;
  uint64_t sequence = 0;

  friend bool operator==(const AppliedPosition&,
                         const AppliedPosition&) = default;
};

class AppliedPositions {
 public:
  // `dir` is created by Init. `env` is not owned.
  AppliedPositions(Env* env, std::string dir)
      : env_(env), dir_(std::move(dir)) {}

  absl::Status Init();
  // nullopt when the collection has no file; DATA_LOSS naming the file when
  // it does not parse.
  absl::StatusOr<std::optional<AppliedPosition>> Read(
      std::string_view collection) const;
  absl::Status Write(std::string_view collection,
                     const AppliedPosition& position);
  // Deleting an absent file is OK.
  absl::Status Delete(std::string_view collection);

 private:
  std::string PathOf(std::string_view collection) const;

  Env* const env_;
  const std::string dir_;
};

}  // namespace peakknn
