// Child process of tests/crash_test.cc: opens the store in argv[1], reports
// what it recovered, then streams the batches of tests/crash_workload.h from
// tag argv[2] on, printing each acknowledgement, until it is killed.
//
// After READY it waits for one line on stdin: "GO" starts the writes,
// "DUMP" lists every recovered row and exits (the parent's diagnosis when
// the digest differs from what it expects).
//
// Output lines (each written with one write(2), so a kill never splits one):
//   BAD <id>              a recovered row whose vector is not what any batch
//                         wrote
//   DIGEST <rows> <sum>   crash::Digest of the recovered rows
//   READY
//   HAVE <id> <tag>       (after DUMP) a recovered row, vector exactly
//                         VectorOf(id, tag)
//   BEGIN <tag>           batch submitted
//   ACK <tag> <seq>       batch acknowledged (fsynced and visible)
//   ERR ...               anything else; exit status 1
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "store/collection_manager.h"
#include "tests/crash_workload.h"

namespace {

void Say(const std::string& line) {
  const std::string out = line + "\n";
  if (::write(STDOUT_FILENO, out.data(), out.size()) < 0) std::_Exit(2);
}

int Fail(const std::string& what) {
  Say("ERR " + what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace peakknn;
  if (argc != 3) return Fail("usage: crash_writer DIR START_TAG");
  const uint64_t start_tag = std::strtoull(argv[2], nullptr, 10);
  ManagerOptions options;
  options.data_dir = argv[1];
  options.block_rows = 64;                  // small blocks: compaction runs
  options.checkpoint_wal_bytes = 32 << 10;  // frequent checkpoints
  options.maintenance_interval = absl::Milliseconds(20);
  options.compaction_dead_fraction = 0.2;
  options.log = [](std::string_view) {};
  auto manager = CollectionManager::Open(options);
  if (!manager.ok()) return Fail(std::string(manager.status().message()));
  CollectionManager& store = **manager;
  const auto existing = store.ListCollections();
  if (!existing.ok()) return Fail(std::string(existing.status().message()));
  if (existing->empty()) {
    CollectionSchema schema;
    schema.name = "crash";
    schema.dim = crash::kDim;
    if (absl::Status s = store.CreateCollection(schema, Durability::kDefault);
        !s.ok()) {
      return Fail(std::string(s.message()));
    }
  }
  std::vector<uint64_t> all(start_tag * crash::kIdsPerTag);
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto rows = store.Get("crash", all);
  if (!rows.ok()) return Fail(std::string(rows.status().message()));
  crash::Digest digest;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!(*rows)[i]) continue;
    if (const auto tag = crash::TagOf(all[i], *(*rows)[i])) {
      crash::AddToDigest(all[i], *tag, &digest);
    } else {
      Say("BAD " + std::to_string(all[i]));
    }
  }
  Say("DIGEST " + std::to_string(digest.rows) + " " +
      std::to_string(digest.sum));
  Say("READY");
  std::string command;
  std::getline(std::cin, command);
  if (command == "DUMP") {
    for (size_t i = 0; i < all.size(); ++i) {
      if (!(*rows)[i]) continue;
      if (const auto tag = crash::TagOf(all[i], *(*rows)[i])) {
        Say("HAVE " + std::to_string(all[i]) + " " + std::to_string(*tag));
      }
    }
    return 0;
  }
  if (command != "GO") return Fail("expected GO or DUMP, got: " + command);
  for (uint64_t tag = start_tag;; ++tag) {
    const crash::Batch batch = crash::MakeBatch(tag);
    Say("BEGIN " + std::to_string(tag));
    absl::StatusOr<WriteAck> ack;
    if (batch.kind == crash::Kind::kDelete) {
      ack = store.Delete("crash", batch.ids);
    } else {
      std::vector<float> vectors;
      for (uint64_t id : batch.ids) {
        const std::vector<float> v = crash::VectorOf(id, tag);
        vectors.insert(vectors.end(), v.begin(), v.end());
      }
      ack = batch.kind == crash::Kind::kInsert
                ? store.Insert("crash", batch.ids, vectors)
                : store.Upsert("crash", batch.ids, vectors);
    }
    if (!ack.ok()) return Fail(std::string(ack.status().message()));
    Say("ACK " + std::to_string(tag) + " " + std::to_string(ack->sequence));
  }
}
