#include "engine/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/cpu_backend.h"
#include "engine/recall_calculator.h"
#include "engine/rescore.h"
#include "engine/searcher.h"
#include "engine/vector_checks.h"
#include "kernels/bf16.h"
#include "kernels/layout.h"
#include "kernels/score.h"

namespace peakknn {
namespace {

kernels::ScoreKind ScoreKindOf(Metric metric) {
  return metric == Metric::kL2 ? kernels::ScoreKind::kL2
                               : kernels::ScoreKind::kInnerProduct;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Collection>> Collection::Create(
    const CollectionSchema& schema, const CollectionOptions& options) {
  if (absl::Status s = ValidateSchema(schema, /*check_name=*/false); !s.ok()) {
    return s;
  }
  if (options.block_rows < kernels::kPanelRows ||
      options.block_rows % kernels::kPanelRows != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_rows must be a positive multiple of ",
                     kernels::kPanelRows, ", got ", options.block_rows));
  }
  return std::unique_ptr<Collection>(new Collection(schema, options));
}

Collection::Collection(const CollectionSchema& schema,
                       const CollectionOptions& options)
    : schema_(schema),
      options_(options),
      own_backend_(options.backend == nullptr
                       ? std::make_unique<CpuBackend>(options.pool)
                       : nullptr),
      backend_(options.backend != nullptr ? options.backend
                                          : own_backend_.get()),
      pending_(std::make_shared<Snapshot>()),
      published_(std::make_shared<const Snapshot>()) {}

ThreadPool& Collection::pool() const {
  return options_.pool != nullptr ? *options_.pool : ThreadPool::Default();
}

std::shared_ptr<const Snapshot> Collection::snapshot() const {
  std::lock_guard lock(publish_mu_);
  return published_;
}

std::optional<uint64_t> Collection::FirstPresent(
    std::span<const uint64_t> ids) const {
  std::lock_guard lock(id_mu_);
  for (uint64_t id : ids) {
    if (id_to_slot_.contains(id)) return id;
  }
  return std::nullopt;
}

absl::Status Collection::Write(WriteMode mode, std::span<const uint64_t> ids,
                               std::span<const float> vectors) {
  if (absl::Status s = CheckWriteBatch(schema_, ids, vectors); !s.ok()) {
    return s;
  }
  std::lock_guard lock(write_mu_);
  if (mode == WriteMode::kInsert) {
    if (std::optional<uint64_t> id = FirstPresent(ids)) {
      return absl::AlreadyExistsError(
          absl::StrCat("id ", *id, " already exists in collection '",
                       schema_.name, "'; use upsert to replace it"));
    }
  }
  ApplyLocked(ids, vectors);
  return absl::OkStatus();
}

void Collection::Apply(std::span<const uint64_t> ids,
                       std::span<const float> vectors) {
  std::lock_guard lock(write_mu_);
  ApplyLocked(ids, vectors);
}

void Collection::ApplyLocked(std::span<const uint64_t> ids,
                             std::span<const float> vectors) {
  const int dim = schema_.dim;
  const float* rows = vectors.data();
  std::vector<float> normalised;
  if (schema_.metric == Metric::kCosine) {
    normalised.resize(vectors.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* v = vectors.data() + i * dim;
      float* out = normalised.data() + i * dim;
      const float inv_norm =
          static_cast<float>(1.0 / std::sqrt(SquaredNorm(v, dim)));
      for (int d = 0; d < dim; ++d) out[d] = v[d] * inv_norm;
    }
    rows = normalised.data();
  }
  AppendRows(ids, rows);
  Publish();
}

void Collection::AppendRows(std::span<const uint64_t> ids,
                            const float* vectors) {
  Snapshot& state = *pending_;
  const int64_t count = static_cast<int64_t>(ids.size());
  for (int64_t done = 0; done < count;) {
    if (state.blocks.empty() ||
        state.blocks.back().rows == state.blocks.back().block->capacity()) {
      AddBlock(count - done);
    }
    BlockView& tail = state.blocks.back();
    const int64_t take =
        std::min(count - done, tail.block->capacity() - tail.rows);
    tail.block->WriteRows(tail.rows, ids.subspan(done, take),
                          vectors + done * schema_.dim);
    const int64_t first_slot = tail.block->slot_base() + tail.rows;
    tail.rows += take;
    state.rows += take;
    state.live_rows += take;
    {
      std::lock_guard id_lock(id_mu_);
      for (int64_t i = 0; i < take; ++i) {
        // One lookup: a known id's old row is tombstoned and replaced.
        auto [it, inserted] =
            id_to_slot_.try_emplace(ids[done + i], first_slot + i);
        if (!inserted) {
          TombstoneSlot(it->second);
          it->second = first_slot + i;
        }
      }
    }
    done += take;
    expected_rows_ = std::max<int64_t>(0, expected_rows_ - take);
  }
}

void Collection::AddBlock(int64_t wanted) {
  // Below this a block's fixed costs (a mapping, a snapshot entry, a kernel
  // call per scan) outweigh the memory saved.
  constexpr int64_t kMinBlockBytes = 64 << 10;
  Snapshot& state = *pending_;
  int64_t held = 0;
  for (const BlockView& view : state.blocks) held += view.block->capacity();
  const int64_t min_rows =
      kMinBlockBytes / RowBlock::RowBytes(schema_.dim, schema_.dtype);
  const int64_t rows = std::max({wanted, expected_rows_, held / 8, min_rows});
  const int64_t capacity = std::min(
      options_.block_rows, (rows + kernels::kPanelRows - 1) /
                               kernels::kPanelRows * kernels::kPanelRows);
  auto block = std::make_shared<RowBlock>(schema_.dim, schema_.dtype,
                                          ScoreKindOf(schema_.metric), capacity,
                                          next_slot_base_, &pool());
  next_slot_base_ += capacity;
  state.blocks.push_back(BlockView{std::move(block), 0, nullptr, 0});
  private_bitmaps_.push_back(nullptr);
}

void Collection::TombstoneSlot(int64_t slot) {
  Snapshot& state = *pending_;
  BlockView* view = const_cast<BlockView*>(state.FindBlock(slot));
  const size_t index = view - state.blocks.data();
  TombstoneBitmap*& bitmap = private_bitmaps_[index];
  if (bitmap == nullptr) {
    // Copy on write: the published bitmap may be in use by searches.
    auto copy = view->dead != nullptr
                    ? std::make_shared<TombstoneBitmap>(*view->dead)
                    : std::make_shared<TombstoneBitmap>(
                          (view->block->capacity() + 63) / 64, 0);
    bitmap = copy.get();
    view->dead = std::move(copy);
  }
  const int64_t row = slot - view->block->slot_base();
  (*bitmap)[row >> 6] |= uint64_t{1} << (row & 63);
  ++view->dead_rows;
  --state.live_rows;
}

void Collection::Publish() {
  auto published = std::make_shared<const Snapshot>(*pending_);
  std::fill(private_bitmaps_.begin(), private_bitmaps_.end(), nullptr);
  std::lock_guard lock(publish_mu_);
  published_ = std::move(published);
}

int64_t Collection::Delete(std::span<const uint64_t> ids) {
  std::lock_guard lock(write_mu_);
  int64_t deleted = 0;
  {
    std::lock_guard id_lock(id_mu_);
    for (uint64_t id : ids) {
      auto it = id_to_slot_.find(id);
      if (it == id_to_slot_.end()) continue;
      TombstoneSlot(it->second);
      id_to_slot_.erase(it);
      ++deleted;
    }
  }
  if (deleted > 0) Publish();
  return deleted;
}

std::vector<std::optional<std::vector<float>>> Collection::Get(
    std::span<const uint64_t> ids) const {
  // Under the writer lock the pending state equals the published snapshot
  // (every write publishes before it unlocks), so the slots looked up are
  // the snapshot's; the rows are copied after unlocking.
  constexpr int64_t kAbsent = -1;
  std::vector<int64_t> slots(ids.size(), kAbsent);
  std::shared_ptr<const Snapshot> snap;
  {
    std::lock_guard lock(write_mu_);
    std::lock_guard id_lock(id_mu_);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (auto it = id_to_slot_.find(ids[i]); it != id_to_slot_.end()) {
        slots[i] = it->second;
      }
    }
    snap = snapshot();
  }
  std::vector<std::optional<std::vector<float>>> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (slots[i] == kAbsent) continue;
    const BlockView* view = snap->FindBlock(slots[i]);
    std::vector<float> v(schema_.dim);
    view->block->ReadRow(slots[i] - view->block->slot_base(), v.data());
    out[i] = std::move(v);
  }
  return out;
}

