#include "io/vector_files.h"

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return testing::TempDir() + "/vector_files_test_" + name;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

template <typename T>
void Append(std::string& bytes, T value) {
  bytes.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

FloatMatrix Sample(int64_t rows, int64_t dim) {
  FloatMatrix m{rows, dim, {}};
  for (int64_t i = 0; i < rows * dim; ++i) {
    m.values.push_back(static_cast<float>(i) * 0.25f - 3.0f);
  }
  return m;
}

TEST(VectorFilesTest, FvecsRoundTrip) {
  const std::string path = TempPath("a.fvecs");
  const FloatMatrix m = Sample(7, 5);
  ASSERT_TRUE(WriteFvecs(path, m).ok());
  absl::StatusOr<FloatMatrix> read = ReadVectors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 7);
  EXPECT_EQ(read->dim, 5);
  EXPECT_EQ(read->values, m.values);
  EXPECT_EQ(std::filesystem::file_size(path), 7u * (4 + 5 * 4));

  read = ReadFvecs(path, {.max_rows = 3});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 3);
  EXPECT_EQ(read->values,
            std::vector<float>(m.values.begin(), m.values.begin() + 15));
}

TEST(VectorFilesTest, IvecsRoundTrip) {
  const std::string path = TempPath("gt.ivecs");
  const IntMatrix m{2, 3, {5, -1, 7, 2147483647, 0, 9}};
  ASSERT_TRUE(WriteIvecs(path, m).ok());
  const absl::StatusOr<IntMatrix> read = ReadIvecs(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 2);
  EXPECT_EQ(read->dim, 3);
  EXPECT_EQ(read->values, m.values);
}

TEST(VectorFilesTest, WriteRejectsInconsistentMatrix) {
  const absl::Status status =
      WriteIvecs(TempPath("bad.ivecs"), IntMatrix{2, 3, {1, 2, 3}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("3 values"));
}

TEST(VectorFilesTest, ReadsBvecsAsFloat) {
  std::string bytes;
  for (int r = 0; r < 2; ++r) {
    Append<int32_t>(bytes, 3);
    for (uint8_t v : {uint8_t(r), uint8_t(128), uint8_t(255)}) {
      Append(bytes, v);
    }
  }
  const std::string path = TempPath("b.bvecs");
  WriteBytes(path, bytes);
  const absl::StatusOr<FloatMatrix> read = ReadVectors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 2);
  EXPECT_THAT(read->values, ElementsAre(0, 128, 255, 1, 128, 255));
}

TEST(VectorFilesTest, MalformedVecsNameTheOffset) {
  std::string good;
  Append<int32_t>(good, 2);
  Append<float>(good, 1.0f);
  Append<float>(good, 2.0f);
  const std::string path = TempPath("bad.fvecs");

  // Second record truncated after 1 of 2 values: offset 12.
  std::string bytes = good;
  Append<int32_t>(bytes, 2);
  Append<float>(bytes, 3.0f);
  WriteBytes(path, bytes);
  absl::StatusOr<FloatMatrix> read = ReadFvecs(path);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(),
              AllOf(HasSubstr(path), HasSubstr("byte offset 12"),
                    HasSubstr("truncated")));

  // Dimension changes in record 1.
  bytes = good;
  Append<int32_t>(bytes, 3);
  for (int i = 0; i < 3; ++i) Append<float>(bytes, 0.0f);
  WriteBytes(path, bytes);
  read = ReadFvecs(path);
  EXPECT_THAT(read.status().message(),
              AllOf(HasSubstr("record 1"), HasSubstr("byte offset 12"),
                    HasSubstr("dimension 3"), HasSubstr("first record has 2")));

  // Negative dimension; partial header.
  bytes = good;
  Append<int32_t>(bytes, -5);
  WriteBytes(path, bytes);
  EXPECT_THAT(ReadFvecs(path).status().message(),
              HasSubstr("has dimension -5"));
  WriteBytes(path, good + std::string("\x02\x00", 2));
  EXPECT_THAT(ReadFvecs(path).status().message(),
              HasSubstr("truncated record header at byte offset 12"));
}

TEST(VectorFilesTest, MissingFileAndUnknownType) {
  const absl::StatusOr<FloatMatrix> missing =
      ReadVectors("/nonexistent/dir/x.fvecs");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/dir/x"));
  const absl::StatusOr<FloatMatrix> unknown = ReadVectors("data.parquet");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("data.parquet"));
}

