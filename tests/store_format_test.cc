// On-disk formats: CRC32C, the Env, WAL framing (torn tail vs corruption),
// manifests and checkpoint data files.
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/collection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/checkpoint.h"
#include "store/coding.h"
#include "store/crc32c.h"
#include "store/data_dir.h"
#include "store/env.h"
#include "store/manifest.h"
#include "store/wal_format.h"
#include "store/wal_reader.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

std::string TempDir() { return testing::StoreTempDir("format"); }

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // Extending equals computing over the concatenation.
  EXPECT_EQ(Crc32c(Crc32c("1234"), "56789", 5), 0xE3069283u);
}

TEST(EnvTest, WriteFileAtomicallyReplacesWholeFile) {
  Env* env = Env::Default();
  const std::string dir = TempDir();
  const std::string path = JoinPath(dir, "f");
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, "first").ok());
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, "second").ok());
  EXPECT_EQ(*ReadFileToString(env, path), "second");
  EXPECT_FALSE(env->FileExists(path + ".tmp"));
  auto missing = ReadFileToString(env, JoinPath(dir, "nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
}

// Writes `records` (sequence i + 1 holding ids {i}) and returns the file.
std::string WriteLog(Env* env, const std::string& dir, int records) {
  std::string data;
  for (int i = 0; i < records; ++i) {
    const uint64_t id = i;
    const std::vector<float> v = {1.0f * i, 2.0f};
    AppendWalWrite(i + 1, WriteMode::kInsert, {&id, 1}, v, 2, &data);
  }
  const std::string path = JoinPath(dir, WalSegmentName(1));
  EXPECT_TRUE(WriteFileAtomically(env, dir, path, data).ok());
  return path;
}

absl::StatusOr<WalSegmentScan> Scan(Env* env, const std::string& path,
                                    std::vector<uint64_t>* sequences) {
  return ScanWalSegment(env, path, [&](const WalRecord& r) {
    auto batch = DecodeWalRecord(r);
    if (!batch.ok()) return batch.status();
    EXPECT_EQ(batch->ids.size(), 1u);
    EXPECT_EQ(batch->vectors[0], 1.0f * batch->ids[0]);
    sequences->push_back(r.sequence);
    return absl::OkStatus();
  });
}

TEST(WalTest, RoundTripsRecords) {
  Env* env = Env::Default();
  const std::string path = WriteLog(env, TempDir(), 5);
  std::vector<uint64_t> seqs;
  auto scan = Scan(env, path, &seqs);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->tail, WalTail::kClean);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(scan->valid_bytes, scan->file_bytes);
}

TEST(WalTest, PartialLastRecordIsATornTail) {
  Env* env = Env::Default();
  const std::string path = WriteLog(env, TempDir(), 5);
  const uint64_t size = *env->GetFileSize(path);
  for (uint64_t cut : {uint64_t{1}, uint64_t{10}, uint64_t{20}}) {
    ASSERT_TRUE(env->TruncateFile(path, size - cut).ok());
    std::vector<uint64_t> seqs;
    auto scan = Scan(env, path, &seqs);
    ASSERT_TRUE(scan.ok());
    EXPECT_EQ(scan->tail, WalTail::kTorn) << scan->problem;
    EXPECT_EQ(seqs.size(), 4u);
  }
}

TEST(WalTest, ZeroFilledTailIsTorn) {
  Env* env = Env::Default();
  const std::string dir = TempDir();
  const std::string path = WriteLog(env, dir, 3);
  std::string data = *ReadFileToString(env, path);
  data.append(100, '\0');
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, data).ok());
  std::vector<uint64_t> seqs;
  auto scan = Scan(env, path, &seqs);
  EXPECT_EQ(scan->tail, WalTail::kTorn);
  EXPECT_EQ(seqs.size(), 3u);
}

