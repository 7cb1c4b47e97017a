// CollectionManager: create, list, describe and drop collections, refusals
// while recovering, and a failed create leaving nothing behind.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/collection_manager.h"
#include "store/data_dir.h"
#include "store/fault_injection_env.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using testing::CollectionNames;
using testing::IdRange;
using testing::StoreTempDir;
using testing::VersionedRows;
using testing::VersionedSchema;

TEST(ManagerTest, CreateListDescribeDrop) {
  ManagerOptions options;
  options.data_dir = StoreTempDir("store");
  options.log = [](std::string_view) {};
  auto store = *CollectionManager::Open(options);
  ASSERT_TRUE(
      store->CreateCollection(VersionedSchema("a"), Durability::kDefault).ok());
  ASSERT_TRUE(
      store->CreateCollection(VersionedSchema("b"), Durability::kNone).ok());
  EXPECT_EQ(store->CreateCollection(VersionedSchema("a"), Durability::kDefault)
                .code(),
            absl::StatusCode::kAlreadyExists);
  const absl::Status bad_name = store->CreateCollection(
      VersionedSchema("no/slash"), Durability::kDefault);
  EXPECT_EQ(bad_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_name.message().find("name"), std::string::npos) << bad_name;
  EXPECT_EQ(CollectionNames(*store), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(store->DescribeCollection("zzz").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Insert("zzz", {}, {}).status().code(),
            absl::StatusCode::kNotFound);

  const auto ids = IdRange(0, 10);
  auto ack = store->Insert("b", ids, VersionedRows(ids));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->durability, Durability::kNone);  // the collection's default
  ack = store->Insert("a", ids, VersionedRows(ids));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->durability, Durability::kFsync);
  EXPECT_EQ(ack->sequence, 1u);
  auto info = store->DescribeCollection("a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->live_rows, 10);
  EXPECT_EQ(info->durable_sequence, 1u);
  EXPECT_GT(info->disk_bytes, 0);
  EXPECT_GT(info->memory_bytes, 0);

  ASSERT_TRUE(store->DropCollection("a").ok());
  EXPECT_EQ(store->DropCollection("a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CollectionNames(*store), (std::vector<std::string>{"b"}));
  ASSERT_TRUE(
      store->CreateCollection(VersionedSchema("a"), Durability::kDefault).ok());
  EXPECT_EQ(store->DescribeCollection("a")->live_rows, 0);
  ASSERT_TRUE(store->Close().ok());

  // Clean shutdown checkpointed; reopening finds the same collections.
  auto again = *CollectionManager::Open(options);
  EXPECT_EQ(CollectionNames(*again), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(again->DescribeCollection("b")->live_rows, 10);
}

TEST(ManagerTest, RecoveringManagerRefusesCalls) {
  ManagerOptions options;
  options.data_dir = StoreTempDir("store");
  auto store = CollectionManager::Create(options);
  EXPECT_EQ(store->Ready().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->DescribeCollection("x").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->ListCollections().status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(store->Recover().ok());
  EXPECT_TRUE(store->Ready().ok());
}

// A create that fails after its directory was renamed into place (here:
// its first log segment cannot be created) leaves nothing behind: not for a
// retry, not for a restart.
TEST(ManagerTest, FailedCreateLeavesNothingBehind) {
  FaultInjectionEnv env(Env::Default());
  ManagerOptions options;
  options.data_dir = StoreTempDir("store");
  options.env = &env;
  options.log = [](std::string_view) {};
  {
    auto store = *CollectionManager::Open(options);
    env.InjectCreateFailure("wal-");
    const absl::Status failed =
        store->CreateCollection(VersionedSchema("a"), Durability::kDefault);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(env.faults_fired(), 1);
    EXPECT_NE(failed.message().find("injected"), std::string::npos) << failed;
    EXPECT_TRUE(CollectionNames(*store).empty());
    EXPECT_FALSE(env.FileExists(JoinPath(options.data_dir, "a")));
    EXPECT_TRUE((*env.GetChildren(options.data_dir)).empty());
  }
  {
    auto store = *CollectionManager::Open(options);
    EXPECT_TRUE(CollectionNames(*store).empty());
    ASSERT_TRUE(
        store->CreateCollection(VersionedSchema("a"), Durability::kDefault)
            .ok());
    ASSERT_TRUE(
        store->Insert("a", IdRange(0, 3), VersionedRows(IdRange(0, 3))).ok());
  }
  auto store = *CollectionManager::Open(options);
  EXPECT_EQ(CollectionNames(*store), (std::vector<std::string>{"a"}));
  EXPECT_EQ(store->DescribeCollection("a")->live_rows, 3);
}

}  // namespace
}  // namespace peakknn
