// Anonymous memory that is faulted in whole when it is mapped, on
// transparent huge pages where the kernel allows: the storage of row blocks
// (ResidentMemory) and of the id map's tables (ResidentAllocator).
//
// Why: blocks and tables are written soon after they are allocated, and
// first-touch page faults dominated ingest and recovery (one per 4 KiB, very
// costly in a VM). So a mapping is
//   - aligned to 2 MiB with MADV_HUGEPAGE when it spans at least one huge
//     page, so the kernel can back it with transparent huge pages (each
//     whole 2 MiB of it; a partial last one stays in 4 KiB pages), and
//   - populated at once with MADV_POPULATE_WRITE (Linux >= 5.14): a system
//     call instead of a fault per page; with a thread pool, the huge pages
//     of a large mapping are faulted in by the pool's threads in parallel
//     (the kernel zeroes every page, the bulk of the cost).
// Measured on the development VM (Firecracker, 2 cores; 16 fresh 32 MiB
// mappings, fault-in plus first write, 3 runs): 4 KiB pages touched one by
// one 10-13.7 s; 4 KiB pages populated 5.2-5.7 s (the populate is quick but
// the first write still pays); huge pages touched 2.8-6.7 s; huge pages
// populated 0.3-0.4 s. Either madvise failing (no THP, an older kernel)
// only costs speed: pages then fault in lazily.
//
// Memory: a mapping is the request rounded up to 4 KiB, all of it resident
// once populated; the bytes past the request are poisoned for
// AddressSanitizer. Out of memory is fatal, as for operator new: a row
// write cannot fail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/thread_pool.h"

namespace peakknn {

// Maps at least `bytes` (> 0) of zeroed, resident memory, 4 KiB-aligned
// (2 MiB-aligned from 2 MiB up). Returns its start; the mapping's size is
// ResidentBytes(bytes). `pool` (optional) faults the huge pages in in
// parallel; the calling thread takes part.
void* MapResident(int64_t bytes, ThreadPool* pool);
void UnmapResident(void* data, int64_t bytes);  // `bytes` as mapped
int64_t ResidentBytes(int64_t bytes);

// One mapping, owned.
class ResidentMemory {
 public:
  ResidentMemory(int64_t bytes, ThreadPool* pool)
      : data_(MapResident(bytes, pool)), bytes_(ResidentBytes(bytes)) {}
  ~ResidentMemory() { UnmapResident(data_, bytes_); }
  ResidentMemory(const ResidentMemory&) = delete;
  ResidentMemory& operator=(const ResidentMemory&) = delete;

  void* data() const { return data_; }
  int64_t bytes() const { return bytes_; }  // the whole mapping

 private:
  void* const data_;
  const int64_t bytes_;
};

// A standard allocator that gives requests of at least kMinBytes their own
// resident mapping and leaves smaller ones to std::allocator. For hash
// tables, which allocate a new table on every growth and touch all of it.
template <typename T>
class ResidentAllocator {
 public:
  using value_type = T;
  static constexpr int64_t kMinBytes = int64_t{2} << 20;

  ResidentAllocator() = default;
  template <typename U>
  ResidentAllocator(const ResidentAllocator<U>&) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    const int64_t bytes = static_cast<int64_t>(n * sizeof(T));
    if (bytes < kMinBytes) return std::allocator<T>().allocate(n);
    return static_cast<T*>(MapResident(bytes, nullptr));
  }
  void deallocate(T* p, size_t n) {
    const int64_t bytes = static_cast<int64_t>(n * sizeof(T));
    if (bytes < kMinBytes) return std::allocator<T>().deallocate(p, n);
    UnmapResident(p, ResidentBytes(bytes));
  }

  template <typename U>
  bool operator==(const ResidentAllocator<U>&) const {
    return true;
  }
};

}  // namespace peakknn
