// peakknn-loadgen: load against a running peakknn-server, compared with the
// engine's own speed on the same data in this process.
//
//   search mode: C concurrent clients, each sending single-query Search
//     calls back to back for --duration_s; prints QPS and p50/p99/p99.9
//     latency, then the in-process engine's batch QPS (peakknn::Collection,
//     --engine_batch queries per call) on the same rows and queries, and
//     the ratio.
//   insert mode: streams the rows through InsertStream (batches of
//     --batch_rows, --window unacked, acked once durable per the server's
//     --durability), then ingests the same rows in the same batches and
//     window into an in-process durable store (CollectionManager, fsync
//     durability, a temporary directory under --engine_dir) and prints both
//     rates and the ratio: the service's cost over the engine's own durable
//     ingest. Point --engine_dir at the server's disk for a fair ratio.
//
// Rows are --data (any format client/vector_files reads) or generated
// Gaussian vectors. The server and this process share the machine; run
// them on separate cores (taskset) for a fair ratio.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/vector_files.h"
#include "engine/collection.h"
#include "engine/collection_manager.h"
#include "engine/schema.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "peakknn-server address");
ABSL_FLAG(std::string, mode, "search", "search or insert");
ABSL_FLAG(std::string, collection, "loadgen",
          "Collection to (re)create on the server");
ABSL_FLAG(std::string, data, "", "Rows file; empty: generated");
ABSL_FLAG(int64_t, rows, 100000, "Generated rows");
ABSL_FLAG(int64_t, dim, 128, "Generated dimension");
ABSL_FLAG(int64_t, queries, 1000, "Distinct query vectors");
ABSL_FLAG(int64_t, k, 10, "Neighbours per query");
ABSL_FLAG(double, recall, 0.95, "Recall target");
ABSL_FLAG(int64_t, clients, 64, "Concurrent clients (search mode)");
ABSL_FLAG(double, duration_s, 10, "Seconds per measurement");
ABSL_FLAG(int64_t, batch_rows, 4096, "Rows per insert batch");
ABSL_FLAG(int64_t, window, 8, "insert mode: batches sent but not yet acked");
ABSL_FLAG(std::string, engine_dir, "/tmp",
          "insert mode: where the in-process durable store writes (a fresh "
          "temporary directory inside, removed afterwards)");
ABSL_FLAG(int64_t, engine_batch, 0,
          "Queries per in-process engine call; 0 = --clients (the most "
          "single-query requests the server can ever merge)");
ABSL_FLAG(bool, skip_load, false,
          "search mode: reuse the server's existing collection");

