#include "io/vector_files.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace peakknn {
namespace {

// Sanity bound on a record's dimension: larger values mean a corrupt file
// (or the wrong format), not a real vector.
constexpr int64_t kMaxFileDim = int64_t{1} << 24;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

absl::StatusOr<File> Open(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode));
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  return f;
}

absl::StatusOr<int64_t> FileSize(std::FILE* f, const std::string& path) {
  if (std::fseek(f, 0, SEEK_END) != 0) {
    return absl::InternalError(absl::StrCat("cannot seek in ", path));
  }
  const long size = std::ftell(f);
  std::rewind(f);
  if (size < 0) return absl::InternalError(absl::StrCat("cannot size ", path));
  return static_cast<int64_t>(size);
}

bool WantMore(int64_t rows, const ReadOptions& options) {
  return options.max_rows < 0 || rows < options.max_rows;
}

// The .fvecs / .bvecs / .ivecs family: each record is an int32 dim followed
// by dim elements of type Elem, converted to Out.
template <typename Elem, typename Out>
absl::StatusOr<Matrix<Out>> ReadVecs(const std::string& path,
                                     const ReadOptions& options) {
  absl::StatusOr<File> file = Open(path, "rb");
  if (!file.ok()) return file.status();
  std::FILE* f = file->get();
  absl::StatusOr<int64_t> size = FileSize(f, path);
  if (!size.ok()) return size.status();

  Matrix<Out> m;
  std::vector<Elem> buffer;
  int64_t offset = 0;
  while (offset < *size && WantMore(m.rows, options)) {
    int32_t dim = 0;
    if (*size - offset < 4 || std::fread(&dim, 4, 1, f) != 1) {
      return absl::DataLossError(absl::StrCat(
          path, ": truncated record header at byte offset ", offset));
    }
    if (dim <= 0 || dim > kMaxFileDim) {
      return absl::DataLossError(
          absl::StrCat(path, ": record ", m.rows, " at byte offset ", offset,
                       " has dimension ", dim, "; expected 1..", kMaxFileDim));
    }
    if (m.rows == 0) {
      m.dim = dim;
      const int64_t record = 4 + dim * static_cast<int64_t>(sizeof(Elem));
      int64_t expect_rows = *size / record;
      if (options.max_rows >= 0) {
        expect_rows = std::min(expect_rows, options.max_rows);
      }
      m.values.reserve(expect_rows * dim);
    } else if (dim != m.dim) {
      return absl::DataLossError(absl::StrCat(
          path, ": record ", m.rows, " at byte offset ", offset,
          " has dimension ", dim, " but the first record has ", m.dim));
    }
    const int64_t bytes = dim * static_cast<int64_t>(sizeof(Elem));
    buffer.resize(dim);
    if (*size - offset - 4 < bytes ||
        std::fread(buffer.data(), sizeof(Elem), dim, f) !=
            static_cast<size_t>(dim)) {
      return absl::DataLossError(
          absl::StrCat(path, ": record ", m.rows, " at byte offset ", offset,
                       " is truncated: needs ", bytes,
                       " bytes of values, the file has ", *size - offset - 4));
    }
    for (const Elem& e : buffer) m.values.push_back(static_cast<Out>(e));
    ++m.rows;
    offset += 4 + bytes;
  }
  return m;
}

