// Storage maintenance on a Collection that the public write path cannot
// express: restoring stored rows bit for bit from a checkpoint, and
// compacting blocks full of tombstones. A friend of Collection; every
// operation takes the collection's writer lock and publishes a new snapshot,
// so searches keep running on the snapshot they hold.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "engine/collection.h"

namespace peakknn {

class CollectionMaintenance {
 public:
  // Prepares for `rows` more rows about to be restored (a checkpoint of
  // known size): reserves the id map for them and sizes the next blocks to
  // hold them, so the restore neither rehashes nor allocates more than it
  // fills.
  static void ReserveRows(Collection& collection, int64_t rows);

  // Appends rows whose vectors are stored values (Collection::Get output:
  // already normalised / bf16-rounded), without normalising again, and
  // publishes them. Fails (FAILED_PRECONDITION / INVALID_ARGUMENT) on a size
  // mismatch or an id already present, changing nothing.
  // Cost: O(rows * dim), packed straight from `stored_vectors` into panels.
  static absl::Status RestoreRows(Collection& collection,
                                  std::span<const uint64_t> ids,
                                  std::span<const float> stored_vectors);

  // Rewrites every full block (never the tail block, which is still being
  // appended to) whose dead fraction is >= min_dead_fraction into a new block
  // holding only its live rows, at the same slot_base with capacity rounded
  // up to a panel; a block with no live rows is dropped. Returns the number
  // of blocks rewritten or dropped. Snapshots taken before keep the old
  // blocks alive (shared_ptr), so running searches are unaffected.
  // Cost: O(rows of the chosen blocks * dim) under the writer lock.
  static int64_t CompactBlocks(Collection& collection,
                               double min_dead_fraction);
};

}  // namespace peakknn
