// An immutable view of a collection that one search (or a checkpoint) reads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/resident_memory.h"
#include "engine/row_block.h"

namespace peakknn {

// One bit per block row; set = tombstoned. Copied on write: a published
// bitmap never changes.
using TombstoneBitmap = std::vector<uint64_t>;

struct BlockView {
  std::shared_ptr<RowBlock> block;  // rows >= `rows` may be written later
  int64_t rows = 0;                 // rows visible in this snapshot
  std::shared_ptr<const TombstoneBitmap> dead;  // nullptr: none dead
  int64_t dead_rows = 0;
};

struct Snapshot {
  std::vector<BlockView> blocks;  // ordered by slot_base
  int64_t rows = 0;
  int64_t live_rows = 0;

  // The block holding `slot`, or nullptr.
  const BlockView* FindBlock(int64_t slot) const;
};

// id -> slot for every live row. Its tables are resident memory (one
// mapping per large table, faulted in at once): a million-row map is 36 MB,
// rebuilt on every doubling.
using IdMap =
    absl::flat_hash_map<uint64_t, int64_t, absl::Hash<uint64_t>,
                        std::equal_to<uint64_t>,
                        ResidentAllocator<std::pair<const uint64_t, int64_t>>>;

}  // namespace peakknn
