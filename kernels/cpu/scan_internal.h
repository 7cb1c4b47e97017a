// Internal to kernels/cpu: what the per-ISA translation units share.
//
// Each SIMD kernel file is compiled with its own -m flags. Anything it calls
// that is not an intrinsic must be a non-inline function defined in a file
// built without those flags (here), or a function in the SIMD file's anonymous
// namespace; otherwise the linker may keep an AVX-512 copy of an inline
// function and call it on a CPU without AVX-512.
#pragma once

#include <cstdint>

#include "kernels/pack.h"
#include "kernels/scan.h"

namespace peakknn::kernels::detail {

// The scalar reference, also used by the SIMD kernels for a trailing partial
// panel (rows past a snapshot's end may be being written; only the scalar
// code reads row by row).
void ScalarPartialReduce(const QueryTile& queries, const RowRange& rows,
                         const BinTable& bins);
void ScalarExactScan(const QueryTile& queries, const RowRange& rows,
                     TopKBuffer* buffers);

// Slow paths of the SIMD epilogues, taken only when at least one of 16 lanes
// wins. scores16[lane] is the score of slot first_slot + lane; `lanes` is a
// bit mask of candidate lanes (re-checked here, in lane order).
void FoldIntoBins(float* bin_scores, int64_t* bin_slots, const float* scores16,
                  uint32_t lanes, int64_t first_slot);
void PushAboveThreshold(TopKBuffer* buffer, const float* scores16,
                        uint32_t lanes, int64_t first_slot);

// Rows per cache block: keep a block of rows (this many bytes) in L2 while
// every query tile streams past it.
inline constexpr int64_t kRowBlockBytes = 256 * 1024;

// Query tiles of at most this many queries are bound by memory latency per
// core (a core keeps too few misses in flight to reach the machine's
// bandwidth), so their micro-kernels prefetch the next step's rows while
// computing this one's: one step of FMAs is about one DRAM latency ahead.
// Larger tiles spend long enough per step for the hardware prefetchers.
// (Measured on 1M x 128 f32, 2 cores: batch 1 ~20% more GB/s; batch 4 and
// 8 no clear change.)
inline constexpr int kStreamingQueries = 2;

// Row packing (kernels/pack.h). The scalar reference, row by row:
void ScalarPackRows(const float* rows, int64_t count, int64_t first_row,
                    const PanelTarget& target);
// Writes the 16 row-major rows at rows16 to panel `panel` of the target
// (all 16 lanes) and their bias.
using PackPanelFn = void (*)(const float* rows16, int64_t panel,
                             const PanelTarget& target);
// PackRows for a SIMD set: whole panels through pack_panel, the rows of a
// partial panel at either end of the run through ScalarPackRows.
void PackByPanels(const float* rows, int64_t count, int64_t first_row,
                  const PanelTarget& target, PackPanelFn pack_panel);
// The SIMD sets' PackRows (pack_avx2.cc, pack_avx512.cc).
void Avx2PackRows(const float* rows, int64_t count, int64_t first_row,
                  const PanelTarget& target);
void Avx512PackRows(const float* rows, int64_t count, int64_t first_row,
                    const PanelTarget& target);

extern const KernelSet kScalarKernels;
extern const KernelSet kAvx2Kernels;
extern const KernelSet kAvx512Kernels;
extern const KernelSet kAvx512Bf16Kernels;

}  // namespace peakknn::kernels::detail
