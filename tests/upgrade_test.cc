// Upgrade safety: tests/data/upgrade_v0.1.0/data is a data directory that
// release 0.1.0 wrote and left after a crash (a checkpoint plus a log tail,
// f32 and bf16, deletes, upserts), and expected.txt is what 0.1.0 recovered
// from it (the fixture's README.md has the format and the program that made
// both). The current code must recover the same thing bit for bit, write
// the same bytes for the same contents, and refuse a format version it
// does not read. The fixture is only ever read; recovery runs on a copy.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/string_view.h"
#include "engine/collection_maintenance.h"
#include "gtest/gtest.h"
#include "store/checkpoint.h"
#include "store/coding.h"
#include "store/collection_manager.h"
#include "store/crc32c.h"
#include "store/data_dir.h"
#include "store/env.h"
#include "store/manifest.h"
#include "store/wal_format.h"
#include "store/wal_reader.h"

namespace peakknn {
namespace {

namespace fs = std::filesystem;

const char* const kCollections[] = {"bf16_ip", "bf16_l2_log_only", "cos_f32",
                                    "f32_l2"};

std::string FixtureDir() {
  const char* source = std::getenv("PEAKKNN_SOURCE_DIR");
  EXPECT_NE(source, nullptr) << "PEAKKNN_SOURCE_DIR is not set (run by ctest)";
  return absl::StrCat(source == nullptr ? "." : source,
                      "/tests/data/upgrade_v0.1.0");
}

// A fresh copy of the fixture's data directory.
std::string CopyOfFixture() {
  char tmpl[] = "/tmp/peakknn-upgrade-XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  const std::string copy = std::string(tmpl) + "/data";
  fs::copy(FixtureDir() + "/data", copy, fs::copy_options::recursive);
  return copy;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// The fixture generator's vectors (its README.md), here for the queries.
std::vector<float> Vectors(uint64_t first_id, int64_t n, int dim, int version) {
  std::vector<float> out;
  for (int64_t i = 0; i < n; ++i) {
    uint64_t x = (first_id + i) * 2654435761u + version * 97 + 12345;
    for (int d = 0; d < dim; ++d) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const int32_t r = static_cast<int32_t>((x >> 33) % 20001) - 10000;
      out.push_back(static_cast<float>(r) / 997.0f);
    }
  }
  return out;
}

std::string Hex(float f) {
  return absl::StrFormat("%08x", std::bit_cast<uint32_t>(f));
}

// What `store` holds, in expected.txt's form: what the fixture generator's
// "dump" wrote for 0.1.0.
std::vector<std::string> Dump(const CollectionManager& store) {
  std::vector<std::string> out;
  const auto infos = store.ListCollections();
  EXPECT_TRUE(infos.ok()) << infos.status();
  if (!infos.ok()) return out;
  for (const CollectionInfo& info : *infos) {
    const std::string& name = info.schema.name;
    const int dim = info.schema.dim;
    out.push_back(absl::StrFormat(
        "collection %s dim %d metric %s dtype %s recall %.17g rows %d "
        "live_rows %d applied %d",
        name, dim, AV(MetricName(info.schema.metric)),
        AV(DTypeName(info.schema.dtype)), info.schema.default_recall_target,
        info.rows, info.live_rows, info.applied_sequence));
    std::vector<uint64_t> ids(720);
    for (uint64_t i = 0; i < ids.size(); ++i) ids[i] = i;
    const auto rows = store.Get(name, ids);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return out;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!(*rows)[i].has_value()) {
        out.push_back(absl::StrCat("missing ", ids[i]));
        continue;
      }
      std::string line = absl::StrCat("row ", ids[i]);
      for (float v : *(*rows)[i]) absl::StrAppend(&line, " ", Hex(v));
      out.push_back(line);
    }
    const std::vector<float> queries = Vectors(5000, 3, dim, 9);
    for (double recall : {1.0, 0.9}) {
      SearchParams params;
      params.k = 5;
      params.recall_target = recall;
      const auto r = store.Search(name, queries, params);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) return out;
      for (int64_t q = 0; q < r->num_queries; ++q) {
        std::string line =
            absl::StrFormat("search %.17g %d q%d", recall, params.k, q);
        for (int32_t j = 0; j < r->counts[q]; ++j) {
          absl::StrAppend(&line, " ", r->ids[q * r->k + j], ":",
                          Hex(r->distances[q * r->k + j]));
        }
        out.push_back(line);
      }
    }
  }
  return out;
}