absl::Status Collection::CheckQueries(std::span<const float> queries) const {
  if (queries.empty() || queries.size() % schema_.dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries hold ", queries.size(),
        " floats; expected a positive multiple of dim ", schema_.dim));
  }
  return CheckVectors(schema_, queries,
                      static_cast<int64_t>(queries.size()) / schema_.dim,
                      "queries");
}

absl::StatusOr<SearchResults> Collection::Search(
    std::span<const float> queries, const SearchParams& params) const {
  if (absl::Status s = CheckQueries(queries); !s.ok()) return s;
  return SearchChecked(queries, params);
}

absl::StatusOr<SearchResults> Collection::SearchChecked(
    std::span<const float> queries, const SearchParams& params) const {
  const int dim = schema_.dim;
  if (params.k < 1 || params.k > kMaxK) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in [1, ", kMaxK, "], got ", params.k));
  }
  if (params.bins < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bins must be >= 0 (0 = plan from the recall target), got ",
        params.bins));
  }
  if (!(params.recall_target >= 0 && params.recall_target <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "recall_target must be in (0, 1] (0 = the collection default ",
        schema_.default_recall_target, "), got ", params.recall_target));
  }
  const int64_t nq = static_cast<int64_t>(queries.size()) / dim;
  const double target = params.recall_target == 0
                            ? schema_.default_recall_target
                            : params.recall_target;

  const std::shared_ptr<const Snapshot> snap = snapshot();
  absl::StatusOr<RecallPlan> plan =
      params.bins > 0 ? PlanForBins(snap->live_rows, params.k, params.bins)
                      : PlanRecall(snap->live_rows, params.k, target);
  if (!plan.ok()) return plan.status();

  // Prepare queries: normalise (COSINE), round to bf16 for bf16 rows.
  std::vector<float> f32(queries.begin(), queries.end());
  std::vector<float> query_norms(nq);
  for (int64_t q = 0; q < nq; ++q) {
    float* v = f32.data() + q * dim;
    if (schema_.metric == Metric::kCosine) {
      const float inv =
          static_cast<float>(1.0 / std::sqrt(SquaredNorm(v, dim)));
      for (int d = 0; d < dim; ++d) v[d] *= inv;
    }
    query_norms[q] = static_cast<float>(SquaredNorm(v, dim));
  }
  kernels::QueryTile tile;
  tile.count = nq;
  std::vector<uint16_t> bf16;
  if (schema_.dtype == DType::kF32) {
    tile.f32 = f32.data();
    tile.stride = dim;
  } else {
    const int padded = kernels::PaddedDimBf16(dim);
    bf16.assign(nq * padded, 0);
    for (int64_t q = 0; q < nq; ++q) {
      for (int d = 0; d < dim; ++d) {
        bf16[q * padded + d] = kernels::FloatToBf16(f32[q * dim + d]);
      }
    }
    tile.bf16 = bf16.data();
    tile.stride = padded;
  }

  // bf16 rows: scan for more candidates, rescore them in f32, keep k
  // (engine/rescore.h). Distances then come from f32 scores and f32 norms.
  const bool rescore = schema_.dtype == DType::kBf16;
  ScanPlan scan;
  scan.exact = plan->exact;
  scan.bins = plan->bins;
  scan.k = rescore ? RescoreCandidates(
                         params.k, plan->exact ? snap->live_rows : plan->bins)
                   : params.k;
  absl::StatusOr<ScanResult> scanned = backend_->Scan(*snap, tile, scan);
  if (!scanned.ok()) return scanned.status();
  ScanResult& found = *scanned;
  if (rescore) {
    ScanResult kept;
    kept.k = params.k;
    kept.items.resize(nq * params.k);
    kept.counts.assign(nq, 0);
    pool().ParallelFor(nq, [&](int64_t q) {
      kept.counts[q] = static_cast<int32_t>(RescoreF32(
          *snap, ScoreKindOf(schema_.metric), f32.data() + q * dim, dim,
          {found.items.data() + q * found.k,
           static_cast<size_t>(found.counts[q])},
          params.k, kept.items.data() + q * params.k));
    });
    found = std::move(kept);
  }

  SearchResults out;
  out.rows_scanned = snap->rows;
  out.live_rows = snap->live_rows;
  out.num_queries = nq;
  out.k = params.k;
  out.ids.assign(nq * params.k, 0);
  out.distances.assign(nq * params.k, 0);
  out.counts = found.counts;
  out.exact = plan->exact;
  out.bins = plan->exact ? snap->live_rows : plan->bins;
  out.expected_recall = plan->expected_recall;
  out.worst_rank_recall = plan->worst_rank_recall;
  const kernels::ScoreKind kind = ScoreKindOf(schema_.metric);
  for (int64_t q = 0; q < nq; ++q) {
    for (int32_t i = 0; i < found.counts[q]; ++i) {
      const kernels::Candidate& c = found.items[q * params.k + i];
      const BlockView* view = snap->FindBlock(c.slot);
      out.ids[q * params.k + i] =
          view->block->id(c.slot - view->block->slot_base());
      out.distances[q * params.k + i] =
          kernels::ScoreToDistance(kind, c.score, query_norms[q]);
    }
  }
  return out;
}

CollectionStats Collection::Stats() const {
  const std::shared_ptr<const Snapshot> snap = snapshot();
  CollectionStats stats;
  stats.rows = snap->rows;
  stats.live_rows = snap->live_rows;
  for (const BlockView& view : snap->blocks) {
    stats.memory_bytes += view.block->allocated_bytes();
    if (view.dead) stats.memory_bytes += view.dead->size() * sizeof(uint64_t);
  }
  std::lock_guard lock(id_mu_);
  // flat_hash_map: one control byte plus one slot per bucket.
  stats.memory_bytes += static_cast<int64_t>(id_to_slot_.bucket_count()) *
                        (sizeof(IdMap::value_type) + 1);
  return stats;
}

std::vector<uint64_t> Collection::PresentIds(
    std::span<const uint64_t> ids) const {
  std::vector<uint64_t> present;
  std::lock_guard lock(id_mu_);
  for (uint64_t id : ids) {
    if (id_to_slot_.contains(id)) present.push_back(id);
  }
  return present;
}

}  // namespace peakknn