TEST(WalTest, BadRecordInTheMiddleIsCorruption) {
  Env* env = Env::Default();
  const std::string dir = TempDir();
  const std::string path = WriteLog(env, dir, 5);
  std::string data = *ReadFileToString(env, path);
  const size_t record = data.size() / 5;
  data[2 * record + kWalHeaderBytes + 3] ^= 0x40;  // inside record 3
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, data).ok());
  std::vector<uint64_t> seqs;
  auto scan = Scan(env, path, &seqs);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->tail, WalTail::kCorrupt);
  EXPECT_EQ(scan->valid_bytes, 2 * record);
  EXPECT_NE(scan->problem.find("CRC32C"), std::string::npos) << scan->problem;
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2}));
}

// Segments several read chunks long: records straddle chunk boundaries and
// are larger than one chunk; the scan still sees each record whole, finds
// corruption far from the start and tells a zero-filled tail past several
// chunks from corruption.
TEST(WalTest, ScansSegmentsLongerThanItsReadBuffer) {
  Env* env = Env::Default();
  const std::string dir = TempDir();
  constexpr int kDim = 1000;
  // Records of 173 or 401 rows: 0.7 and 1.6 MB, never chunk-aligned.
  std::string data;
  std::vector<size_t> starts;
  uint64_t next_id = 0;
  for (int r = 0; r < 8; ++r) {
    const int rows = r % 2 == 0 ? 173 : 401;
    std::vector<uint64_t> ids(rows);
    std::vector<float> vectors(static_cast<size_t>(rows) * kDim);
    for (int i = 0; i < rows; ++i) {
      ids[i] = next_id++;
      for (int d = 0; d < kDim; ++d) vectors[i * kDim + d] = ids[i] + d * 1e-3f;
    }
    starts.push_back(data.size());
    AppendWalWrite(r + 1, WriteMode::kUpsert, ids, vectors, kDim, &data);
  }
  ASSERT_GT(data.size(), 5 * kWalReadChunkBytes);
  const std::string path = JoinPath(dir, WalSegmentName(1));
  const auto scan = [&](std::vector<uint64_t>* seqs) {
    return ScanWalSegment(env, path, [&](const WalRecord& r) {
      auto batch = DecodeWalRecord(r);
      if (!batch.ok()) return batch.status();
      for (size_t i = 0; i < batch->ids.size(); ++i) {
        EXPECT_EQ(batch->vectors[i * kDim + kDim - 1],
                  batch->ids[i] + (kDim - 1) * 1e-3f);
      }
      seqs->push_back(r.sequence);
      return absl::OkStatus();
    });
  };

  ASSERT_TRUE(WriteFileAtomically(env, dir, path, data).ok());
  std::vector<uint64_t> seqs;
  auto clean = scan(&seqs);
  ASSERT_TRUE(clean.ok()) << clean.status();
  EXPECT_EQ(clean->tail, WalTail::kClean);
  EXPECT_EQ(clean->valid_bytes, data.size());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  std::string zero_tail = data;
  zero_tail.append(3 * kWalReadChunkBytes + 5, '\0');
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, zero_tail).ok());
  seqs.clear();
  auto torn = scan(&seqs);
  ASSERT_TRUE(torn.ok()) << torn.status();
  EXPECT_EQ(torn->tail, WalTail::kTorn) << torn->problem;
  EXPECT_EQ(torn->valid_bytes, data.size());
  EXPECT_EQ(seqs.size(), 8u);

  std::string corrupt = data;
  corrupt[starts[6] + kWalHeaderBytes + 100] ^= 0x01;  // inside record 7
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, corrupt).ok());
  seqs.clear();
  auto bad = scan(&seqs);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->tail, WalTail::kCorrupt);
  EXPECT_EQ(bad->valid_bytes, starts[6]);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
}

