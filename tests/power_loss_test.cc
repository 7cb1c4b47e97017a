// Power loss: the store on store/power_loss_env.h, which keeps only what was
// fsynced (file data) and directory-synced (names) when the power goes.
// - Random power cuts under a writer and checkpoints: every acknowledged
//   batch survives exactly, no delete comes back, the in-flight batch is
//   whole or absent.
// - A log torn at every byte of its last records, or with any byte of them
//   flipped, recovers exactly its longest valid prefix.
// - A failed fsync acknowledges nothing and stops writes until a restart
//   (the "fsyncgate" rule: a retried fsync cannot vouch for what the failed
//   one dropped).
// PEAKKNN_POWER_LOSS_ITERATIONS runs more power cuts (tests/README.md).
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/data_dir.h"
#include "store/durable_collection.h"
#include "store/power_loss_env.h"
#include "store/wal_reader.h"
#include "tests/crash_workload.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using crash::Model;

constexpr char kRoot[] = "/db";
constexpr char kDir[] = "/db/c";

// Small log segments so rotation and retirement happen every few batches.
DurableCollectionOptions Options(PowerLossEnv& env,
                                 int64_t segment_bytes = 2 << 10) {
  DurableCollectionOptions o = testing::QuietOptions(&env);
  o.wal_segment_bytes = segment_bytes;
  return o;
}

// A durable /db holding a new collection.
void CreateStore(PowerLossEnv& env) {
  ASSERT_TRUE(env.CreateDir(kRoot).ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  auto c = DurableCollection::Create(kDir,
                                     testing::SmallSchema("power", crash::kDim),
                                     Durability::kFsync, Options(env));
  ASSERT_TRUE(c.ok()) << c.status();
}

std::unique_ptr<DurableCollection> OpenStore(PowerLossEnv& env,
                                             int64_t segment_bytes = 2 << 10) {
  auto c = DurableCollection::Open(kDir, Options(env, segment_bytes));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

// Writes batch `tag` of tests/crash_workload.h.
absl::StatusOr<WriteAck> WriteBatch(DurableCollection& c, uint64_t tag,
                                    Durability durability) {
  const crash::Batch batch = crash::MakeBatch(tag);
  if (batch.kind == crash::Kind::kDelete) {
    return c.Delete(batch.ids, durability);
  }
  std::vector<float> vectors;
  for (uint64_t id : batch.ids) {
    const std::vector<float> v = crash::VectorOf(id, tag);
    vectors.insert(vectors.end(), v.begin(), v.end());
  }
  return c.Write(batch.kind == crash::Kind::kInsert ? WriteMode::kInsert
                                                    : WriteMode::kUpsert,
                 batch.ids, vectors, durability);
}

// The rows of the ids batches below `end_tag` use; a row no batch wrote
// fails the test.
Model Rows(const DurableCollection& c, uint64_t end_tag) {
  const std::vector<uint64_t> ids =
      testing::IdRange(0, end_tag * crash::kIdsPerTag);
  const auto rows = c.collection().Get(ids);
  Model got;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!rows[i]) continue;
    const std::optional<uint64_t> tag = crash::TagOf(ids[i], *rows[i]);
    EXPECT_TRUE(tag.has_value()) << "id " << ids[i] << ": no batch wrote it";
    if (tag) got[ids[i]] = *tag;
  }
  return got;
}

// The acknowledged batches of a writer that runs until the power goes.
struct Progress {
  Model model;
  uint64_t next_tag = 0;
  int64_t in_flight = -1;
  int64_t acked = 0;
};

