// The memory of one row block: an anonymous mapping, faulted in whole when
// it is allocated.
//
// Why: a block is written front to back soon after it is allocated, and
// first-touch page faults dominated ingest and recovery (one per 4 KiB; very
// costly in a VM). So the mapping is
//   - aligned to 2 MiB with MADV_HUGEPAGE when it spans at least one huge
//     page, so the kernel can back it with transparent huge pages (each
//     whole 2 MiB of it; a partial last one stays in 4 KiB pages), and
//   - populated at once with MADV_POPULATE_WRITE (Linux >= 5.14): one
//     system call instead of a fault per page.
// Measured on the development VM (Firecracker, 2 cores; 16 fresh 32 MiB
// mappings, fault-in plus first write, 3 runs): 4 KiB pages touched one by
// one 10-13.7 s; 4 KiB pages populated 5.2-5.7 s (the populate is quick but
// the first write still pays); huge pages touched 2.8-6.6 s; huge pages
// populated 0.3-0.4 s. Either madvise failing (no THP, an older kernel)
// only costs speed: pages then fault in lazily.
//
// Memory: bytes() is the mapping's size (the request rounded up to 4 KiB),
// all of it resident once populated. The bytes past the request are
// poisoned for AddressSanitizer.
// Out of memory is fatal, as for operator new: a row write cannot fail.
//
// Thread-safety: the owner hands out the memory; this class only maps and
// unmaps it.
#pragma once

#include <cstdint>

namespace peakknn {

class BlockMemory {
 public:
  // Maps at least `bytes` (> 0) of zeroed, resident memory.
  explicit BlockMemory(int64_t bytes);
  ~BlockMemory();
  BlockMemory(const BlockMemory&) = delete;
  BlockMemory& operator=(const BlockMemory&) = delete;

  // 4 KiB-aligned (2 MiB-aligned when bytes() >= 2 MiB).
  void* data() const { return data_; }
  int64_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  int64_t bytes_ = 0;
  int64_t requested_ = 0;
};

}  // namespace peakknn