// The framing and payloads byte for byte, little-endian whatever the host.
TEST(WalTest, RecordBytesAreLittleEndian) {
  std::string out;
  const uint64_t id = 0x1122334455667788ull;
  AppendWalDelete(0x0102030405060708ull, {&id, 1}, &out);
  EXPECT_EQ(absl::BytesToHexString(out.substr(4)),
            "0c000000"            // payload length 12
            "02"                  // kDelete
            "0807060504030201"    // sequence
            "01000000"            // count
            "8877665544332211");  // ids
  EXPECT_EQ(DecodeFixed32(out.data()), Crc32c(0, out.data() + 4, 25));

  out.clear();
  const std::vector<float> v = {1.0f, -2.5f};
  AppendWalWrite(5, WriteMode::kUpsert, {&id, 1}, v, 2, &out);
  EXPECT_EQ(absl::BytesToHexString(out.substr(4)),
            "19000000"            // payload length 25
            "01"                  // kWrite
            "0500000000000000"    // sequence
            "01"                  // upsert
            "01000000"            // count
            "02000000"            // dim
            "8877665544332211"    // ids
            "0000803f000020c0");  // vectors
  EXPECT_EQ(DecodeFixed32(out.data()), Crc32c(0, out.data() + 4, 38));
}

TEST(WalTest, SegmentNamesRoundTrip) {
  EXPECT_EQ(WalSegmentName(42), "wal-00000042.log");
  EXPECT_EQ(ParseWalSegmentName("wal-00000042.log"), 42u);
  EXPECT_FALSE(ParseWalSegmentName("wal-x.log").has_value());
  EXPECT_FALSE(ParseWalSegmentName("MANIFEST").has_value());
}

CollectionSchema Schema() {
  CollectionSchema schema;
  schema.name = "c";
  schema.dim = 3;
  schema.metric = Metric::kCosine;
  schema.default_recall_target = 0.9;
  return schema;
}

TEST(CheckpointTest, ManifestRoundTripsAndDetectsCorruption) {
  CheckpointManifest m;
  m.schema = Schema();
  m.default_durability = Durability::kNone;
  m.sequence = 77;
  m.data_file = CheckpointFileName(76);
  m.rows = 5;
  m.data_bytes = 123;
  const std::string text = SerializeManifest(m);
  auto back = ParseManifest(text, "M");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->schema.name, "c");
  EXPECT_EQ(back->schema.metric, Metric::kCosine);
  EXPECT_EQ(back->schema.default_recall_target, 0.9);
  EXPECT_EQ(back->default_durability, Durability::kNone);
  EXPECT_EQ(back->sequence, 77u);
  EXPECT_EQ(back->data_file, CheckpointFileName(76));
  std::string bad = text;
  bad[text.find("77")] = '8';
  EXPECT_EQ(ParseManifest(bad, "M").status().code(),
            absl::StatusCode::kDataLoss);
}

// The data line names a checkpoint file in the collection's directory, in
// the writer's own spelling; anything else (a path out of the directory)
// is corruption, not a file to open.
TEST(CheckpointTest, ManifestNamingAnythingButACheckpointFileIsCorrupt) {
  CheckpointManifest m;
  m.schema = Schema();
  m.sequence = 7;
  m.rows = 1;
  m.data_bytes = 10;
  for (const std::string name :
       {"../../etc/passwd", "ckpt-7.dat", "ckpt-+0000000000000000007.dat",
        "/ckpt-00000000000000000007.dat", "ckpt-00000000000000000007.dat/x"}) {
    m.data_file = name;
    absl::StatusOr<CheckpointManifest> parsed =
        ParseManifest(SerializeManifest(m), "M");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << name;
    EXPECT_THAT(std::string(parsed.status().message()),
                ::testing::HasSubstr("is not a checkpoint file name"))
        << name;
  }
  m.data_file = CheckpointFileName(7);
  EXPECT_TRUE(ParseManifest(SerializeManifest(m), "M").ok());
  EXPECT_EQ(ParseCheckpointFileName(CheckpointFileName(123)), 123u);
}

// `text` (a serialized manifest) with its first line replaced and the
// CRC32C line recomputed, so that only the first line differs.
std::string WithFirstLine(const std::string& text, const std::string& line) {
  std::string body = text.substr(0, text.rfind("crc32c "));
  body = line + body.substr(body.find('\n'));
  return absl::StrCat(body, "crc32c ", absl::Hex(Crc32c(body)), "\n");
}

