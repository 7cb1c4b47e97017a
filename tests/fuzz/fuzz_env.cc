#include "tests/fuzz/fuzz_env.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "engine/collection.h"
#include "store/env.h"

namespace peakknn::fuzz {

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz: %s\n", what.c_str());
  std::abort();
}

std::string MakeScratchDir() {
  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp) {
    base = tmp;
  } else if (std::filesystem::is_directory("/dev/shm")) {
    base = "/dev/shm";  // tmpfs: no disk writes per input
  }
  std::string dir = base + "/peakknn-fuzz-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) Die("mkdtemp " + dir + " failed");
  return dir;
}

const std::string& ScratchDir() {
  static const std::string* const dir = [] {
    auto* made = new std::string(MakeScratchDir());
    // Best effort at exit; a crashed run leaves it for the OS's tmp cleanup.
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(ScratchDir(), ignored);
    });
    return made;
  }();
  return *dir;
}

}  // namespace

const std::string& FreshScratchDir() {
  const std::string& dir = ScratchDir();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::filesystem::remove_all(entry.path(), error);
  }
  if (error) Die("cannot empty " + dir + ": " + error.message());
  return dir;
}

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) Die("cannot write " + path);
}

CollectionSchema FuzzSchema(uint8_t selector, int dim) {
  CollectionSchema schema;
  schema.name = "fuzz";
  schema.dim = dim;
  schema.metric = static_cast<Metric>((selector & 3) % 3);
  schema.dtype = (selector & 4) != 0 ? DType::kBf16 : DType::kF32;
  return schema;
}

void RecoverAndUse(const std::string& dir, bool truncate_corrupt_wal) {
  RecoveryOptions options;
  options.truncate_corrupt_wal = truncate_corrupt_wal;
  options.log = [](std::string_view) {};
  // Small blocks: a handful of rows already spans several.
  CollectionOptions collection;
  collection.block_rows = 16;
  absl::StatusOr<RecoveredCollection> recovered =
      RecoverCollection(Env::Default(), dir, collection, options);
  if (!recovered.ok()) return;
  const Collection& c = *recovered->collection;
  const std::vector<float> query(static_cast<size_t>(c.schema().dim), 1.0f);
  absl::StatusOr<SearchResults> results =
      c.Search(query, SearchParams{.k = 10, .recall_target = 1});
  if (!results.ok()) {
    Die("search after a successful recovery failed: " +
        std::string(results.status().message()));
  }
  // Every row found must read back.
  for (int32_t i = 0; i < results->counts[0]; ++i) {
    const uint64_t id = results->ids[static_cast<size_t>(i)];
    if (!c.Get(std::span(&id, 1))[0].has_value()) {
      Die("a row search returned cannot be read back");
    }
  }
}

}  // namespace peakknn::fuzz
