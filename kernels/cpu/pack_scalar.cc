// The scalar reference for PackRows (kernels/pack.h): the definition of what
// a stored row and its bias are. One row at a time, one element at a time
// through the layout functions; also what the SIMD sets use for the rows of
// a partial panel.
#include "kernels/bf16.h"
#include "kernels/cpu/scan_internal.h"
#include "kernels/layout.h"
#include "kernels/pack.h"

namespace peakknn::kernels::detail {
namespace {

void PackRow(const float* v, int64_t row, const PanelTarget& target) {
  const int dim = target.dim;
  // Products of two floats are exact in double; only the additions round,
  // in order d = 0, 1, ...
  double squared_norm = 0;
  if (target.type == RowType::kF32) {
    float* data = static_cast<float*>(target.panels);
    for (int d = 0; d < dim; ++d) {
      data[F32PanelOffset(row, d, dim)] = v[d];
      squared_norm += static_cast<double>(v[d]) * v[d];
    }
  } else {
    uint16_t* data = static_cast<uint16_t*>(target.panels);
    const int padded = PaddedDimBf16(dim);
    for (int d = 0; d < padded; ++d) {
      const uint16_t h = d < dim ? FloatToBf16(v[d]) : 0;
      data[Bf16PanelOffset(row, d, padded)] = h;
      const double stored = Bf16ToFloat(h);
      squared_norm += stored * stored;
    }
  }
  target.bias[row] = RowBias(target.score, static_cast<float>(squared_norm));
}

}  // namespace

void ScalarPackRows(const float* rows, int64_t count, int64_t first_row,
                    const PanelTarget& target) {
  for (int64_t i = 0; i < count; ++i) {
    PackRow(rows + i * target.dim, first_row + i, target);
  }
}

void PackByPanels(const float* rows, int64_t count, int64_t first_row,
                  const PanelTarget& target, PackPanelFn pack_panel) {
  const int64_t dim = target.dim;
  const int64_t to_boundary =
      (kPanelRows - first_row % kPanelRows) % kPanelRows;
  const int64_t head = count < to_boundary ? count : to_boundary;
  ScalarPackRows(rows, head, first_row, target);
  int64_t i = head;
  for (; i + kPanelRows <= count; i += kPanelRows) {
    pack_panel(rows + i * dim, (first_row + i) / kPanelRows, target);
  }
  ScalarPackRows(rows + i * dim, count - i, first_row + i, target);
}

}  // namespace peakknn::kernels::detail
