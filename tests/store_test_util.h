// Test support for the store tests: temporary directories, small schemas,
// DurableCollection options that keep blocks small and logs quiet, rows that
// say which write they came from, and the soak knobs (run counts read from
// the environment).
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "store/collection_manager.h"
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

// Rows whose vector encodes its id and a version, {id, version, 1, -id/2}
// (dim kVersionedDim), so a read shows which write it came from.
inline constexpr int kVersionedDim = 4;

inline std::vector<float> VersionedRow(uint64_t id, float version = 0) {
  return {static_cast<float>(id), version, 1.0f, -0.5f * id};
}

// An L2 schema of kVersionedDim.
inline CollectionSchema VersionedSchema(const std::string& name = "vecs") {
  return SmallSchema(name, kVersionedDim);
}

// VersionedRow of each id, concatenated.
inline std::vector<float> VersionedRows(const std::vector<uint64_t>& ids,
                                        float version = 0) {
  std::vector<float> out;
  for (uint64_t id : ids) {
    const auto v = VersionedRow(id, version);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// id -> version for every live row of ids [0, max_id); expects each vector
// to be exactly a VersionedRow.
inline std::map<uint64_t, float> VersionedContents(const Collection& c,
                                                   uint64_t max_id) {
  std::map<uint64_t, float> out;
  const auto ids = IdRange(0, max_id);
  const auto rows = c.Get(ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!rows[i]) continue;
    EXPECT_EQ(*rows[i], VersionedRow(ids[i], (*rows[i])[1])) << "id " << ids[i];
    out[ids[i]] = (*rows[i])[1];
  }
  return out;
}

// The names ListCollections returns, in its order.
inline std::vector<std::string> CollectionNames(
    const CollectionManager& store) {
  const absl::StatusOr<std::vector<CollectionInfo>> infos =
      store.ListCollections();
  EXPECT_TRUE(infos.ok()) << infos.status();
  std::vector<std::string> names;
  if (!infos.ok()) return names;
  for (const CollectionInfo& info : *infos) names.push_back(info.schema.name);
  return names;
}

}  // namespace peakknn::testing