// A NumPy v1 file: magic, version, little-endian u16 header length, the dict
// padded with spaces and a newline to a multiple of 64 bytes, then the data.
std::string Npy(const std::string& descr, const std::string& shape,
                const std::string& data, bool fortran = false) {
  std::string dict = "{'descr': '" + descr +
                     "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': " + shape + ", }";
  const size_t total = (10 + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - 10 - dict.size() - 1, ' ');
  dict += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  Append<uint16_t>(bytes, static_cast<uint16_t>(dict.size()));
  return bytes + dict + data;
}

TEST(VectorFilesTest, ReadsNpyDtypes) {
  const std::string path = TempPath("a.npy");
  std::string f4, f8, u1;
  for (int i = 0; i < 6; ++i) {
    Append<float>(f4, i * 1.5f);
    Append<double>(f8, i * -2.0);
    Append<uint8_t>(u1, static_cast<uint8_t>(250 + i));
  }
  WriteBytes(path, Npy("<f4", "(2, 3)", f4));
  absl::StatusOr<FloatMatrix> read = ReadVectors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 2);
  EXPECT_EQ(read->dim, 3);
  EXPECT_THAT(read->values, ElementsAre(0, 1.5, 3, 4.5, 6, 7.5));

  WriteBytes(path, Npy("<f8", "(3, 2)", f8));
  read = ReadNpy(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->dim, 2);
  EXPECT_THAT(read->values, ElementsAre(0, -2, -4, -6, -8, -10));

  WriteBytes(path, Npy("|u1", "(6, 1)", u1));
  read = ReadNpy(path, {.max_rows = 4});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 4);
  EXPECT_THAT(read->values, ElementsAre(250, 251, 252, 253));
}

TEST(VectorFilesTest, RejectsUnsupportedNpy) {
  const std::string path = TempPath("bad.npy");
  const std::string data(48, '\0');
  WriteBytes(path, Npy("<i8", "(2, 3)", data));
  EXPECT_THAT(ReadNpy(path).status().message(),
              AllOf(HasSubstr(path), HasSubstr("'<i8'")));
  WriteBytes(path, Npy(">f4", "(2, 3)", data));
  EXPECT_THAT(ReadNpy(path).status().message(), HasSubstr("'>f4'"));
  WriteBytes(path, Npy("<f4", "(2, 3, 2)", data));
  EXPECT_THAT(ReadNpy(path).status().message(),
              AllOf(HasSubstr("2-D"), HasSubstr("(2, 3, 2)")));
  WriteBytes(path, Npy("<f4", "(6,)", data));
  EXPECT_THAT(ReadNpy(path).status().message(), HasSubstr("2-D"));
  WriteBytes(path, Npy("<f4", "(2, 3)", data, /*fortran=*/true));
  EXPECT_THAT(ReadNpy(path).status().message(), HasSubstr("C-order"));
  WriteBytes(path, Npy("<f4", "(3, 3)", data.substr(0, 30)));
  EXPECT_THAT(ReadNpy(path).status().message(),
              AllOf(HasSubstr("truncated at row 2"), HasSubstr("offset 152")));
  WriteBytes(path, "PK\x03\x04 not numpy");
  EXPECT_THAT(ReadNpy(path).status().message(), HasSubstr("bad magic"));
}

TEST(VectorFilesTest, ReadsCsvAndTsv) {
  const std::string csv = TempPath("a.csv");
  WriteBytes(csv, "1,2.5,-3e2\r\n\n 4 , 5,6\n");
  absl::StatusOr<FloatMatrix> read = ReadVectors(csv);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 2);
  EXPECT_EQ(read->dim, 3);
  EXPECT_THAT(read->values, ElementsAre(1, 2.5, -300, 4, 5, 6));

  const std::string tsv = TempPath("a.tsv");
  WriteBytes(tsv, "1\t2\t100001\n3\t4\t100002\n5\t6\t100003\n");
  read = ReadVectors(tsv, {.max_rows = 2, .columns = 2});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 2);
  EXPECT_THAT(read->values, ElementsAre(1, 2, 3, 4));
}

