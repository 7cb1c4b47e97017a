// peakknn-bench --sweep: QPS of peakknn's engine as one parameter varies,
// the others fixed by the usual flags.
//
//   n:       base rows 100k, 250k, 500k, 1M, 2M, 4M (up to the data's rows):
//            cost should be linear in N (QPS * N constant).
//   batch:   1, 2, 4, 8, 16, 64, 256, 1024, 4096 queries (up to the data's
//            queries): small batches are bound by memory bandwidth, large
//            ones by FLOP/s.
//   k:       1, 10, 100, 1000, 4096 (bins grow with k).
//   threads: 1, 2, 4, ... up to the pool's threads.
//
// Each point prints QPS, GFLOP/s (2 * n * dim * queries / s) and GB/s of
// rows streamed (n * dim * element bytes / s: one pass per batch) with the
// plan's expected recall, then GFLOP/s as a percentage of the sgemm peak
// and GB/s as a percentage of the measured read bandwidth (the bytes the
// bandwidth test reads are counted the same way: every byte once). QPS
// only: no ground truth, no FAISS.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "base/thread_pool.h"
#include "bench/datasets.h"
#include "engine/schema.h"

namespace peakknn::bench {

struct SweepConfig {
  std::string what;  // "n" | "batch" | "k" | "threads"
  Metric metric = Metric::kL2;
  DType dtype = DType::kF32;
  double recall_target = 0.95;
  int64_t k = 10;
  int repeats = 3;
  int threads = 1;  // the most threads (the "threads" sweep's last point)
  // The machine's measured limits, for each point's share of them.
  double sgemm_peak_gflops = 0;
  double bandwidth_gbps = 0;
};

absl::Status RunSweep(const SweepConfig& config, const Dataset& data);

}  // namespace peakknn::bench
