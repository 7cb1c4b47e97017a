// store/coding.h: every value is compared with its exact little-endian
// bytes, written out as hex, so a host-order write would fail here on a
// big-endian machine. The array codecs run both paths on this machine: the
// native one and the element-wise one a big-endian host compiles.
#include "store/coding.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

// "08 07 06" -> the bytes 0x08 0x07 0x06.
std::string Bytes(std::string hex) {
  std::erase(hex, ' ');
  return absl::HexStringToBytes(hex);
}

std::string Hex(const std::string& bytes) {
  return absl::BytesToHexString(bytes);
}

TEST(CodingTest, Fixed32And64AreLittleEndian) {
  std::string out;
  PutFixed32(&out, 0x01020304u);
  EXPECT_EQ(Hex(out), "04030201");
  out.clear();
  PutFixed64(&out, 0x0102030405060708ull);
  EXPECT_EQ(out, Bytes("08 07 06 05 04 03 02 01"));
  out.clear();
  PutFixed8(&out, 0xAB);
  PutFixed32(&out, 0xFFFFFFFEu);
  PutFixed64(&out, 1);
  EXPECT_EQ(out, Bytes("AB FEFFFFFF 0100000000000000"));

  char buf[8];
  EncodeFixed32(buf, 0xDEADBEEFu);
  EXPECT_EQ(std::string(buf, 4), Bytes("EF BE AD DE"));
  EncodeFixed64(buf, 0x8000000000000001ull);
  EXPECT_EQ(std::string(buf, 8), Bytes("01 00 00 00 00 00 00 80"));
}

TEST(CodingTest, DecodesFixtures) {
  EXPECT_EQ(DecodeFixed32(Bytes("04 03 02 01").data()), 0x01020304u);
  EXPECT_EQ(DecodeFixed32(Bytes("EF BE AD DE").data()), 0xDEADBEEFu);
  EXPECT_EQ(DecodeFixed64(Bytes("08 07 06 05 04 03 02 01").data()),
            0x0102030405060708ull);
  // High bits set in every byte: no sign extension of char.
  EXPECT_EQ(DecodeFixed64(Bytes("FF FE FD FC FB FA F9 F8").data()),
            0xF8F9FAFBFCFDFEFFull);
}

std::string EncodeFloat(float value) {
  std::string out;
  PutFloatArray(&out, {&value, 1});
  return out;
}

float DecodeFloat(const std::string& bytes) {
  float value;
  DecodeFloatArray(bytes.data(), {&value, 1});
  return value;
}

TEST(CodingTest, FloatsAreTheirBitPatterns) {
  EXPECT_EQ(EncodeFloat(1.0f), Bytes("00 00 80 3F"));
  EXPECT_EQ(EncodeFloat(-2.5f), Bytes("00 00 20 C0"));
  EXPECT_EQ(EncodeFloat(-0.0f), Bytes("00 00 00 80"));
  EXPECT_EQ(DecodeFloat(Bytes("00 00 80 3F")), 1.0f);
  EXPECT_EQ(DecodeFloat(Bytes("DB 0F 49 40")), 3.14159274f);
  // A NaN with a payload keeps every bit.
  const float nan = DecodeFloat(Bytes("01 00 C0 FF"));
  EXPECT_TRUE(std::isnan(nan));
  EXPECT_EQ(std::bit_cast<uint32_t>(nan), 0xFFC00001u);
}

const std::vector<uint64_t> kIds = {0x0102030405060708ull, 1,
                                    0xFFFFFFFFFFFFFFFFull};
const char kIdBytes[] =
    "08 07 06 05 04 03 02 01"
    "01 00 00 00 00 00 00 00"
    "FF FF FF FF FF FF FF FF";
const std::vector<float> kFloats = {1.0f, -2.5f, -0.0f,
                                    std::numeric_limits<float>::infinity()};
const char kFloatBytes[] = "0000803F 000020C0 00000080 0000807F";

// Both paths of the array codecs: T = the element, kHost = the host order
// whose path runs.
template <std::endian kHost, typename T>
std::string EncodeWith(const std::vector<T>& values) {
  std::string out = "x";  // appends after what is there
  coding_internal::PutArray<kHost, T>(&out, values);
  return out.substr(1);
}

template <std::endian kHost, typename T>
std::vector<T> DecodeWith(const std::string& bytes, size_t n) {
  std::vector<T> out(n);
  coding_internal::DecodeArray<kHost, T>(bytes.data(), std::span<T>(out));
  return out;
}

TEST(CodingTest, ArraysMatchFixturesOnBothPaths) {
  EXPECT_EQ(Hex(EncodeWith<std::endian::little>(kIds)), Hex(Bytes(kIdBytes)));
  EXPECT_EQ(Hex(EncodeWith<std::endian::big>(kIds)), Hex(Bytes(kIdBytes)));
  EXPECT_EQ(Hex(EncodeWith<std::endian::little>(kFloats)),
            Hex(Bytes(kFloatBytes)));
  EXPECT_EQ(Hex(EncodeWith<std::endian::big>(kFloats)),
            Hex(Bytes(kFloatBytes)));

  EXPECT_EQ((DecodeWith<std::endian::little, uint64_t>(Bytes(kIdBytes), 3)),
            kIds);
  EXPECT_EQ((DecodeWith<std::endian::big, uint64_t>(Bytes(kIdBytes), 3)), kIds);
  EXPECT_EQ((DecodeWith<std::endian::little, float>(Bytes(kFloatBytes), 4)),
            kFloats);
  EXPECT_EQ((DecodeWith<std::endian::big, float>(Bytes(kFloatBytes), 4)),
            kFloats);

  // The public forms are the native path.
  std::string out;
  PutFixed64Array(&out, kIds);
  PutFloatArray(&out, kFloats);
  EXPECT_EQ(Hex(out), Hex(Bytes(kIdBytes) + Bytes(kFloatBytes)));
  std::vector<uint64_t> ids(3);
  std::vector<float> floats(4);
  DecodeFixed64Array(out.data(), ids);
  DecodeFloatArray(out.data() + 24, floats);
  EXPECT_EQ(ids, kIds);
  EXPECT_EQ(floats, kFloats);
}

TEST(CodingTest, RandomArraysRoundTripBitForBitAcrossPaths) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> ids(1001);
  std::vector<float> floats(1001);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = rng();
    // Any bit pattern, NaNs and denormals included.
    floats[i] = std::bit_cast<float>(static_cast<uint32_t>(rng()));
  }
  const std::string id_bytes = EncodeWith<std::endian::little>(ids);
  const std::string float_bytes = EncodeWith<std::endian::little>(floats);
  EXPECT_EQ(id_bytes, EncodeWith<std::endian::big>(ids));
  EXPECT_EQ(float_bytes, EncodeWith<std::endian::big>(floats));
  // Each element's bytes are its value, least significant byte first.
  EXPECT_EQ(DecodeFixed64(id_bytes.data() + 8 * 500), ids[500]);
  EXPECT_EQ(DecodeFixed32(float_bytes.data() + 4 * 999),
            std::bit_cast<uint32_t>(floats[999]));

  // Written by one path, read by the other: a file moves between hosts.
  EXPECT_EQ((DecodeWith<std::endian::big, uint64_t>(id_bytes, ids.size())),
            ids);
  const auto back =
      DecodeWith<std::endian::big, float>(float_bytes, floats.size());
  for (size_t i = 0; i < floats.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(back[i]),
              std::bit_cast<uint32_t>(floats[i]))
        << "element " << i;
  }
}

}  // namespace
}  // namespace peakknn