TEST(VectorFilesTest, MalformedTextNamesTheLine) {
  const std::string path = TempPath("bad.csv");
  WriteBytes(path, "x,y\n1,2\n");  // a header line is not data
  EXPECT_THAT(
      ReadVectors(path).status().message(),
      AllOf(HasSubstr(path + ":1"), HasSubstr("column 1"), HasSubstr("'x'")));
  WriteBytes(path, "1,2\n3,4\n5,oops\n");
  EXPECT_THAT(
      ReadVectors(path).status().message(),
      AllOf(HasSubstr(":3:"), HasSubstr("column 2"), HasSubstr("'oops'")));
  WriteBytes(path, "1,2\n3,4,5\n");
  EXPECT_THAT(ReadVectors(path).status().message(),
              AllOf(HasSubstr(":2:"), HasSubstr("3 values")));
  WriteBytes(path, "1,2,\n");  // trailing separator: an empty field
  EXPECT_THAT(ReadVectors(path).status().message(), HasSubstr("column 3"));
  WriteBytes(path, "1,2\n");
  EXPECT_THAT(ReadDelimited(path, ',', {.columns = 3}).status().message(),
              AllOf(HasSubstr(":1:"), HasSubstr("at least 3")));
}

void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

std::string IdxHeader(uint8_t type, std::vector<uint32_t> dims) {
  std::string bytes{'\0', '\0', static_cast<char>(type),
                    static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      bytes += static_cast<char>((d >> shift) & 0xff);
    }
  }
  return bytes;
}

TEST(VectorFilesTest, ReadsGzippedIdx) {
  const std::string path = TempPath("images-idx3-ubyte.gz");
  std::string bytes = IdxHeader(0x08, {3, 2, 2});
  for (int i = 0; i < 12; ++i) bytes += static_cast<char>(i * 20);
  WriteGzip(path, bytes);
  absl::StatusOr<FloatMatrix> read = ReadVectors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 3);
  EXPECT_EQ(read->dim, 4);
  EXPECT_EQ(read->values[11], 220);

  WriteGzip(path, bytes.substr(0, bytes.size() - 1));
  EXPECT_THAT(ReadVectors(path).status().message(),
              AllOf(HasSubstr("truncated at row 2"), HasSubstr("offset 24")));
  WriteGzip(path, IdxHeader(0x0d, {3, 2, 2}));
  EXPECT_THAT(ReadVectors(path).status().message(),
              AllOf(HasSubstr("0xd"), HasSubstr("not supported")));
}

TEST(VectorFilesTest, ReadsDebianFashionMnist) {
  const std::string path =
      "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << path << " absent: apt-get install dataset-fashion-mnist";
  }
  const absl::StatusOr<FloatMatrix> read = ReadVectors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 10000);
  EXPECT_EQ(read->dim, 784);
  float max = 0;
  for (float v : read->values) max = std::max(max, v);
  EXPECT_EQ(max, 255);
}

// The copy the repository ships (data/sift5k); ctest sets the variable.
std::string Sift5kDir() {
  const char* source = std::getenv("PEAKKNN_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/data/sift5k";
}

TEST(VectorFilesTest, ReadsSift5k) {
  const std::string dir = Sift5kDir();
  // Base lines carry a trailing id column after the 128 values.
  absl::StatusOr<FloatMatrix> all = ReadVectors(dir + "/sift-dataset-5k.tsv");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->rows, 5000);
  EXPECT_EQ(all->dim, 129);
  EXPECT_EQ(all->row(0)[128], 100001);
  EXPECT_EQ(all->row(4999)[128], 105000);

  const absl::StatusOr<FloatMatrix> base =
      ReadVectors(dir + "/sift-dataset-5k.tsv", {.columns = 128});
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(base->rows, 5000);
  EXPECT_EQ(base->dim, 128);
  EXPECT_TRUE(std::equal(base->row(7), base->row(7) + 128, all->row(7)));
  for (float v : base->values) {
    ASSERT_GE(v, 0);
    ASSERT_LE(v, 255);
  }
  const absl::StatusOr<FloatMatrix> queries =
      ReadVectors(dir + "/sift-query-3.tsv");
  ASSERT_TRUE(queries.ok()) << queries.status();
  EXPECT_EQ(queries->rows, 3);
  EXPECT_EQ(queries->dim, 128);
}

}  // namespace
}  // namespace peakknn
