// The deterministic workload shared by tests/crash_writer.cc (the child that
// writes and gets killed) and tests/crash_test.cc (the parent that checks).
// Batch `tag` is a pure function of tag, so the parent knows every batch's
// contents from its tag alone.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace peakknn::crash {

inline constexpr int kDim = 8;
inline constexpr uint64_t kIdsPerTag = 16;

enum class Kind { kInsert, kUpsert, kDelete };

struct Batch {
  Kind kind = Kind::kInsert;
  std::vector<uint64_t> ids;  // distinct
};

// Inserts use fresh ids [tag * 16, tag * 16 + n); upserts and deletes pick
// earlier ids (which may be deleted or never used: both are allowed).
inline Batch MakeBatch(uint64_t tag) {
  std::mt19937_64 rng(tag * 0x9E3779B97F4A7C15ull + 1);
  Batch b;
  const uint64_t roll = rng() % 10;
  b.kind = tag < 4 || roll < 6 ? Kind::kInsert
           : roll < 8          ? Kind::kUpsert
                               : Kind::kDelete;
  const uint64_t n = 1 + rng() % kIdsPerTag;
  if (b.kind == Kind::kInsert) {
    for (uint64_t i = 0; i < n; ++i) b.ids.push_back(tag * kIdsPerTag + i);
  } else {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t id = rng() % (tag * kIdsPerTag);
      bool seen = false;
      for (uint64_t x : b.ids) seen |= x == id;
      if (!seen) b.ids.push_back(id);
    }
  }
  return b;
}

// The vector batch `tag` writes for `id`: encodes both exactly (ids and tags
// stay below 2^24), the rest is noise derived from them.
inline std::vector<float> VectorOf(uint64_t id, uint64_t tag) {
  std::vector<float> v(kDim);
  v[0] = static_cast<float>(id);
  v[1] = static_cast<float>(tag);
  std::mt19937 rng(static_cast<uint32_t>(id * 31 + tag));
  std::uniform_real_distribution<float> u(-1, 1);
  for (int d = 2; d < kDim; ++d) v[d] = u(rng);
  return v;
}

}  // namespace peakknn::crash