template <typename T>
absl::Status WriteVecs(const std::string& path, const Matrix<T>& m) {
  if (m.dim <= 0 || m.dim > kMaxFileDim ||
      static_cast<int64_t>(m.values.size()) != m.rows * m.dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot write ", path, ": matrix has ", m.rows, " rows of dim ", m.dim,
        " but ", m.values.size(), " values"));
  }
  absl::StatusOr<File> file = Open(path, "wb");
  if (!file.ok()) return file.status();
  const int32_t dim = static_cast<int32_t>(m.dim);
  for (int64_t r = 0; r < m.rows; ++r) {
    if (std::fwrite(&dim, 4, 1, file->get()) != 1 ||
        std::fwrite(m.row(r), sizeof(T), m.dim, file->get()) !=
            static_cast<size_t>(m.dim)) {
      return absl::InternalError(
          absl::StrCat("write to ", path, " failed: ", std::strerror(errno)));
    }
  }
  if (std::fclose(file->release()) != 0) {
    return absl::InternalError(
        absl::StrCat("closing ", path, " failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Value of `key` in a NumPy header dict such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), }: the text
// after "'key':" up to the next top-level ',' or '}' (parentheses nest).
std::string NpyField(std::string_view header, std::string_view key) {
  const std::string quoted = absl::StrCat("'", std::string(key), "'");
  size_t pos = header.find(quoted);
  if (pos == std::string_view::npos) return "";
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string_view::npos) return "";
  int depth = 0;
  size_t end = pos + 1;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  return std::string(absl::StripAsciiWhitespace(
      std::string(header.substr(pos + 1, end - pos - 1))));
}

template <typename Elem>
absl::Status ReadNpyData(std::FILE* f, const std::string& path, int64_t offset,
                         int64_t file_size, FloatMatrix& m) {
  std::vector<Elem> buffer(m.dim);
  // The shape is the header's claim: reserve no more rows than the file
  // holds (a corrupt shape would ask for terabytes).
  const int64_t whole_rows =
      (file_size - offset) / (m.dim * static_cast<int64_t>(sizeof(Elem)));
  m.values.reserve(std::min(m.rows, whole_rows) * m.dim);
  for (int64_t r = 0; r < m.rows; ++r) {
    if (std::fread(buffer.data(), sizeof(Elem), m.dim, f) !=
        static_cast<size_t>(m.dim)) {
      return absl::DataLossError(absl::StrCat(
          path, ": data truncated at row ", r, " (byte offset ",
          offset + r * m.dim * static_cast<int64_t>(sizeof(Elem)), ")"));
    }
    for (const Elem& e : buffer) m.values.push_back(static_cast<float>(e));
  }
  return absl::OkStatus();
}

// Parses "(rows, dim)" from a NumPy shape tuple.
bool ParseShape2(const std::string& shape, int64_t& rows, int64_t& dim) {
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') {
    return false;
  }
  std::vector<int64_t> dims;
  std::string_view rest(shape);
  rest = rest.substr(1, rest.size() - 2);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string field(
        absl::StripAsciiWhitespace(std::string(rest.substr(0, comma))));
    if (!field.empty()) {
      int64_t v = 0;
      const auto [ptr, ec] =
          std::from_chars(field.data(), field.data() + field.size(), v);
      if (ec != std::errc() || ptr != field.data() + field.size() || v < 0) {
        return false;
      }
      dims.push_back(v);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (dims.size() != 2) return false;
  rows = dims[0];
  dim = dims[1];
  return true;
}

// Parses one number of a text line; whitespace around it is allowed.
bool ParseFloat(std::string_view field, float& value) {
  while (!field.empty() && (field.front() == ' ' || field.front() == '\t')) {
    field.remove_prefix(1);
  }
  while (!field.empty() && (field.back() == ' ' || field.back() == '\t')) {
    field.remove_suffix(1);
  }
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  if (field.empty()) return false;
  const auto [ptr, ec] =
      std::from_chars(field.data(), field.data() + field.size(), value);
  return ec == std::errc() && ptr == field.data() + field.size();
}

}  // namespace

absl::StatusOr<FloatMatrix> ReadFvecs(const std::string& path,
                                      const ReadOptions& options) {
  return ReadVecs<float, float>(path, options);
}

absl::StatusOr<FloatMatrix> ReadBvecs(const std::string& path,
                                      const ReadOptions& options) {
  return ReadVecs<uint8_t, float>(path, options);
}

absl::StatusOr<IntMatrix> ReadIvecs(const std::string& path,
                                    const ReadOptions& options) {
  return ReadVecs<int32_t, int32_t>(path, options);
}

absl::Status WriteFvecs(const std::string& path, const FloatMatrix& matrix) {
  return WriteVecs(path, matrix);
}

absl::Status WriteIvecs(const std::string& path, const IntMatrix& matrix) {
  return WriteVecs(path, matrix);
}

absl::StatusOr<FloatMatrix> ReadNpy(const std::string& path,
                                    const ReadOptions& options) {
  absl::StatusOr<File> file = Open(path, "rb");
  if (!file.ok()) return file.status();
  std::FILE* f = file->get();
  absl::StatusOr<int64_t> size = FileSize(f, path);
  if (!size.ok()) return size.status();
  unsigned char preamble[8];
  if (std::fread(preamble, 1, 8, f) != 8 ||
      std::memcmp(preamble, "\x93NUMPY", 6) != 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": not a NumPy .npy file (bad magic at offset 0)"));
  }
  const int major = preamble[6];
  if (major < 1 || major > 3) {
    return absl::UnimplementedError(absl::StrCat(
        path, ": unsupported .npy format version ", major, " (offset 6)"));
  }
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  const int len_size = major == 1 ? 2 : 4;
  if (std::fread(len_bytes, 1, len_size, f) != static_cast<size_t>(len_size)) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated .npy header length at offset 8"));
  }
  for (int i = len_size - 1; i >= 0; --i) {
    header_len = header_len << 8 | len_bytes[i];
  }
  // Checked against the file before it sizes the buffer.
  const bool fits = header_len <= *size - 8 - len_size;
  std::string header(fits ? header_len : 0, '\0');
  if (!fits || std::fread(header.data(), 1, header_len, f) != header_len) {
    return absl::DataLossError(absl::StrCat(path, ": truncated .npy header (",
                                            header_len, " bytes at offset ",
                                            8 + len_size, ")"));
  }
  const int64_t data_offset = 8 + len_size + header_len;
  const std::string descr = NpyField(header, "descr");
  const std::string fortran = NpyField(header, "fortran_order");
  const std::string shape = NpyField(header, "shape");
  if (fortran != "False") {
    return absl::UnimplementedError(absl::StrCat(
        path, ": only C-order .npy arrays are supported; fortran_order is '",
        fortran, "'"));
  }
  FloatMatrix m;
  if (!ParseShape2(shape, m.rows, m.dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a 2-D array; shape is '", shape, "'"));
  }
  if (m.dim == 0 || m.dim > kMaxFileDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": row dimension ", m.dim, " outside 1..", kMaxFileDim));
  }
  if (options.max_rows >= 0) m.rows = std::min(m.rows, options.max_rows);
  absl::Status status;
  if (descr == "'<f4'") {
    status = ReadNpyData<float>(f, path, data_offset, *size, m);
  } else if (descr == "'<f8'") {
    status = ReadNpyData<double>(f, path, data_offset, *size, m);
  } else if (descr == "'|u1'" || descr == "'<u1'") {
    status = ReadNpyData<uint8_t>(f, path, data_offset, *size, m);
  } else {
    return absl::UnimplementedError(
        absl::StrCat(path, ": unsupported .npy dtype ", descr,
                     " (supported: '<f4', '<f8', '|u1')"));
  }
  if (!status.ok()) return status;
  return m;
}

