#include "engine/collection_maintenance.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/layout.h"

namespace peakknn {

absl::Status CollectionMaintenance::RestoreRows(
    Collection& c, std::span<const uint64_t> ids,
    std::span<const float> stored_vectors) {
  const int dim = c.schema_.dim;
  if (stored_vectors.size() != ids.size() * dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("restore of ", ids.size(), " rows of dim ", dim, " got ",
                     stored_vectors.size(), " floats"));
  }
  std::lock_guard lock(c.write_mu_);
  if (std::optional<uint64_t> id = c.FirstPresent(ids)) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore: id ", *id, " is already present in collection '",
                     c.schema_.name, "'"));
  }
  c.AppendRows(ids, stored_vectors.data());
  c.Publish();
  return absl::OkStatus();
}

void CollectionMaintenance::ReserveRows(Collection& c, int64_t rows) {
  std::lock_guard lock(c.write_mu_);
  c.expected_rows_ += rows;
  std::lock_guard id_lock(c.id_mu_);
  c.id_to_slot_.reserve(c.id_to_slot_.size() + rows);
}

int64_t CollectionMaintenance::CompactBlocks(Collection& c,
                                             double min_dead_fraction) {
  std::lock_guard lock(c.write_mu_);
  Snapshot& state = *c.pending_;
  if (state.blocks.size() < 2) return 0;
  const int dim = c.schema_.dim;
  // Live rows move in chunks: read back (bf16 blocks from their f32 copy)
  // and written unchanged, so rounding them again gives the same bf16 bits
  // and bias.
  constexpr int64_t kChunkRows = 1024;
  std::vector<uint64_t> ids;
  std::vector<float> rows(kChunkRows * dim);
  std::vector<BlockView> kept;
  std::vector<TombstoneBitmap*> kept_bitmaps;
  kept.reserve(state.blocks.size());
  int64_t compacted = 0;
  const size_t tail = state.blocks.size() - 1;
  for (size_t b = 0; b < state.blocks.size(); ++b) {
    BlockView& view = state.blocks[b];
    const bool full = view.rows == view.block->capacity();
    if (b == tail || !full || view.dead_rows == 0 ||
        view.dead_rows < min_dead_fraction * view.rows) {
      kept.push_back(std::move(view));
      kept_bitmaps.push_back(c.private_bitmaps_[b]);
      continue;
    }
    ++compacted;
    state.rows -= view.dead_rows;
    const int64_t live = view.rows - view.dead_rows;
    if (live == 0) continue;
    const RowBlock& old = *view.block;
    const int64_t capacity = (live + kernels::kPanelRows - 1) /
                             kernels::kPanelRows * kernels::kPanelRows;
    auto fresh = std::make_shared<RowBlock>(
        dim, old.dtype(), old.score(), capacity, old.slot_base(), &c.pool());
    const uint64_t* dead = view.dead ? view.dead->data() : nullptr;
    int64_t written = 0;
    const auto flush = [&] {
      fresh->WriteRows(written, ids, rows.data());
      std::lock_guard id_lock(c.id_mu_);
      for (uint64_t id : ids) c.id_to_slot_[id] = old.slot_base() + written++;
      ids.clear();
    };
    for (int64_t r = 0; r < view.rows; ++r) {
      if (kernels::IsDead(dead, r)) continue;
      old.ReadRow(r, rows.data() + ids.size() * dim);
      ids.push_back(old.id(r));
      if (static_cast<int64_t>(ids.size()) == kChunkRows) flush();
    }
    flush();
    kept.push_back(BlockView{std::move(fresh), live, nullptr, 0});
    kept_bitmaps.push_back(nullptr);
  }
  state.blocks = std::move(kept);
  c.private_bitmaps_ = std::move(kept_bitmaps);
  if (compacted > 0) c.Publish();
  return compacted;
}

}  // namespace peakknn
