// Fuzz target: every vector-file reader (io/vector_files.h). One target for
// all formats: they share the file plumbing and row assembly, an input
// mutated from one format's seed is a good test of another's header
// checks, and one corpus and one CI slot cost less than seven.
//
// Input layout: byte 0 picks the reader and options, the rest is the file.
//   bits 0-2  0 .fvecs, 1 .bvecs, 2 .ivecs, 3 .npy, 4 .csv, 5 .tsv,
//             6 IDX (plain), 7 IDX through the ".gz" name (zlib reads a
//             gzip stream, or plain bytes as they are)
//   bit 3     ReadOptions::max_rows = 3 (else all rows)
//   bit 4     ReadOptions::columns = 2 (text formats)
// A reader must return a matrix whose values fill rows * dim exactly, or
// an error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/vector_files.h"
#include "tests/fuzz/fuzz_env.h"

namespace peakknn::fuzz {
namespace {

template <typename T>
void CheckShape(const absl::StatusOr<Matrix<T>>& m, const ReadOptions& o) {
  if (!m.ok()) return;
  const bool shape_ok =
      m->rows >= 0 && m->dim >= 0 &&
      m->values.size() == static_cast<size_t>(m->rows * m->dim) &&
      (o.max_rows < 0 || m->rows <= o.max_rows);
  if (!shape_ok) {
    std::fprintf(stderr, "reader returned rows %lld dim %lld values %zu\n",
                 static_cast<long long>(m->rows),
                 static_cast<long long>(m->dim), m->values.size());
    std::abort();
  }
}

}  // namespace

void FuzzOne(uint8_t selector, std::string_view file) {
  static constexpr const char* kNames[] = {"v.fvecs", "v.bvecs", "v.ivecs",
                                           "v.npy",   "v.csv",   "v.tsv",
                                           "v-idx",   "v.gz"};
  const int format = selector & 7;
  ReadOptions options;
  if ((selector & 8) != 0) options.max_rows = 3;
  if ((selector & 16) != 0) options.columns = 2;
  const std::string path = FreshScratchDir() + "/" + kNames[format];
  WriteFile(path, file);
  switch (format) {
    case 0:
      CheckShape(ReadFvecs(path, options), options);
      break;
    case 1:
      CheckShape(ReadBvecs(path, options), options);
      break;
    case 2:
      CheckShape(ReadIvecs(path, options), options);
      break;
    case 3:
      CheckShape(ReadNpy(path, options), options);
      break;
    case 4:
    case 5:
      CheckShape(ReadDelimited(path, format == 4 ? ',' : '\t', options),
                 options);
      break;
    default:
      CheckShape(ReadVectors(path, options), options);  // IDX by its name
      break;
  }
}

}  // namespace peakknn::fuzz