absl::StatusOr<FloatMatrix> ReadDelimited(const std::string& path,
                                          char separator,
                                          const ReadOptions& options) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  FloatMatrix m;
  std::string line;
  std::vector<float> row;
  for (int64_t line_number = 1;
       WantMore(m.rows, options) && std::getline(in, line); ++line_number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    row.clear();
    std::string_view rest(line);
    for (int64_t column = 1;; ++column) {
      const size_t cut = rest.find(separator);
      float value = 0;
      if (!ParseFloat(rest.substr(0, cut), value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ":", line_number, ": column ", column, " is not a number: '",
            std::string(rest.substr(0, cut)), "'"));
      }
      row.push_back(value);
      if (options.columns > 0 &&
          static_cast<int64_t>(row.size()) == options.columns) {
        break;
      }
      if (cut == std::string_view::npos) break;
      rest = rest.substr(cut + 1);
    }
    if (options.columns > 0 &&
        static_cast<int64_t>(row.size()) < options.columns) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": has ", row.size(),
                       " values; expected at least ", options.columns));
    }
    if (m.rows == 0) {
      m.dim = static_cast<int64_t>(row.size());
    } else if (static_cast<int64_t>(row.size()) != m.dim) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": has ", row.size(),
                       " values but earlier lines have ", m.dim));
    }
    m.values.insert(m.values.end(), row.begin(), row.end());
    ++m.rows;
  }
  if (in.bad()) {
    return absl::InternalError(absl::StrCat("read error on ", path));
  }
  return m;
}

