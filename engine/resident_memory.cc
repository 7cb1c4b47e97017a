#include "engine/resident_memory.h"

#include <sanitizer/asan_interface.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace peakknn {
namespace {

constexpr int64_t kPageBytes = 4096;
constexpr int64_t kHugePageBytes = int64_t{2} << 20;

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14 uapi; glibc 2.36 lacks the name
#endif

int64_t RoundUp(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

[[noreturn]] void OutOfMemory(int64_t bytes) {
  std::fprintf(stderr, "peakknn: cannot map %lld bytes: %s\n",
               static_cast<long long>(bytes), std::strerror(errno));
  std::abort();
}

char* Map(int64_t bytes) {
  void* p = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) OutOfMemory(bytes);
  return static_cast<char*>(p);
}

// Maps `bytes` (a multiple of 4 KiB) at a 2 MiB boundary: maps 2 MiB more,
// then unmaps the slack on both sides.
char* MapHugeAligned(int64_t bytes) {
  const int64_t span = bytes + kHugePageBytes - kPageBytes;
  char* begin = Map(span);
  char* aligned = reinterpret_cast<char*>(
      RoundUp(reinterpret_cast<intptr_t>(begin), kHugePageBytes));
  if (aligned > begin) munmap(begin, static_cast<size_t>(aligned - begin));
  char* end = begin + span;
  if (end > aligned + bytes) {
    munmap(aligned + bytes, static_cast<size_t>(end - (aligned + bytes)));
  }
  return aligned;
}

// EINVAL before Linux 5.14: pages then fault in as they are written. Any
// other failure (ENOMEM) would recur at the first write; let it.
void Populate(char* data, int64_t bytes) {
  madvise(data, static_cast<size_t>(bytes), MADV_POPULATE_WRITE);
}

}  // namespace

int64_t ResidentBytes(int64_t bytes) { return RoundUp(bytes, kPageBytes); }

void* MapResident(int64_t bytes, ThreadPool* pool) {
  const int64_t mapped = ResidentBytes(bytes);
  char* data;
  if (mapped < kHugePageBytes) {
    data = Map(mapped);
    Populate(data, mapped);
  } else {
    data = MapHugeAligned(mapped);
    // EINVAL without THP support: 4 KiB pages serve as well, more slowly.
    madvise(data, static_cast<size_t>(mapped), MADV_HUGEPAGE);
    const int64_t huge_pages = (mapped + kHugePageBytes - 1) / kHugePageBytes;
    if (pool == nullptr || huge_pages < 2) {
      Populate(data, mapped);
    } else {
      pool->ParallelFor(huge_pages, [&](int64_t i) {
        const int64_t begin = i * kHugePageBytes;
        Populate(data + begin, std::min(kHugePageBytes, mapped - begin));
      });
    }
  }
  ASAN_POISON_MEMORY_REGION(data + bytes, mapped - bytes);
  return data;
}

void UnmapResident(void* data, int64_t bytes) {
  ASAN_UNPOISON_MEMORY_REGION(data, bytes);
  munmap(data, static_cast<size_t>(bytes));
}

}  // namespace peakknn
