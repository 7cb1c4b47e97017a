// The on-disk encoding of integers and floats, in one place: every
// multi-byte value the store writes (WAL records, checkpoint data files) is
// little-endian, whatever the byte order of the host.
//
// Scalars are encoded with shifts, which is right on any host (compilers
// turn it into one load or store on little-endian ones). Arrays of ids and
// vectors, the bulk of every file, are one memcpy on a little-endian host;
// on a big-endian host each element is encoded on its own, which swaps its
// bytes. The path is chosen at compile time from std::endian::native. The
// element-wise path is correct on every host, so tests/coding_test.cc runs
// it on little-endian machines too, against the same byte fixtures.
//
// A float is stored as its IEEE-754 binary32 bit pattern: every bit
// (negative zero, NaN payloads) round-trips.
//
// Decode functions read exactly the bytes named (4, 8, or 8 / 4 per
// element); the caller checks that they are there.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace peakknn {

static_assert(std::endian::native == std::endian::little ||
                  std::endian::native == std::endian::big,
              "the store's encoding needs a little- or big-endian host");

inline void EncodeFixed32(char* dst, uint32_t value) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>(value >> (8 * i));
}

inline void EncodeFixed64(char* dst, uint64_t value) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>(value >> (8 * i));
}

inline uint32_t DecodeFixed32(const char* src) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= uint32_t{static_cast<unsigned char>(src[i])} << (8 * i);
  }
  return value;
}

inline uint64_t DecodeFixed64(const char* src) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value |= uint64_t{static_cast<unsigned char>(src[i])} << (8 * i);
  }
  return value;
}

// Appends the encoding to *dst.
inline void PutFixed8(std::string* dst, uint8_t value) {
  dst->push_back(static_cast<char>(value));
}

inline void PutFixed32(std::string* dst, uint32_t value) {
  char buf[4];
  EncodeFixed32(buf, value);
  dst->append(buf, sizeof(buf));
}

inline void PutFixed64(std::string* dst, uint64_t value) {
  char buf[8];
  EncodeFixed64(buf, value);
  dst->append(buf, sizeof(buf));
}

namespace coding_internal {

// The array codecs for a host of byte order kHost. The store uses only
// kHost == std::endian::native; std::endian::big selects the element-wise
// path, which is correct on any host (tests run it everywhere).
template <std::endian kHost, typename T>
void EncodeArray(std::span<const T> values, char* dst) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  if constexpr (kHost == std::endian::little) {
    // An empty span may have a null data(), which memcpy must not get.
    if (!values.empty()) std::memcpy(dst, values.data(), values.size_bytes());
  } else {
    for (const T value : values) {
      if constexpr (sizeof(T) == 4) {
        EncodeFixed32(dst, std::bit_cast<uint32_t>(value));
      } else {
        EncodeFixed64(dst, std::bit_cast<uint64_t>(value));
      }
      dst += sizeof(T);
    }
  }
}

template <std::endian kHost, typename T>
void DecodeArray(const char* src, std::span<T> out) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  if constexpr (kHost == std::endian::little) {
    // An empty span may have a null data(), which memcpy must not get.
    if (!out.empty()) std::memcpy(out.data(), src, out.size_bytes());
  } else {
    for (T& value : out) {
      if constexpr (sizeof(T) == 4) {
        value = std::bit_cast<T>(DecodeFixed32(src));
      } else {
        value = std::bit_cast<T>(DecodeFixed64(src));
      }
      src += sizeof(T);
    }
  }
}

template <std::endian kHost, typename T>
void PutArray(std::string* dst, std::span<const T> values) {
  const size_t start = dst->size();
  dst->resize(start + values.size_bytes());
  EncodeArray<kHost, T>(values, dst->data() + start);
}

}  // namespace coding_internal

// Appends 8 bytes per id / 4 bytes per float.
inline void PutFixed64Array(std::string* dst,
                            std::span<const uint64_t> values) {
  coding_internal::PutArray<std::endian::native, uint64_t>(dst, values);
}

inline void PutFloatArray(std::string* dst, std::span<const float> values) {
  coding_internal::PutArray<std::endian::native, float>(dst, values);
}

// Reads out.size() elements (8 / 4 bytes each) from src.
inline void DecodeFixed64Array(const char* src, std::span<uint64_t> out) {
  coding_internal::DecodeArray<std::endian::native, uint64_t>(src, out);
}

inline void DecodeFloatArray(const char* src, std::span<float> out) {
  coding_internal::DecodeArray<std::endian::native, float>(src, out);
}

}  // namespace peakknn