// Compares line by line, naming the first few differences.
void ExpectSameLines(const std::vector<std::string>& want,
                     const std::vector<std::string>& got) {
  EXPECT_EQ(got.size(), want.size());
  int shown = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()) && shown < 5; ++i) {
    if (got[i] != want[i]) {
      ADD_FAILURE() << "line " << i + 1 << "\n  want: " << want[i]
                    << "\n  got:  " << got[i];
      ++shown;
    }
  }
}

ManagerOptions Options(const std::string& data_dir) {
  ManagerOptions options;
  options.data_dir = data_dir;
  options.maintenance_interval = absl::ZeroDuration();
  options.log = [](std::string_view) {};
  return options;
}

TEST(UpgradeTest, RecoversWhat010RecoveredBitForBit) {
  const std::vector<std::string> expected =
      Lines(*ReadFileToString(Env::Default(), FixtureDir() + "/expected.txt"));
  ASSERT_GT(expected.size(), 4u * 720);
  const std::string dir = CopyOfFixture();
  {
    auto store = CollectionManager::Open(Options(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    ExpectSameLines(expected, Dump(**store));
    ASSERT_TRUE((*store)->Close().ok());  // checkpoints every collection
  }
  // Reopened from the checkpoints the current code wrote. A checkpoint
  // holds live rows only, so `rows` (slots, deleted ones included) drops
  // to live_rows; and it renumbers the slots, which moves rows between the
  // bins of an approximate search, so only the exact searches must repeat.
  std::vector<std::string> want;
  for (const std::string& line : expected) {
    if (line.starts_with("search 0.9")) continue;
    if (!line.starts_with("collection ")) {
      want.push_back(line);
      continue;
    }
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    ASSERT_EQ(words[10], "rows");
    ASSERT_EQ(words[12], "live_rows");
    words[11] = words[13];
    want.push_back(absl::StrJoin(words, " "));
  }
  auto store = CollectionManager::Open(Options(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<std::string> got = Dump(**store);
  std::erase_if(got, [](const std::string& line) {
    return line.starts_with("search 0.9");
  });
  ExpectSameLines(want, got);
  for (const char* name : kCollections) {
    const auto info = (*store)->DescribeCollection(name);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->durable_sequence, info->applied_sequence) << name;
  }
}

// The current writers reproduce 0.1.0's bytes: every log record re-encoded
// from its decoded contents, and every checkpoint (data file and MANIFEST)
// rewritten from its rows.
TEST(UpgradeTest, CurrentWritersReproduceTheFixtureBytes) {
  Env* env = Env::Default();
  int segments = 0, checkpoints = 0;
  for (const char* name : kCollections) {
    const std::string dir = JoinPath(FixtureDir() + "/data", name);
    const std::vector<std::string> files = *env->GetChildren(dir);
    for (const std::string& file : files) {
      if (!ParseWalSegmentName(file)) continue;
      const std::string path = JoinPath(dir, file);
      std::string again;
      auto scan = ScanWalSegment(env, path, [&](const WalRecord& record) {
        auto batch = DecodeWalRecord(record);
        if (!batch.ok()) return batch.status();
        if (batch->type == WalRecordType::kWrite) {
          AppendWalWrite(record.sequence, batch->mode, batch->ids,
                         batch->vectors, batch->dim, &again);
        } else {
          AppendWalDelete(record.sequence, batch->ids, &again);
        }
        return absl::OkStatus();
      });
      ASSERT_TRUE(scan.ok()) << scan.status();
      EXPECT_EQ(scan->tail, WalTail::kClean) << path << ": " << scan->problem;
      EXPECT_GT(scan->records, 0) << path;
      EXPECT_TRUE(again == *ReadFileToString(env, path)) << path;
      ++segments;
    }

    const std::string manifest_text =
        *ReadFileToString(env, JoinPath(dir, kManifestName));
    const auto manifest = ReadManifest(env, dir);
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    EXPECT_EQ(SerializeManifest(*manifest), manifest_text) << dir;
    if (manifest->data_file.empty()) continue;
    auto collection = Collection::Create(manifest->schema);
    ASSERT_TRUE(collection.ok()) << collection.status();
    ASSERT_TRUE(ReadCheckpointRows(env, dir, *manifest,
                                   [&](std::span<const uint64_t> ids,
                                       std::span<const float> vectors) {
                                     return CollectionMaintenance::RestoreRows(
                                         **collection, ids, vectors);
                                   })
                    .ok());
    char tmpl[] = "/tmp/peakknn-upgrade-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const auto written =
        WriteCheckpoint(env, tmpl, *manifest, *(*collection)->snapshot());
    ASSERT_TRUE(written.ok()) << written.status();
    EXPECT_TRUE(*ReadFileToString(env, JoinPath(tmpl, written->data_file)) ==
                *ReadFileToString(env, JoinPath(dir, manifest->data_file)))
        << dir;
    EXPECT_EQ(*ReadFileToString(env, JoinPath(tmpl, kManifestName)),
              manifest_text);
    ++checkpoints;
  }
  EXPECT_EQ(segments, 4);
  EXPECT_EQ(checkpoints, 3);
}

// A data directory from a future release is refused, naming the file, the
// version found and the one this build reads, before recovery changes
// anything in that collection.
TEST(UpgradeTest, NewerFormatVersionsAreRefused) {
  Env* env = Env::Default();
  const std::string fixture = JoinPath(FixtureDir() + "/data", "f32_l2");
  // Opens a copy of the fixture with `file` of f32_l2 changed by `edit`;
  // the open must fail naming that file and the versions, and leave every
  // other file of f32_l2 as it was.
  const auto expect_refused =
      [&](const std::string& file,
          const std::function<void(std::string&)>& edit) {
        const std::string data_dir = CopyOfFixture();
        const std::string dir = JoinPath(data_dir, "f32_l2");
        const std::string path = JoinPath(dir, file);
        std::string bytes = *ReadFileToString(env, path);
        edit(bytes);
        ASSERT_TRUE(WriteFileAtomically(env, dir, path, bytes).ok());
        const absl::Status s =
            CollectionManager::Open(Options(data_dir)).status();
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
        for (const std::string& part :
             {path, std::string("format version 2"),
              std::string("reads version 1 only"), std::string("'f32_l2'")}) {
          EXPECT_NE(s.message().find(part), std::string::npos)
              << part << " in " << s;
        }
        std::vector<std::string> names = *env->GetChildren(dir);
        std::sort(names.begin(), names.end());
        std::vector<std::string> want = *env->GetChildren(fixture);
        std::sort(want.begin(), want.end());
        EXPECT_EQ(names, want);
        for (const std::string& name : names) {
          if (name == file) continue;
          EXPECT_TRUE(*ReadFileToString(env, JoinPath(dir, name)) ==
                      *ReadFileToString(env, JoinPath(fixture, name)))
              << name << " changed";
        }
      };

  expect_refused(kManifestName, [](std::string& text) {
    ASSERT_TRUE(text.starts_with("peakknn-manifest 1\n"));
    std::string body = text.substr(0, text.rfind("crc32c "));
    body[17] = '2';
    text = absl::StrCat(body, "crc32c ", absl::Hex(Crc32c(body)), "\n");
  });
  const auto manifest = ReadManifest(env, fixture);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  expect_refused(manifest->data_file, [](std::string& data) {
    ASSERT_EQ(data.substr(0, 8), "PKNNCKP1");
    data[7] = '2';
    EncodeFixed32(data.data() + 24, Crc32c(0, data.data(), 24));
  });
}

}  // namespace
}  // namespace peakknn
