// Runs one batch of prepared queries over a snapshot with a kernel set and a
// thread pool: the CPU search backend.
//
// Work split: queries in equal tiles of at most 96 (as few as that allows;
// a multiple of the thread count of them when there are at least as many as
// threads), rows in S contiguous ranges
// (S chosen so that tiles x ranges >= 4 tasks per thread; a batch of one
// query still uses every core). Each task folds its range into its own state
// (bins or running top-k); the ranges' states are then merged per query with
// kernels::Better, so the result does not depend on S or the thread count.
// Memory: S * queries * L * 12 bytes of bins, capped at 256 MiB by running
// the query tiles in waves with fewer ranges (large k: L grows with k), but
// never below threads * 48 * L * 12 bytes (or S * queries * 2k * 16 bytes
// of top-k buffers for exact search).
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "engine/snapshot.h"
#include "kernels/candidate.h"
#include "kernels/scan.h"

namespace peakknn {

struct ScanPlan {
  bool exact = false;  // running top-k instead of bins
  int64_t bins = 0;  // L, a multiple of kernels::kPanelRows (ignored if exact)
  // Candidates returned per query: the request's k, or more when the caller
  // rescores them (bf16 rows, engine/rescore.h).
  int64_t k = 0;
};

// Per query, the best min(k, live rows) candidates, best first:
// items[q * k + i] for i < counts[q].
struct ScanResult {
  int64_t k = 0;
  std::vector<kernels::Candidate> items;
  std::vector<int32_t> counts;
};

ScanResult ScanSnapshot(const Snapshot& snapshot,
                        const kernels::QueryTile& queries, const ScanPlan& plan,
                        const kernels::KernelSet& kernels, ThreadPool& pool);

}  // namespace peakknn
