// The search backend interface: where a snapshot's blocks are scanned.
//
// `--backend=cpu|cuda|auto` picks an implementation: the CPU backend
// (engine/searcher.h's ScanSnapshot over the best kernel set and a thread
// pool) or the CUDA backend (engine/cuda_backend.h). Both must return the
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

  // Makes the rows and tombstones of `snapshot` searchable by this backend
  // (the CUDA backend uploads what changed since its last call). A
  // collection calls it after publishing a write, so the rows reach the
  // device before the write is acknowledged; Scan calls it as well, so
  // calling it is never required for correctness. Errors (e.g.
  // RESOURCE_EXHAUSTED when rows do not fit in device memory) name sizes.
  virtual absl::Status Sync(const Snapshot& snapshot) = 0;

  // Scans every block of `snapshot` for `queries` (prepared as for the CPU
  // kernels: normalised for COSINE; bf16 values with padded stride for bf16
  // rows) and returns, per query, the best min(k, live rows) candidates of
  // the plan (bins of L, or exact), best first.
  virtual absl::StatusOr<ScanResult> Scan(const Snapshot& snapshot,
                                          const kernels::QueryTile& queries,
                                          const ScanPlan& plan) = 0;

  // Accelerator memory this backend holds (rows mirrored plus workspaces);
  // 0 for the CPU.
  virtual int64_t device_memory_bytes() const = 0;
};

}  // namespace peakknn
