// Test support for the store tests: temporary directories, small schemas
// and DurableCollection options that keep blocks small and logs quiet.
#pragma once

#include <stdlib.h>

#include <cstdint>
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
