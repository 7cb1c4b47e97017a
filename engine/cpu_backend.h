// The CPU search backend: ScanSnapshot (engine/searcher.h) over the fastest
// kernel set this CPU supports (kernels/scan.h, chosen from CPUID) and a
// thread pool. Holds no state of its own: it scans the snapshot's blocks in
// place.
#pragma once

#include "base/thread_pool.h"
#include "engine/backend.h"
#include "kernels/scan.h"

namespace peakknn {

class CpuBackend final : public SearchBackend {
 public:
  // pool nullptr: ThreadPool::Default().
  explicit CpuBackend(
      ThreadPool* pool = nullptr,
      const kernels::KernelSet& kernels = kernels::BestKernelSet());

  absl::string_view name() const override { return "cpu"; }
  absl::StatusOr<ScanResult> Scan(const Snapshot& snapshot,
                                  const kernels::QueryTile& queries,
                                  const ScanPlan& plan) override;
  int64_t device_memory_bytes() const override { return 0; }

 private:
  ThreadPool* const pool_;
  const kernels::KernelSet& kernels_;
};

}  // namespace peakknn
