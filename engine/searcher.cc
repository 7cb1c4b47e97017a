#include "engine/searcher.h"

#include <algorithm>
#include <memory>

#include "kernels/layout.h"

namespace peakknn {
namespace {

// Most queries per task. Each task streams its row range from memory once,
// so larger tiles mean less DRAM traffic (rows are reused by every query of
// the tile while in L2); 96 keeps a tile's queries within L1/L2.
constexpr int64_t kMaxQueryTile = 96;
// Fewer rows than this per range costs more in merging than it gains.
constexpr int64_t kMinRowsPerRange = 8192;
// Bin tables of one wave of query tiles stay under this (unless one range
// per thread of a single tile needs more).
constexpr int64_t kMaxBinBytes = int64_t{256} << 20;

// A piece of the snapshot's rows: [begin, end) of block `block`.
struct Segment {
  int64_t block;
  int64_t begin;
  int64_t end;
};

// Splits the snapshot's visible rows into `ranges` contiguous runs of about
// equal length, cut at panel boundaries.
std::vector<std::vector<Segment>> SplitRows(const Snapshot& snapshot,
                                            int64_t ranges) {
  std::vector<std::vector<Segment>> out(ranges);
  const int64_t per_range = (snapshot.rows + ranges - 1) / ranges /
                                kernels::kPanelRows * kernels::kPanelRows +
                            kernels::kPanelRows;
  int64_t range = 0;
  int64_t filled = 0;
  for (size_t b = 0; b < snapshot.blocks.size(); ++b) {
    const int64_t rows = snapshot.blocks[b].rows;
    int64_t begin = 0;
    while (begin < rows) {
      // Cut inside a block only at a panel boundary (kernels need begin to
      // be a multiple of kPanelRows; begin always is, being 0 or a cut).
      int64_t end = std::min(rows, begin + (per_range - filled));
      if (end < rows) {
        end = std::min(
            rows, std::max(begin + kernels::kPanelRows,
                           end / kernels::kPanelRows * kernels::kPanelRows));
      }
      out[range].push_back(Segment{static_cast<int64_t>(b), begin, end});
      filled += end - begin;
      begin = end;
      if (filled >= per_range && range + 1 < ranges) {
        ++range;
        filled = 0;
      }
    }
  }
  return out;
}

kernels::QueryTile SubTile(const kernels::QueryTile& all, int64_t q0,
                           int64_t count) {
  kernels::QueryTile tile = all;
  if (tile.f32 != nullptr) tile.f32 += q0 * all.stride;
  if (tile.bf16 != nullptr) tile.bf16 += q0 * all.stride;
  tile.count = count;
  return tile;
}

}  // namespace

ScanResult ScanSnapshot(const Snapshot& snapshot,
                        const kernels::QueryTile& queries, const ScanPlan& plan,
                        const kernels::KernelSet& kernels, ThreadPool& pool) {
  const int64_t nq = queries.count;
  const int64_t k = plan.k;
  ScanResult result;
  result.k = k;
  result.items.resize(nq * k);
  result.counts.assign(nq, 0);
  if (nq == 0 || snapshot.rows == 0) return result;

  // Every tile streams all rows from memory, so a batch takes as few tiles
  // as kMaxQueryTile allows. With at least as many tiles as threads they
  // come in multiples of the thread count so every thread gets the same
  // number of equal tiles (a 6/5 split of 11 tiles on 2 threads would idle
  // one core for a whole tile). Fewer tiles than threads (small batches,
  // bound by memory bandwidth) stay few: the row ranges give every thread
  // work, and rounding 4 queries up to 2 tiles on 2 threads would read the
  // rows twice.
  const int64_t threads = pool.num_threads();
  const int64_t fewest_tiles = (nq + kMaxQueryTile - 1) / kMaxQueryTile;
  const int64_t wanted_tiles =
      fewest_tiles < threads
          ? fewest_tiles
          : std::min(nq, threads * ((fewest_tiles + threads - 1) / threads));
  const int64_t query_tile = (nq + wanted_tiles - 1) / wanted_tiles;
  const int64_t tiles = (nq + query_tile - 1) / query_tile;
  const int64_t wanted_tasks = 4 * threads;
  const int64_t max_ranges =
      std::max<int64_t>(1, snapshot.rows / kMinRowsPerRange);
  const int64_t ranges =
      std::clamp<int64_t>((wanted_tasks + tiles - 1) / tiles, 1, max_ranges);
  const std::vector<std::vector<Segment>> segments =
      SplitRows(snapshot, ranges);

  auto scan_range = [&](int64_t range, auto&& scan_one) {
    for (const Segment& seg : segments[range]) {
      const BlockView& view = snapshot.blocks[seg.block];
      scan_one(view.block->Range(seg.begin, seg.end,
                                 view.dead ? view.dead->data() : nullptr));
    }
  };

  if (!plan.exact) {
    const int64_t bins = plan.bins;
    // Bins take ranges * tiles * query_tile * L * 12 bytes. Large k means
    // large L (k = 4096 at recall 0.95: L ~ 41000, 24 MB per tile), so past
    // kMaxBinBytes the batch runs in waves of tiles, first with one range
    // per thread instead of four tasks per thread. Rows are streamed once
    // per tile either way, so waves cost no extra row traffic.
    int64_t wave_tiles = tiles;
    int64_t wave_ranges = ranges;
    const int64_t tile_bytes = query_tile * bins * 12;
    if (wave_ranges * wave_tiles * tile_bytes > kMaxBinBytes) {
      wave_ranges = std::clamp<int64_t>(
          (pool.num_threads() + wave_tiles - 1) / wave_tiles, 1, max_ranges);
    }
    while (wave_tiles > 1 &&
           wave_ranges * wave_tiles * tile_bytes > kMaxBinBytes) {
      wave_tiles = (wave_tiles + 1) / 2;
      wave_ranges = std::clamp<int64_t>(
          (pool.num_threads() + wave_tiles - 1) / wave_tiles, 1, max_ranges);
    }
    const std::vector<std::vector<Segment>> wave_segments =
        wave_ranges == ranges ? segments : SplitRows(snapshot, wave_ranges);
    const int64_t wave_queries = std::min(nq, wave_tiles * query_tile);
    // [range][query of the wave][bin]
    std::vector<float> scores(wave_ranges * wave_queries * bins);
    std::vector<int64_t> slots(wave_ranges * wave_queries * bins);
    auto table = [&](int64_t range, int64_t wq0) {
      const int64_t offset = (range * wave_queries + wq0) * bins;
      return kernels::BinTable{scores.data() + offset, slots.data() + offset,
                               bins};
    };
    for (int64_t first = 0; first < tiles; first += wave_tiles) {
      const int64_t in_wave = std::min(wave_tiles, tiles - first);
      pool.ParallelFor(in_wave * wave_ranges, [&](int64_t task) {
        const int64_t tile = task / wave_ranges, range = task % wave_ranges;
        const int64_t q0 = (first + tile) * query_tile;
        const int64_t count = std::min(query_tile, nq - q0);
        const kernels::BinTable bins_table = table(range, tile * query_tile);
        kernels::ResetBins(bins_table, count);
        const kernels::QueryTile sub = SubTile(queries, q0, count);
        for (const Segment& seg : wave_segments[range]) {
          const BlockView& view = snapshot.blocks[seg.block];
          kernels.partial_reduce(
              sub,
              view.block->Range(seg.begin, seg.end,
                                view.dead ? view.dead->data() : nullptr),
              bins_table);
        }
      });
      pool.ParallelFor(in_wave, [&](int64_t tile) {
        const int64_t q0 = (first + tile) * query_tile;
        const int64_t count = std::min(query_tile, nq - q0);
        const kernels::BinTable merged = table(0, tile * query_tile);
        for (int64_t range = 1; range < wave_ranges; ++range) {
          kernels::MergeBins(merged, table(range, tile * query_tile), count);
        }
        std::vector<kernels::Candidate> scratch(bins);
        for (int64_t q = q0; q < q0 + count; ++q) {
          const int64_t i = q - q0;
          result.counts[q] = static_cast<int32_t>(kernels::SelectTopK(
              {merged.query_scores(i), static_cast<size_t>(bins)},
              {merged.query_slots(i), static_cast<size_t>(bins)}, k, scratch,
              result.items.data() + q * k));
        }
      });
    }
    return result;
  }

  // Exact: a running top-k per (range, query).
  const int64_t capacity = std::max<int64_t>(2 * k, 64);
  std::vector<kernels::Candidate> storage(ranges * nq * capacity);
  std::vector<kernels::TopKBuffer> buffers(ranges * nq);
  for (int64_t i = 0; i < ranges * nq; ++i) {
    buffers[i].items = storage.data() + i * capacity;
    buffers[i].capacity = static_cast<int32_t>(capacity);
    buffers[i].k = static_cast<int32_t>(k);
    buffers[i].Reset();
  }
  pool.ParallelFor(tiles * ranges, [&](int64_t task) {
    const int64_t tile = task / ranges, range = task % ranges;
    const int64_t q0 = tile * query_tile;
    const int64_t count = std::min(query_tile, nq - q0);
    const kernels::QueryTile sub = SubTile(queries, q0, count);
    kernels::TopKBuffer* mine = buffers.data() + range * nq + q0;
    scan_range(range, [&](const kernels::RowRange& rows) {
      kernels.exact_scan(sub, rows, mine);
    });
  });
  pool.ParallelFor(tiles, [&](int64_t tile) {
    const int64_t q0 = tile * query_tile;
    const int64_t count = std::min(query_tile, nq - q0);
    for (int64_t q = q0; q < q0 + count; ++q) {
      kernels::TopKBuffer& merged = buffers[q];
      for (int64_t range = 1; range < ranges; ++range) {
        merged.Merge(buffers[range * nq + q]);
      }
      merged.Finish();
      std::copy(merged.items, merged.items + merged.size,
                result.items.data() + q * k);
      result.counts[q] = merged.size;
    }
  });
  return result;
}

}  // namespace peakknn
