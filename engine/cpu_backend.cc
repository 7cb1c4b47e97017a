#include "engine/cpu_backend.h"

namespace peakknn {

CpuBackend::CpuBackend(ThreadPool* pool, const kernels::KernelSet& kernels)
    : pool_(pool != nullptr ? pool : &ThreadPool::Default()),
      kernels_(kernels) {}

absl::StatusOr<ScanResult> CpuBackend::Scan(const Snapshot& snapshot,
                                            const kernels::QueryTile& queries,
                                            const ScanPlan& plan) {
  return ScanSnapshot(snapshot, queries, plan, kernels_, *pool_);
}

}  // namespace peakknn
