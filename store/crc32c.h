// CRC32C (Castagnoli), the checksum on every WAL record and checkpoint chunk.
//
// Computed by ISA-L's crc32_iscsi, which picks a hardware path (SSE4.2 crc32,
// PCLMULQDQ folding) at run time. Debian 12 ships no libcrc32c-dev; ISA-L
// (libisal-dev) is the packaged, maintained CRC32C there, so we use it rather
// than hand-roll a table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace peakknn {

// CRC32C of `size` bytes continuing from `crc` (the CRC of the bytes before
// them; 0 for none), so Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32c(uint32_t crc, const void* data, size_t size);

inline uint32_t Crc32c(std::string_view bytes) {
  return Crc32c(0, bytes.data(), bytes.size());
}

}  // namespace peakknn
