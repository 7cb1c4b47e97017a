#include "engine/block_memory.h"

#include <sanitizer/asan_interface.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
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
  std::fprintf(stderr, "peakknn: cannot map %lld bytes for a row block: %s\n",
               static_cast<long long>(bytes), std::strerror(errno));
  std::abort();
}

// Maps `bytes` (a multiple of 4 KiB) at a 2 MiB boundary: maps 2 MiB more,
// then unmaps the slack on both sides.
char* MapHugeAligned(int64_t bytes) {
  const int64_t span = bytes + kHugePageBytes - kPageBytes;
  void* raw = mmap(nullptr, static_cast<size_t>(span), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) OutOfMemory(span);
  char* begin = static_cast<char*>(raw);
  char* aligned = reinterpret_cast<char*>(
      RoundUp(reinterpret_cast<intptr_t>(begin), kHugePageBytes));
  if (aligned > begin) munmap(begin, static_cast<size_t>(aligned - begin));
  char* end = begin + span;
  if (end > aligned + bytes) {
    munmap(aligned + bytes, static_cast<size_t>(end - (aligned + bytes)));
  }
  return aligned;
}

}  // namespace

BlockMemory::BlockMemory(int64_t bytes)
    : bytes_(RoundUp(bytes, kPageBytes)), requested_(bytes) {
  if (bytes_ >= kHugePageBytes) {
    data_ = MapHugeAligned(bytes_);
    // EINVAL without THP support: 4 KiB pages serve as well, more slowly.
    madvise(data_, static_cast<size_t>(bytes_), MADV_HUGEPAGE);
  } else {
    data_ = mmap(nullptr, static_cast<size_t>(bytes_), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data_ == MAP_FAILED) OutOfMemory(bytes_);
  }
  // EINVAL before Linux 5.14: pages then fault in as they are written. Any
  // other failure (ENOMEM) would recur at the first write; let it.
  madvise(data_, static_cast<size_t>(bytes_), MADV_POPULATE_WRITE);
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(data_) + requested_,
                            bytes_ - requested_);
}

BlockMemory::~BlockMemory() {
  ASAN_UNPOISON_MEMORY_REGION(data_, bytes_);
  munmap(data_, static_cast<size_t>(bytes_));
}

}  // namespace peakknn
