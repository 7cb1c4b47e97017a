// The search backend interface: where a snapshot's blocks are scanned.
//
// `--backend=cpu|cuda|auto` picks an implementation: the CPU backend
// (engine/searcher.h's ScanSnapshot over the best kernel set and a thread
// pool) or the CUDA backend (engine/cuda/cuda_backend.h). Both must return the
// same candidates for the same inputs and plan: bins are slot mod L, ties go
// to the lower slot (kernels::Better), tombstones never win, and the second
// stage is an exact top-k of the bin winners.
//
// Thread-safety: every method may be called concurrently from any thread.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/searcher.h"
#include "engine/snapshot.h"
#include "kernels/scan.h"

namespace peakknn {

class SearchBackend {
 public:
  virtual ~SearchBackend() = default;

  // "cpu" or "cuda", for logs and metrics.
  virtual absl::string_view name() const = 0;

  // Scans every block of `snapshot` for `queries` (prepared as for the CPU
  // kernels: normalised for COSINE; bf16 values with padded stride for bf16
  // rows) and returns, per query, the best min(k, live rows) candidates of
  // the plan (bins of L, or exact), best first. A backend with its own copy
  // of the rows (the CUDA device mirror) first brings it up to `snapshot`,
  // so every write published before the snapshot was taken is searched;
  // errors then name sizes (e.g. RESOURCE_EXHAUSTED when rows do not fit in
  // device memory).
  virtual absl::StatusOr<ScanResult> Scan(const Snapshot& snapshot,
                                          const kernels::QueryTile& queries,
                                          const ScanPlan& plan) = 0;

  // Accelerator memory this backend holds (rows mirrored plus workspaces);
  // 0 for the CPU.
  virtual int64_t device_memory_bytes() const = 0;
};

}  // namespace peakknn
