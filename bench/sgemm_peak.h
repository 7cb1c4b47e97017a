// The machine's dense single-precision matmul rate, as a yardstick for the
// GFLOP/s each contender achieves.
#pragma once

namespace peakknn::bench {

// Runs sgemm (the BLAS FAISS links against) on size x size x size matrices:
// one warm-up, then `repeats` timed runs; returns the best rate in GFLOP/s
// (2 * size^3 / seconds / 1e9). Uses the threads set by SetBlasThreads.
double MeasureSgemmPeakGflops(int size, int repeats);

}  // namespace peakknn::bench
