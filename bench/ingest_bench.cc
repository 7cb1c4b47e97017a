// peakknn-ingest-bench: durable ingest, recovery and memory of the store.
//
//   1. Ingest --rows random --dim f32 vectors in --batch row batches from
//      --writers threads with durability fsync (the default), then the same
//      with durability none; prints vectors/s for each and the ratio.
//   2. Recovery: the fsync collection is checkpointed at rows - wal_rows,
//      the last --wal_rows rows stay in the log only; the collection is
//      closed without a checkpoint and reopened. Prints the time of Open
//      (files are in the page cache: this measures the CPU side).
//   3. Memory: resident set of the process after recovery (freed ingest
//      memory trimmed first), against the raw vector bytes + 16 bytes a row
//      (the bar's allowance); the resident set before recovery is printed
//      too.
//
// Flags (--name=value): --dir (default /tmp), --rows=1000000, --dim=128,
// --batch=1024, --writers=2, --wal_rows=100000. Small sizes smoke-test it.
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/durable_collection.h"

namespace peakknn {
namespace {

struct Flags {
  std::string dir = "/tmp";
  int64_t rows = 1000000;
  int dim = 128;
  int64_t batch = 1024;
  int writers = 2;
  int64_t wal_rows = 100000;
};

bool ParseFlag(const char* arg, Flags* f) {
  const std::string a = arg;
  const size_t eq = a.find('=');
  if (a.rfind("--", 0) != 0 || eq == std::string::npos) return false;
  const std::string name = a.substr(2, eq - 2), value = a.substr(eq + 1);
  if (name == "dir") {
    f->dir = value;
  } else if (name == "rows") {
    f->rows = std::atoll(value.c_str());
  } else if (name == "dim") {
    f->dim = std::atoi(value.c_str());
  } else if (name == "batch") {
    f->batch = std::atoll(value.c_str());
  } else if (name == "writers") {
    f->writers = std::atoi(value.c_str());
  } else if (name == "wal_rows") {
    f->wal_rows = std::atoll(value.c_str());
  } else {
    return false;
  }
  return true;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
      .count();
}

int64_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atoll(line.c_str() + 6) * 1024;
    }
  }
  return -1;
}

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, std::string(s.message()).c_str());
    std::exit(1);
  }
}

// Inserts ids [begin, end) from `writers` threads; returns seconds.
double Ingest(DurableCollection& c, const Flags& f,
              const std::vector<float>& pool, int64_t begin, int64_t end) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < f.writers; ++w) {
    threads.emplace_back([&, w] {
      std::vector<uint64_t> ids;
      for (int64_t b = begin + w * f.batch; b < end; b += f.batch * f.writers) {
        const int64_t n = std::min(f.batch, end - b);
        ids.resize(n);
        for (int64_t i = 0; i < n; ++i) ids[i] = b + i;
        // Vectors cycle through a pool of random rows: generating them
        // would cost more than ingesting them.
        const size_t offset = static_cast<size_t>(b % f.batch) * f.dim;
        Check(c.Write(WriteMode::kInsert, ids,
                      std::span<const float>(pool).subspan(offset, n * f.dim))
                  .status(),
              "insert");
      }
    });
  }
  for (auto& t : threads) t.join();
  return Seconds(start);
}

int Main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    if (!ParseFlag(argv[i], &f)) {
      std::fprintf(stderr, "unknown flag %s (see the file comment)\n", argv[i]);
      return 2;
    }
  }
  f.wal_rows = std::min(f.wal_rows, f.rows);
  const std::string root =
      f.dir + "/peakknn-ingest-bench-" + std::to_string(::getpid());
  Check(Env::Default()->CreateDir(root), "mkdir");
  std::vector<float> pool(2 * f.batch * f.dim);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& x : pool) x = normal(rng);
  DurableCollectionOptions options;
  options.log = [](std::string_view) {};
  CollectionSchema schema;
  schema.name = "bench";
  schema.dim = f.dim;
  std::printf(
      "ingest: %lld x %d f32, batches of %lld, %d writer threads, "
      "dir %s\n",
      static_cast<long long>(f.rows), f.dim, static_cast<long long>(f.batch),
      f.writers, root.c_str());

  double none_s;
  {
    auto c = DurableCollection::Create(root + "/none", schema,
                                       Durability::kNone, options);
    Check(c.status(), "create");
    none_s = Ingest(**c, f, pool, 0, f.rows);
    (*c).reset();
  }
  std::system(("rm -rf " + root + "/none").c_str());

  auto c = DurableCollection::Create(root + "/fsync", schema,
                                     Durability::kFsync, options);
  Check(c.status(), "create");
  const int64_t checkpointed = f.rows - f.wal_rows;
  double fsync_s = Ingest(**c, f, pool, 0, checkpointed);
  const auto ckpt_start = std::chrono::steady_clock::now();
  Check((*c)->Checkpoint(), "checkpoint");
  const double ckpt_s = Seconds(ckpt_start);
  fsync_s += Ingest(**c, f, pool, checkpointed, f.rows);
  (*c).reset();  // no checkpoint: the last wal_rows stay in the log

  const double fsync_rate = f.rows / fsync_s, none_rate = f.rows / none_s;
  std::printf(
      "ingest durability=fsync: %.0f vectors/s (%.1f MB/s of "
      "vectors)\n",
      fsync_rate, fsync_rate * f.dim * 4 / 1e6);
  std::printf("ingest durability=none:  %.0f vectors/s\n", none_rate);
  std::printf("fsync / none ratio: %.2f\n", fsync_rate / none_rate);
  std::printf("checkpoint of %lld rows: %.2f s (not in the ingest time)\n",
              static_cast<long long>(checkpointed), ckpt_s);

  // Hand memory the ingest phase freed back to the OS (glibc keeps freed
  // arena memory otherwise), so the figure is what a freshly started server
  // recovering this directory would hold.
  ::malloc_trim(0);
  const int64_t rss_before = ResidentBytes();
  const auto recover_start = std::chrono::steady_clock::now();
  auto reopened = DurableCollection::Open(root + "/fsync", options);
  Check(reopened.status(), "recover");
  const double recover_s = Seconds(recover_start);
  const RecoveryReport& report = (*reopened)->recovery_report();
  std::printf(
      "recovery: %.2f s for %lld checkpoint rows + %lld log records "
      "(%lld rows)\n",
      recover_s, static_cast<long long>(report.checkpoint_rows),
      static_cast<long long>(report.replayed_records),
      static_cast<long long>(f.wal_rows));
  const int64_t live = (*reopened)->collection().Stats().live_rows;
  const int64_t rss = ResidentBytes();
  const double allowance = static_cast<double>(live) * (f.dim * 4 + 16);
  std::printf(
      "memory: resident %.1f MB (%.1f MB before recovery) for %lld "
      "rows; raw vectors + 16 B/row = %.1f MB; ratio %.3f\n",
      rss / 1e6, rss_before / 1e6, static_cast<long long>(live),
      allowance / 1e6, rss / allowance);
  (*reopened).reset();
  std::system(("rm -rf " + root).c_str());
  return 0;
}

}  // namespace
}  // namespace peakknn

int main(int argc, char** argv) { return peakknn::Main(argc, argv); }
