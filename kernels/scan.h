// CPU scan kernels: fused score tile + reduction, over rows in panel layout.
//
// A kernel scores a tile of queries against a range of one block's rows and
// folds the scores straight into per-query state while they are still in
// registers; the Q x N score matrix is never written to memory.
//
//   PartialReduce: state is L strided bins per query (best score and slot per
//                  bin; see kernels/layout.h). Cost O(Q * rows * dim) FLOPs,
//                  O(Q * L) state.
//   ExactScan:     state is a running top-k per query (a candidate buffer with
//                  a threshold). Used for recall_target = 1 and the audit.
//
// Kernels are pure compute: no threads, no allocation, no I/O. Callers split
// work across threads by query tile and row range, giving each task its own
// state, then merge (MergeBins / TopKBuffer::Merge). Rows within one call are
// visited in increasing slot order, so a strict ">" keeps the lower slot on
// ties, as kernels::Better requires.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "kernels/candidate.h"
#include "kernels/layout.h"
#include "kernels/pack.h"

namespace peakknn::kernels {

// A range [begin, end) of rows of one block in panel layout.
struct RowRange {
  const void* panels = nullptr;  // block data; float* or uint16_t* (bf16 bits)
  RowType type = RowType::kF32;
  int dim = 0;                     // logical dim; bf16 rows use PaddedDimBf16
  const float* bias = nullptr;     // [block rows] score = q.x + bias[row]
  const uint64_t* dead = nullptr;  // tombstone bit per block row, or nullptr
  int64_t begin = 0;               // multiple of kPanelRows
  int64_t end = 0;                 // rows at or past end are never read
  int64_t slot_base = 0;           // global slot of block row 0; multiple of 16
};

// Queries, row-major. For bf16 rows the engine passes bf16 queries with
// PaddedDimBf16(dim) elements per row (the pad element is zero).
struct QueryTile {
  const float* f32 = nullptr;      // [count][stride] when rows are f32
  const uint16_t* bf16 = nullptr;  // [count][stride] when rows are bf16
  int64_t count = 0;
  int64_t stride = 0;  // elements between consecutive queries
};

// Per-query bins, [count][bins] row-major, bins a multiple of kPanelRows.
// Initialise with ResetBins (score -inf, slot kNoSlot).
struct BinTable {
  float* scores = nullptr;
  int64_t* slots = nullptr;
  int64_t bins = 0;

  float* query_scores(int64_t q) const { return scores + q * bins; }
  int64_t* query_slots(int64_t q) const { return slots + q * bins; }
};

void ResetBins(const BinTable& table, int64_t queries);

// bins[q][b] = the better of dst and src (kernels::Better): the bin state of
// two row ranges scanned separately equals that of one scan over both.
void MergeBins(const BinTable& dst, const BinTable& src, int64_t queries);

// Running top-k for one query: an unsorted buffer of capacity >= 2k. Scores
// above `threshold` are appended; when the buffer fills it is cut to the best
// k and threshold becomes the k-th best score.
struct TopKBuffer {
  Candidate* items = nullptr;  // [capacity]
  int32_t capacity = 0;
  int32_t k = 0;
  int32_t size = 0;
  float threshold = 0;  // set by Reset

  void Reset();
  // Appends one candidate already known to beat `threshold`. Out of line on
  // purpose: SIMD translation units must not emit their own copies of inline
  // functions that a CPU without those instructions could end up calling.
  void Push(float score, int64_t slot);
  // Cuts to the best min(k, size) candidates, sorted best first.
  void Finish();
  // Pushes every candidate of `other` that beats this buffer's threshold.
  void Merge(const TopKBuffer& other);

 private:
  void Compact();
};

// Exact top-k of n candidates (second stage): writes the best min(k, valid)
// candidates, best first, to out and returns how many. Candidates with slot
// kNoSlot (empty bins) are skipped. `scratch` holds n items.
int64_t SelectTopK(std::span<const float> scores,
                   std::span<const int64_t> slots, int64_t k,
                   std::span<Candidate> scratch, Candidate* out);

// One implementation of the CPU kernels for an instruction set: the scans
// and the row packing (kernels/pack.h).
struct KernelSet {
  std::string_view name;  // "scalar", "avx2", "avx512", "avx512bf16"
  // Folds queries x rows scores into bins (table rows 0..queries.count-1).
  void (*partial_reduce)(const QueryTile& queries, const RowRange& rows,
                         const BinTable& bins);
  // Pushes queries x rows scores into buffers[0..queries.count-1].
  void (*exact_scan)(const QueryTile& queries, const RowRange& rows,
                     TopKBuffer* buffers);
  // Writes rows into panels (kernels/pack.h).
  PackRowsFn pack_rows;
};

// Every kernel set this CPU can run, slowest (the scalar reference) first.
std::span<const KernelSet* const> SupportedKernelSets();

// The fastest supported set; PEAKKNN_KERNELS=scalar|avx2|avx512|avx512bf16 in
// the environment forces one (for testing and benchmarking).
const KernelSet& BestKernelSet();

}  // namespace peakknn::kernels
