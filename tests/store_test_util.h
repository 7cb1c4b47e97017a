// Test support for the store tests: temporary directories, small schemas,
// DurableCollection options that keep blocks small and logs quiet, and the
// soak knobs (run counts read from the environment).
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "store/durable_collection.h"
#include "store/env.h"

namespace peakknn::testing {

// A fresh directory /tmp/peakknn-<prefix>-XXXXXX.
inline std::string StoreTempDir(const std::string& prefix) {
  std::string path = "/tmp/peakknn-" + prefix + "-XXXXXX";
  EXPECT_NE(::mkdtemp(path.data()), nullptr);
  return path;
}

// The positive integer in environment variable `name`, else `fallback`:
// how the crash and power-loss tests run longer than in CI
// (tests/README.md).
inline int64_t CountFromEnv(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr) return fallback;
  const long long n = std::atoll(value);
  EXPECT_GT(n, 0) << name << "=" << value << " is not a positive count";
  return n > 0 ? n : fallback;
}

// begin, begin + 1, ..., end - 1.
inline std::vector<uint64_t> IdRange(uint64_t begin, uint64_t end) {
  std::vector<uint64_t> ids;
  for (uint64_t i = begin; i < end; ++i) ids.push_back(i);
  return ids;
}

// An L2 f32 schema.
inline CollectionSchema SmallSchema(const std::string& name, int dim) {
  CollectionSchema s;
  s.name = name;
  s.dim = dim;
  return s;
}

// Blocks of 64 rows (so tests cross block boundaries), no log output.
inline DurableCollectionOptions QuietOptions(Env* env = nullptr) {
  DurableCollectionOptions o;
  o.env = env;
  o.collection.block_rows = 64;
  o.log = [](std::string_view) {};
  return o;
}

}  // namespace peakknn::testing
