// The machine's sustained memory read bandwidth, as the yardstick for scans
// bound by memory (small batches: each row is read once per batch).
#pragma once

#include <cstdint>

#include "base/thread_pool.h"

namespace peakknn::bench {

// STREAM-like read kernel: every thread of `pool` sums its contiguous share
// of a `bytes` buffer (make it far larger than the caches) with vectorised
// float adds; one warm-up pass, then `repeats` timed passes.
// Returns the best rate in GB/s (1e9 bytes per second).
double MeasureReadBandwidthGBps(ThreadPool& pool, int64_t bytes, int repeats);

}  // namespace peakknn::bench
