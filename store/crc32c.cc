#include "store/crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <climits>

namespace peakknn {

uint32_t Crc32c(uint32_t crc, const void* data, size_t size) {
  // crc32_iscsi works on the raw register (no final inversion) and takes an
  // int length; the standard CRC32C inverts on the way in and out.
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t reg = ~crc;
  while (size > 0) {
    const size_t n = std::min<size_t>(size, INT_MAX);
    // ISA-L's prototype takes a non-const pointer but does not write.
    reg = crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(n), reg);
    p += n;
    size -= n;
  }
  return ~reg;
}

}  // namespace peakknn
