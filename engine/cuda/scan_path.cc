// Parsing of CudaScanPath: needed by flag handling in every build.
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_backend.h"

namespace peakknn {

absl::StatusOr<CudaScanPath> ParseCudaScanPath(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "auto") return CudaScanPath::kAuto;
  if (lower == "fma") return CudaScanPath::kFmaChain;
  if (lower == "tensor") return CudaScanPath::kTensorCore;
  if (lower == "gemm") return CudaScanPath::kGemm;
  return absl::InvalidArgumentError(absl::StrCat(
      "CUDA scan path must be auto, fma, tensor or gemm; got '", text, "'"));
}

}  // namespace peakknn