// Writes batches with fsync until one fails, which must be the power
// loss; meanwhile another thread checkpoints (rotating the log and retiring
// segments) as fast as it can.
void WriteUntilPowerLoss(PowerLossEnv& env, DurableCollection& c, Progress& p) {
  std::atomic<bool> writing{true};
  std::thread checkpointer([&] {
    while (writing.load()) {
      const absl::Status s = c.Checkpoint();
      if (!s.ok()) {
        EXPECT_FALSE(env.powered()) << "checkpoint failed with power on: " << s;
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  while (true) {
    const uint64_t tag = p.next_tag;
    p.in_flight = static_cast<int64_t>(tag);
    const absl::StatusOr<WriteAck> ack = WriteBatch(c, tag, Durability::kFsync);
    if (!ack.ok()) {
      EXPECT_FALSE(env.powered())
          << "write failed with power on: " << ack.status();
      break;
    }
    crash::ApplyBatch(tag, &p.model);
    p.in_flight = -1;
    ++p.next_tag;
    ++p.acked;
  }
  writing = false;
  checkpointer.join();
  // Start past the in-flight batch: its insert ids may have landed.
  if (p.in_flight >= 0) p.next_tag = static_cast<uint64_t>(p.in_flight) + 1;
}

TEST(PowerLossTest, AcknowledgedWritesSurviveRandomPowerCuts) {
  const int64_t iterations =
      testing::CountFromEnv("PEAKKNN_POWER_LOSS_ITERATIONS", 200);
  constexpr uint64_t kSeed = 20240615;
  PowerLossEnv env(kSeed);
  ASSERT_NO_FATAL_FAILURE(CreateStore(env));
  std::mt19937_64 rng(kSeed);
  Progress p;
  int64_t torn = 0;
  for (int64_t i = 0;; ++i) {
    SCOPED_TRACE("power cut " + std::to_string(i));
    std::unique_ptr<DurableCollection> c = OpenStore(env);
    ASSERT_NE(c, nullptr);
    torn += c->recovery_report().truncated_bytes > 0;
    const std::string wrong =
        crash::CheckRecovered(Rows(*c, p.next_tag), p.in_flight, &p.model);
    ASSERT_TRUE(wrong.empty()) << wrong;
    p.in_flight = -1;
    if (i == iterations) break;
    // Anywhere in the next few dozen batches, checkpoints included.
    const UnsyncedTail tail =
        rng() % 2 ? UnsyncedTail::kRandomPrefix : UnsyncedTail::kDropped;
    env.ArmPowerLoss(1 + static_cast<int64_t>(rng() % 200), tail);
    WriteUntilPowerLoss(env, *c, p);
    c.reset();  // the process dies with the machine
    env.PowerOn();
  }
  EXPECT_GT(p.acked, iterations) << "too few batches to mean anything";
  EXPECT_GT(torn, 0) << "no power cut left a torn log tail";
  std::printf(
      "power loss test: %lld power cuts, %lld acknowledged batches, %zu live "
      "ids, %lld torn tails\n",
      static_cast<long long>(iterations), static_cast<long long>(p.acked),
      p.model.size(), static_cast<long long>(torn));
}

// Every file of `dir`, by name.
std::map<std::string, std::string> ReadDir(Env& env, const std::string& dir) {
  std::map<std::string, std::string> files;
  const absl::StatusOr<std::vector<std::string>> names = env.GetChildren(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  for (const std::string& name : names.value_or(std::vector<std::string>{})) {
    const absl::StatusOr<std::string> data =
        ReadFileToString(&env, JoinPath(dir, name));
    EXPECT_TRUE(data.ok()) << data.status();
    files[name] = data.value_or("");
  }
  return files;
}

// Puts back exactly `files` in `dir`, `segment` holding `log` instead.
void RestoreDir(Env& env, const std::string& dir,
                const std::map<std::string, std::string>& files,
                const std::string& segment, const std::string& log) {
  for (const auto& [name, data] : ReadDir(env, dir)) {
    ASSERT_TRUE(env.DeleteFile(JoinPath(dir, name)).ok());
  }
  for (const auto& [name, data] : files) {
    auto file = env.NewWritableFile(JoinPath(dir, name));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append(name == segment ? log : data).ok());
  }
}

struct TornCase {
  std::string what;
  std::string log;     // the segment's bytes
  size_t records = 0;  // whole valid records it starts with
  bool truncate_corrupt_wal = false;
};

TEST(PowerLossTest, TornOrFlippedLogRecoversItsLongestValidPrefix) {
  PowerLossEnv env(7);
  ASSERT_NO_FATAL_FAILURE(CreateStore(env));
  // Six logged batches in one segment, each its own record; the models
  // after each prefix of them.
  std::vector<Model> after = {Model{}};
  std::vector<uint64_t> tags;
  {
    std::unique_ptr<DurableCollection> c = OpenStore(env, 1 << 20);
    ASSERT_NE(c, nullptr);
    for (uint64_t tag = 0; tags.size() < 6; ++tag) {
      if (crash::MakeBatch(tag).kind == crash::Kind::kDelete) continue;
      ASSERT_TRUE(WriteBatch(*c, tag, Durability::kFsync).ok());
      tags.push_back(tag);
      after.push_back(after.back());
      crash::ApplyBatch(tag, &after.back());
    }
  }
  const std::map<std::string, std::string> files = ReadDir(env, kDir);
  std::string segment;
  for (const auto& [name, data] : files) {
    if (ParseWalSegmentName(name) && !data.empty()) segment = name;
  }
  ASSERT_FALSE(segment.empty());
  const std::string full = files.at(segment);
  std::vector<uint64_t> ends;  // of each record
  ASSERT_TRUE(
      ScanWalSegment(&env, JoinPath(kDir, segment), [&](const WalRecord& r) {
        ends.push_back(r.offset + kWalHeaderBytes + r.payload.size());
        return absl::OkStatus();
      }).ok());
  ASSERT_EQ(ends.size(), tags.size());
  ASSERT_EQ(ends.back(), full.size());
  const uint64_t from = ends[ends.size() - 3];  // the last two records
  const auto records_within = [&](uint64_t bytes) {
    size_t n = 0;
    while (n < ends.size() && ends[n] <= bytes) ++n;
    return n;
  };
  std::vector<TornCase> cases;
  for (uint64_t size = from; size <= full.size(); ++size) {
    cases.push_back({"cut to " + std::to_string(size) + " bytes",
                     full.substr(0, size), records_within(size)});
  }
  for (uint64_t at = from; at < full.size(); ++at) {
    for (const uint8_t flip : {uint8_t{0x01}, uint8_t{0xff}}) {
      std::string log = full;
      log[at] = static_cast<char>(log[at] ^ flip);
      cases.push_back(
          {"byte " + std::to_string(at) + " xor " + std::to_string(flip), log,
           records_within(at), true});
    }
  }
  for (const TornCase& t : cases) {
    SCOPED_TRACE(t.what);
    ASSERT_NO_FATAL_FAILURE(RestoreDir(env, kDir, files, segment, t.log));
    DurableCollectionOptions options = Options(env, 1 << 20);
    options.truncate_corrupt_wal = t.truncate_corrupt_wal;
    auto c = DurableCollection::Open(kDir, options);
    ASSERT_TRUE(c.ok()) << c.status();
    const RecoveryReport& report = (*c)->recovery_report();
    EXPECT_EQ(report.checkpoint_sequence, 0u);
    EXPECT_EQ(report.replayed_records, static_cast<int64_t>(t.records));
    EXPECT_EQ(report.truncated_bytes,
              static_cast<int64_t>(t.log.size() -
                                   (t.records == 0 ? 0 : ends[t.records - 1])));
    EXPECT_EQ(Rows(**c, tags.back() + 1), after[t.records]);
    EXPECT_EQ((*c)->durable_sequence(), t.records);
  }
}

// Where the failed fsync happens: syncing a write group, or syncing
// unsynced records before the log rotates (as a checkpoint starts).
enum class FailedSync { kGroup, kRotation };

class FailedFsyncTest : public ::testing::TestWithParam<FailedSync> {};

// After a failed fsync the records it was to write may be gone from the
// disk even if a later fsync succeeds (Linux drops the dirty pages), so a
// store that retried the fsync and went on would acknowledge batches
// logged behind a hole: a restart then refuses the log (DATA_LOSS) or
// loses them. The rule: the failed write is not acknowledged, the
// collection refuses writes until a restart, and the restart recovers what
// was really synced.
TEST_P(FailedFsyncTest, NeverAcknowledgesAndRefusesWritesUntilRestart) {
  PowerLossEnv env(11);
  ASSERT_NO_FATAL_FAILURE(CreateStore(env));
  Model synced;  // batches 0 and 1, fsynced
  Model applied;
  {
    std::unique_ptr<DurableCollection> c = OpenStore(env, 1 << 20);
    ASSERT_NE(c, nullptr);
    for (uint64_t tag : {0, 1}) {
      ASSERT_TRUE(WriteBatch(*c, tag, Durability::kFsync).ok());
      crash::ApplyBatch(tag, &synced);
    }
    const uint64_t durable = c->durable_sequence();
    // Acknowledged without fsync: the failed fsync may take it along.
    ASSERT_TRUE(WriteBatch(*c, 2, Durability::kNone).ok());
    applied = synced;
    crash::ApplyBatch(2, &applied);
    env.InjectSyncFailure();
    if (GetParam() == FailedSync::kGroup) {
      const absl::StatusOr<WriteAck> failed =
          WriteBatch(*c, 3, Durability::kFsync);
      ASSERT_FALSE(failed.ok());
      EXPECT_NE(failed.status().message().find("fdatasync"), std::string::npos)
          << failed.status();
    } else {
      // The rotation fails; the checkpoint still goes ahead (its own file
      // is written and synced afresh), so batch 2 is safe after all.
      EXPECT_TRUE(c->Checkpoint().ok());
      synced = applied;
    }
    EXPECT_EQ(c->durable_sequence(),
              GetParam() == FailedSync::kGroup ? durable : 3u);
    // Refused, clearly, and not acknowledged.
    const absl::StatusOr<WriteAck> refused =
        WriteBatch(*c, 4, Durability::kFsync);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable)
        << refused.status();
    EXPECT_NE(refused.status().message().find("restart"), std::string::npos)
        << refused.status();
    // Reads go on, seeing what was applied.
    EXPECT_EQ(Rows(*c, 5), applied);
  }
  env.SimulatePowerLoss(UnsyncedTail::kDropped);
  env.PowerOn();
  std::unique_ptr<DurableCollection> c = OpenStore(env, 1 << 20);
  ASSERT_NE(c, nullptr);
  // Batch 2 was never fsynced and may be gone; 3 and 4 never happened.
  const Model got = Rows(*c, 5);
  EXPECT_TRUE(got == synced || got == applied) << crash::Describe(synced, got);
  // Writable again.
  EXPECT_TRUE(WriteBatch(*c, 5, Durability::kFsync).ok());
}

INSTANTIATE_TEST_SUITE_P(PowerLoss, FailedFsyncTest,
                         ::testing::Values(FailedSync::kGroup,
                                           FailedSync::kRotation),
                         [](const ::testing::TestParamInfo<FailedSync>& p) {
                           return p.param == FailedSync::kGroup ? "InGroup"
                                                                : "InRotation";
                         });

}  // namespace
}  // namespace peakknn
