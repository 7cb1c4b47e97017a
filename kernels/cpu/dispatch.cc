// Run-time choice of kernel set from CPUID.
#include <cstdlib>
#include <string_view>
#include <vector>

#include "kernels/cpu/scan_internal.h"
#include "kernels/scan.h"

namespace peakknn::kernels {
namespace {

std::vector<const KernelSet*> DetectSupported() {
  std::vector<const KernelSet*> sets = {&detail::kScalarKernels};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    sets.push_back(&detail::kAvx2Kernels);
  }
  const bool avx512 =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (avx512) {
    sets.push_back(&detail::kAvx512Kernels);
    if (__builtin_cpu_supports("avx512bf16")) {
      sets.push_back(&detail::kAvx512Bf16Kernels);
    }
  }
  return sets;
}

const KernelSet& ChooseBest(std::span<const KernelSet* const> sets) {
  if (const char* forced = std::getenv("PEAKKNN_KERNELS")) {
    for (const KernelSet* set : sets) {
      if (set->name == std::string_view(forced)) return *set;
    }
    // An unsupported request falls back to the best set rather than failing:
    // the variable is a testing aid, not configuration.
  }
  return *sets.back();
}

}  // namespace

std::span<const KernelSet* const> SupportedKernelSets() {
  static const std::vector<const KernelSet*> sets = DetectSupported();
  return sets;
}

const KernelSet& BestKernelSet() {
  static const KernelSet& best = ChooseBest(SupportedKernelSets());
  return best;
}

}  // namespace peakknn::kernels
