// Readers and writers for the vector file formats benchmarks and the CLI use.
//
// Every reader returns a dense row-major matrix and fails with an
// absl::Status that names the file and the byte offset (binary formats) or
// line number (text formats) of the first malformed record.
//
//   .fvecs  per row: int32 dim (little-endian), then dim float32
//   .bvecs  per row: int32 dim, then dim uint8 (converted to float)
//   .ivecs  per row: int32 dim, then dim int32 (e.g. ground-truth ids)
//   .npy    NumPy v1-v3, 2-D, C order, dtype <f4, <f8 or |u1 (to float)
//   .csv / .tsv  one row per line, comma / tab separated numbers; empty
//           lines are skipped, anything non-numeric is an error
//   IDX     (MNIST / Fashion-MNIST, optionally gzipped; recognised by a
//           name containing "-idx" or ending in ".gz"): unsigned byte data,
//           first dimension = rows, the product of the others = dim
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace peakknn {

template <typename T>
struct Matrix {
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<T> values;  // row-major [rows][dim]

  const T* row(int64_t r) const { return values.data() + r * dim; }
};

using FloatMatrix = Matrix<float>;
using IntMatrix = Matrix<int32_t>;

struct ReadOptions {
  // Read at most this many rows (the first ones); -1 reads all.
  int64_t max_rows = -1;
  // Text formats only: keep the first `columns` values of each line and
  // ignore the rest (e.g. a trailing id column); 0 keeps all. Lines with
  // fewer values are an error.
  int64_t columns = 0;
};

// Reads any supported format, chosen by the file name (see above).
absl::StatusOr<FloatMatrix> ReadVectors(const std::string& path,
                                        const ReadOptions& options = {});

absl::StatusOr<FloatMatrix> ReadFvecs(const std::string& path,
                                      const ReadOptions& options = {});
absl::StatusOr<FloatMatrix> ReadBvecs(const std::string& path,
                                      const ReadOptions& options = {});
absl::StatusOr<FloatMatrix> ReadNpy(const std::string& path,
                                    const ReadOptions& options = {});
// separator: ',' or '\t'.
absl::StatusOr<FloatMatrix> ReadDelimited(const std::string& path,
                                          char separator,
                                          const ReadOptions& options = {});
absl::StatusOr<FloatMatrix> ReadIdx(const std::string& path,
                                    const ReadOptions& options = {});
absl::StatusOr<IntMatrix> ReadIvecs(const std::string& path,
                                    const ReadOptions& options = {});

// Writes .fvecs / .ivecs (every row with the matrix's dim).
absl::Status WriteFvecs(const std::string& path, const FloatMatrix& matrix);
absl::Status WriteIvecs(const std::string& path, const IntMatrix& matrix);

}  // namespace peakknn