namespace peakknn {
namespace {

struct Data {
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<float> values;
};

absl::StatusOr<Data> LoadRows() {
  Data d;
  const std::string path = absl::GetFlag(FLAGS_data);
  if (!path.empty()) {
    absl::StatusOr<FloatMatrix> m = ReadVectors(path);
    if (!m.ok()) return m.status();
    d.rows = m->rows;
    d.dim = m->dim;
    d.values = std::move(m->values);
    return d;
  }
  d.rows = absl::GetFlag(FLAGS_rows);
  d.dim = absl::GetFlag(FLAGS_dim);
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  d.values.resize(static_cast<size_t>(d.rows * d.dim));
  for (float& x : d.values) x = normal(rng);
  return d;
}

std::vector<float> MakeQueries(const Data& d, int64_t n) {
  // Perturbed rows: realistic queries with near neighbours.
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<int64_t> pick(0, d.rows - 1);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> q(static_cast<size_t>(n * d.dim));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = &d.values[pick(rng) * d.dim];
    for (int64_t j = 0; j < d.dim; ++j) q[i * d.dim + j] = row[j] + noise(rng);
  }
  return q;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

absl::Status CreateRemote(client::Client& c, const Data& d) {
  const std::string name = absl::GetFlag(FLAGS_collection);
  if (c.DescribeCollection(name).ok()) {
    if (absl::Status s = c.DropCollection(name); !s.ok()) return s;
  }
  v1::CollectionSchema schema;
  schema.set_name(name);
  schema.set_dim(static_cast<uint32_t>(d.dim));
  schema.set_metric(v1::METRIC_L2);
  schema.set_default_recall_target(absl::GetFlag(FLAGS_recall));
  return c.CreateCollection(schema).status();
}

absl::StatusOr<std::unique_ptr<Collection>> CreateLocal(const Data& d) {
  CollectionSchema schema;
  schema.name = "local";
  schema.dim = static_cast<int>(d.dim);
  schema.metric = Metric::kL2;
  schema.default_recall_target = absl::GetFlag(FLAGS_recall);
  return Collection::Create(schema);
}

// The engine's own durable ingest: `d`'s rows into a CollectionManager
// (fsync durability) in a fresh directory under --engine_dir, in batches of
// `batch` with at most `window` unacknowledged (WriteAsync), as the server
// does for one stream. Returns rows per second, acknowledged.
absl::StatusOr<double> EngineDurableIngest(const Data& d,
                                           std::span<const uint64_t> ids,
                                           int64_t batch, int64_t window) {
  std::string dir = absl::GetFlag(FLAGS_engine_dir) + "/peakknn-loadgen-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("--engine_dir=", absl::GetFlag(FLAGS_engine_dir),
                     ": cannot create a temporary directory there"));
  }
  double rate = 0;
  absl::Status status;
  {
    ManagerOptions options;
    options.data_dir = dir + "/data";
    options.default_durability = Durability::kFsync;
    absl::StatusOr<std::unique_ptr<CollectionManager>> manager =
        CollectionManager::Open(options);
    if (!manager.ok()) return manager.status();
    CollectionSchema schema;
    schema.name = "local";
    schema.dim = static_cast<int>(d.dim);
    schema.metric = Metric::kL2;
    if (absl::Status s = (*manager)->CreateCollection(schema); !s.ok()) {
      return s;
    }
    std::mutex mu;
    std::condition_variable cv;
    int64_t outstanding = 0;
    const absl::Time start = absl::Now();
    for (int64_t first = 0; first < d.rows; first += batch) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return outstanding < window || !status.ok(); });
        if (!status.ok()) break;
        ++outstanding;
      }
      const int64_t n = std::min(batch, d.rows - first);
      (*manager)->WriteAsync(
          "local", WriteMode::kInsert, ids.subspan(first, n),
          std::span(d.values).subspan(first * d.dim, n * d.dim), {},
          [&](absl::StatusOr<WriteAck> ack) {
            std::lock_guard<std::mutex> lock(mu);
            status.Update(ack.status());
            --outstanding;
            cv.notify_all();
          });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
    rate = d.rows / absl::ToDoubleSeconds(absl::Now() - start);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (!status.ok()) return status;
  return rate;
}

absl::Status RunInsert(client::Client& c, const Data& d) {
  if (absl::Status s = CreateRemote(c, d); !s.ok()) return s;
  std::vector<uint64_t> ids(static_cast<size_t>(d.rows));
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  client::InsertOptions options;
  options.batch_rows = absl::GetFlag(FLAGS_batch_rows);
  options.window = absl::GetFlag(FLAGS_window);
  const absl::Time start = absl::Now();
  absl::StatusOr<client::InsertSummary> sent =
      c.InsertAll(absl::GetFlag(FLAGS_collection), ids, d.values, options);
  if (!sent.ok()) return sent.status();
  const double service_rate =
      d.rows / absl::ToDoubleSeconds(absl::Now() - start);

  absl::StatusOr<double> engine_rate =
      EngineDurableIngest(d, ids, options.batch_rows, options.window);
  if (!engine_rate.ok()) return engine_rate.status();
  std::printf(
      "insert: %lld rows x %lld dim, batches of %lld rows, window %lld\n"
      "  service (InsertStream, acked): %.0f rows/s\n"
      "  engine in-process (CollectionManager, fsync, same batches and "
      "window): %.0f rows/s\n"
      "  ratio service/engine: %.3f\n",
      static_cast<long long>(d.rows), static_cast<long long>(d.dim),
      static_cast<long long>(options.batch_rows),
      static_cast<long long>(options.window), service_rate, *engine_rate,
      service_rate / *engine_rate);
  return absl::OkStatus();
}

