// The store's collection limit (ManagerOptions::max_collections, the
// server's --max_collections): creates beyond it are RESOURCE_EXHAUSTED and
// leave nothing on disk; collections found at recovery are all served even
// beyond it, and creates wait for drops.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/collection_manager.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using ::testing::HasSubstr;

CollectionSchema Schema(const std::string& name) {
  return testing::SmallSchema(name, 4);
}

class CollectionLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/peakknn-limit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<CollectionManager> Open(int64_t max_collections) {
    ManagerOptions options;
    options.data_dir = root_;
    options.max_collections = max_collections;
    options.maintenance_interval = absl::ZeroDuration();
    options.log = [this](std::string_view line) { log_.emplace_back(line); };
    auto store = CollectionManager::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Entries of the data directory: collections and any leftovers.
  std::vector<std::string> OnDisk() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(root_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string root_;
  std::vector<std::string> log_;
};

TEST_F(CollectionLimitTest, CreateBeyondTheLimitIsResourceExhausted) {
  auto store = Open(3);
  ASSERT_NE(store, nullptr);
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_TRUE(store->CreateCollection(Schema(name), Durability::kFsync).ok());
  }
  const absl::Status refused =
      store->CreateCollection(Schema("d"), Durability::kFsync);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("3 collections exist and --max_collections=3"));
  EXPECT_THAT(OnDisk(), ::testing::ElementsAre("a", "b", "c"));
  // A taken name is still ALREADY_EXISTS, not the limit.
  EXPECT_EQ(store->CreateCollection(Schema("a"), Durability::kFsync).code(),
            absl::StatusCode::kAlreadyExists);

  ASSERT_TRUE(store->DropCollection("b").ok());
  EXPECT_TRUE(store->CreateCollection(Schema("d"), Durability::kFsync).ok());
  EXPECT_THAT(OnDisk(), ::testing::ElementsAre("a", "c", "d"));
}

TEST_F(CollectionLimitTest, RecoveryServesEveryCollectionBeyondTheLimit) {
  {
    auto store = Open(3);
    ASSERT_NE(store, nullptr);
    for (const char* name : {"a", "b", "c"}) {
      ASSERT_TRUE(
          store->CreateCollection(Schema(name), Durability::kFsync).ok());
    }
    ASSERT_TRUE(store->Close().ok());
  }
  // Restarted with a lower limit: every collection is still served.
  auto store = Open(2);
  ASSERT_NE(store, nullptr);
  auto listed = store->ListCollections();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->size(), 3u);
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr(
                        "holds 3 collections, more than --max_collections=2")));
  const absl::Status refused =
      store->CreateCollection(Schema("d"), Durability::kFsync);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  // One drop is not enough (3 -> 2); two are.
  ASSERT_TRUE(store->DropCollection("a").ok());
  EXPECT_EQ(store->CreateCollection(Schema("d"), Durability::kFsync).code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store->DropCollection("b").ok());
  EXPECT_TRUE(store->CreateCollection(Schema("d"), Durability::kFsync).ok());
}

}  // namespace
}  // namespace peakknn