TEST(CheckpointTest, ManifestOfAnotherVersionIsRefused) {
  CheckpointManifest m;
  m.schema = Schema();
  const std::string text = SerializeManifest(m);
  ASSERT_TRUE(text.starts_with("peakknn-manifest 1\n")) << text;
  ASSERT_TRUE(
      ParseManifest(WithFirstLine(text, "peakknn-manifest 1"), "M").ok());

  const auto newer =
      ParseManifest(WithFirstLine(text, "peakknn-manifest 2"), "/d/c/MANIFEST");
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  for (const char* part :
       {"/d/c/MANIFEST", "format version 2", "reads version 1 only"}) {
    EXPECT_NE(newer.status().message().find(part), std::string::npos)
        << part << " in " << newer.status();
  }
  // Not a manifest at all is damage, not a version.
  const auto garbage =
      ParseManifest(WithFirstLine(text, "peakknn-manifst 1"), "M");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
}

TEST(CheckpointTest, WritesLiveRowsAndRejectsABitFlip) {
  Env* env = Env::Default();
  const std::string dir = TempDir();
  CollectionOptions options;
  options.block_rows = 16;
  auto c = *Collection::Create(Schema(), options);
  std::vector<uint64_t> ids;
  std::vector<float> vectors;
  for (uint64_t i = 0; i < 40; ++i) {
    ids.push_back(i);
    vectors.insert(vectors.end(), {1.0f + i, 2.0f, -1.0f * i});
  }
  ASSERT_TRUE(c->Write(WriteMode::kInsert, ids, vectors).ok());
  const uint64_t dead[] = {3, 17, 39};
  c->Delete(dead);
  CheckpointManifest m;
  m.schema = Schema();
  m.sequence = 9;
  auto installed = WriteCheckpoint(env, dir, m, *c->snapshot());
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(installed->rows, 37);
  auto read = ReadManifest(env, dir);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->sequence, 9u);

  std::vector<uint64_t> got_ids;
  std::vector<float> got;
  ASSERT_TRUE(ReadCheckpointRows(
                  env, dir, *read,
                  [&](std::span<const uint64_t> i, std::span<const float> v) {
                    got_ids.insert(got_ids.end(), i.begin(), i.end());
                    got.insert(got.end(), v.begin(), v.end());
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_EQ(got_ids.size(), 37u);
  // Stored (normalised) values, exactly as Get returns them.
  const auto stored = c->Get(got_ids);
  for (size_t i = 0; i < got_ids.size(); ++i) {
    EXPECT_NE(got_ids[i], 3u);
    EXPECT_EQ(std::vector<float>(got.begin() + 3 * i, got.begin() + 3 * i + 3),
              *stored[i]);
  }

  const std::string path = JoinPath(dir, read->data_file);
  const std::string good = *ReadFileToString(env, path);
  const auto read_rows = [&] {
    return ReadCheckpointRows(env, dir, *read,
                              [](auto, auto) { return absl::OkStatus(); });
  };
  std::string data = good;
  data[data.size() / 2] ^= 1;
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, data).ok());
  absl::Status s = read_rows();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(path), std::string::npos) << s;

  // A data file of another format version, its header CRC intact.
  ASSERT_EQ(good.substr(0, 8), "PKNNCKP1");
  data = good;
  data[7] = '2';
  EncodeFixed32(data.data() + 24, Crc32c(0, data.data(), 24));
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, data).ok());
  s = read_rows();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  for (const std::string& part : {path, std::string("format version 2"),
                                  std::string("reads version 1 only")}) {
    EXPECT_NE(s.message().find(part), std::string::npos) << part << " in " << s;
  }
  data[0] = 'X';  // not a checkpoint at all
  ASSERT_TRUE(WriteFileAtomically(env, dir, path, data).ok());
  EXPECT_EQ(read_rows().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace peakknn