absl::Status RunSearch(client::Client& c, const Data& d) {
  const std::string name = absl::GetFlag(FLAGS_collection);
  const int64_t k = absl::GetFlag(FLAGS_k);
  const double recall = absl::GetFlag(FLAGS_recall);
  const int64_t clients = absl::GetFlag(FLAGS_clients);
  const absl::Duration duration =
      absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  const int64_t nq = absl::GetFlag(FLAGS_queries);
  const std::vector<float> queries = MakeQueries(d, nq);
  std::vector<uint64_t> ids(static_cast<size_t>(d.rows));
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  if (!absl::GetFlag(FLAGS_skip_load)) {
    if (absl::Status s = CreateRemote(c, d); !s.ok()) return s;
    client::InsertOptions options;
    options.batch_rows = absl::GetFlag(FLAGS_batch_rows);
    absl::StatusOr<client::InsertSummary> sent =
        c.InsertAll(name, ids, d.values, options);
    if (!sent.ok()) return sent.status();
  }

  // Service: closed-loop clients, one connection each.
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::atomic<int64_t> errors{0};
  std::atomic<bool> failed_connect{false};
  const absl::Time start = absl::Now();
  const absl::Time stop = start + duration;
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      client::ClientOptions options;
      options.target = c.target();
      auto own = client::Client::Connect(options);
      if (!own.ok()) {
        failed_connect = true;
        return;
      }
      std::mt19937_64 rng(static_cast<uint64_t>(t));
      std::uniform_int_distribution<int64_t> pick(0, nq - 1);
      while (absl::Now() < stop) {
        const int64_t q = pick(rng);
        const absl::Time t0 = absl::Now();
        auto r = (*own)->Search(
            name, std::span(queries).subspan(q * d.dim, d.dim), k, recall);
        if (!r.ok()) {
          ++errors;
          continue;
        }
        latencies[t].push_back(absl::ToDoubleSeconds(absl::Now() - t0));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  if (failed_connect) {
    return absl::UnavailableError("a client could not connect");
  }
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  const double service_qps = all.size() / elapsed;

  // Engine: the same rows and queries, batched, in this process.
  absl::StatusOr<std::unique_ptr<Collection>> local = CreateLocal(d);
  if (!local.ok()) return local.status();
  if (absl::Status s = (*local)->Write(WriteMode::kInsert, ids, d.values);
      !s.ok()) {
    return s;
  }
  const int64_t engine_batch = absl::GetFlag(FLAGS_engine_batch);
  const int64_t batch = std::min(engine_batch > 0 ? engine_batch : clients, nq);
  SearchParams params;
  params.k = k;
  params.recall_target = recall;
  int64_t searched = 0;
  int64_t bins = 0;
  double expected = 0;
  const absl::Time engine_start = absl::Now();
  const absl::Time engine_stop = engine_start + duration;
  for (int64_t first = 0; absl::Now() < engine_stop;
       first = (first + batch) % (nq - batch + 1)) {
    absl::StatusOr<SearchResults> r = (*local)->Search(
        std::span(queries).subspan(first * d.dim, batch * d.dim), params);
    if (!r.ok()) return r.status();
    searched += batch;
    bins = r->bins;
    expected = r->expected_recall;
  }
  const double engine_qps =
      searched / absl::ToDoubleSeconds(absl::Now() - engine_start);

  std::printf(
      "search: %lld rows x %lld dim, k=%lld, recall target %.3f (engine plan: "
      "%lld bins, expected recall %.4f)\n"
      "  service: %lld clients, single-query Search: %.0f QPS, p50 %.3f ms, "
      "p99 %.3f ms, p99.9 %.3f ms, %lld errors\n"
      "  engine in-process, batches of %lld: %.0f QPS\n"
      "  ratio service/engine: %.3f\n",
      static_cast<long long>(d.rows), static_cast<long long>(d.dim),
      static_cast<long long>(k), recall, static_cast<long long>(bins), expected,
      static_cast<long long>(clients), service_qps, 1e3 * Percentile(all, 0.50),
      1e3 * Percentile(all, 0.99), 1e3 * Percentile(all, 0.999),
      static_cast<long long>(errors.load()), static_cast<long long>(batch),
      engine_qps, service_qps / engine_qps);
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<Data> data = LoadRows();
  if (!data.ok()) {
    std::fprintf(stderr, "peakknn-loadgen: %s\n",
                 std::string(data.status().message()).c_str());
    return 2;
  }
  client::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_server);
  auto c = client::Client::Connect(options);
  if (!c.ok()) {
    std::fprintf(stderr, "peakknn-loadgen: %s\n",
                 std::string(c.status().message()).c_str());
    return 1;
  }
  const std::string mode = absl::GetFlag(FLAGS_mode);
  absl::Status s;
  if (mode == "search") {
    s = RunSearch(**c, *data);
  } else if (mode == "insert") {
    s = RunInsert(**c, *data);
  } else {
    s = absl::InvalidArgumentError(
        absl::StrCat("--mode=", mode, ": must be search or insert"));
  }
  if (!s.ok()) {
    std::fprintf(stderr, "peakknn-loadgen: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace peakknn

int main(int argc, char** argv) { return peakknn::Run(argc, argv); }