absl::StatusOr<FloatMatrix> ReadIdx(const std::string& path,
                                    const ReadOptions& options) {
  // gzopen reads plain files transparently, so .gz is optional.
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "rb"),
                                                gzclose);
  if (gz == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  const auto read = [&](void* out, unsigned bytes) {
    return gzread(gz.get(), out, bytes) == static_cast<int>(bytes);
  };
  unsigned char magic[4];
  if (!read(magic, 4) || magic[0] != 0 || magic[1] != 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": not an IDX file (bad magic at offset 0)"));
  }
  if (magic[2] != 0x08) {
    return absl::UnimplementedError(absl::StrCat(
        path, ": IDX element type 0x", absl::Hex(magic[2]),
        " at offset 2 is not supported (only 0x08, unsigned byte)"));
  }
  const int ndims = magic[3];
  if (ndims < 1) {
    return absl::DataLossError(
        absl::StrCat(path, ": IDX header declares 0 dimensions (offset 3)"));
  }
  FloatMatrix m;
  m.dim = 1;
  for (int i = 0; i < ndims; ++i) {
    unsigned char b[4];
    if (!read(b, 4)) {
      return absl::DataLossError(
          absl::StrCat(path, ": truncated IDX header at offset ", 4 + 4 * i));
    }
    const int64_t d = int64_t{b[0]} << 24 | b[1] << 16 | b[2] << 8 | b[3];
    if (i == 0) {
      m.rows = d;
    } else if (d > kMaxFileDim) {
      m.dim = d;  // refused below; multiplying on could overflow
      break;
    } else {
      m.dim *= d;  // both factors <= kMaxFileDim: no overflow
      if (m.dim > kMaxFileDim) break;
    }
  }
  if (m.dim < 1 || m.dim > kMaxFileDim) {
    return absl::DataLossError(absl::StrCat(path, ": IDX row size ", m.dim,
                                            " outside 1..", kMaxFileDim));
  }
  if (options.max_rows >= 0) m.rows = std::min(m.rows, options.max_rows);
  const int64_t data_offset = 4 + 4 * ndims;
  std::vector<unsigned char> buffer(m.dim);
  // No reserve from the header's row count: the size of a gzipped file's
  // data is not known up front, and a corrupt count would allocate
  // terabytes. The rows read make the vector grow.
  for (int64_t r = 0; r < m.rows; ++r) {
    if (!read(buffer.data(), static_cast<unsigned>(m.dim))) {
      return absl::DataLossError(
          absl::StrCat(path, ": IDX data truncated at row ", r,
                       " (uncompressed offset ", data_offset + r * m.dim, ")"));
    }
    m.values.insert(m.values.end(), buffer.begin(), buffer.end());
  }
  return m;
}

absl::StatusOr<FloatMatrix> ReadVectors(const std::string& path,
                                        const ReadOptions& options) {
  const std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".fvecs")) return ReadFvecs(path, options);
  if (absl::EndsWith(lower, ".bvecs")) return ReadBvecs(path, options);
  if (absl::EndsWith(lower, ".npy")) return ReadNpy(path, options);
  if (absl::EndsWith(lower, ".csv")) return ReadDelimited(path, ',', options);
  if (absl::EndsWith(lower, ".tsv")) return ReadDelimited(path, '\t', options);
  if (absl::StrContains(lower, "-idx") || absl::EndsWith(lower, ".gz")) {
    return ReadIdx(path, options);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path,
      ": unknown vector file type (expected .fvecs, .bvecs, .npy, .csv, "
      ".tsv or an IDX file)"));
}

}  // namespace peakknn
