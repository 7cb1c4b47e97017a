#include "engine/snapshot.h"

#include <algorithm>

namespace peakknn {

const BlockView* Snapshot::FindBlock(int64_t slot) const {
  // Blocks are ordered by slot_base; find the last one starting at or before.
  auto it = std::upper_bound(blocks.begin(), blocks.end(), slot,
                             [](int64_t s, const BlockView& view) {
                               return s < view.block->slot_base();
                             });
  if (it == blocks.begin()) return nullptr;
  --it;
  if (slot >= it->block->slot_base() + it->rows) return nullptr;
  return &*it;
}

}  // namespace peakknn
