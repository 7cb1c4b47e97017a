// peakknn-loadgen: load against a running peakknn-server, compared with the
// engine's own speed on the same data in this process.
//
//   search mode: C concurrent clients, each sending Search calls of
//     --queries_per_request queries (default 1) back to back for
//     --duration_s; prints QPS (queries per second) and p50/p99/p99.9
//     latency per call, then the in-process engine's batch QPS
//     (peakknn::Collection, --engine_batch queries per call) on the same
//     rows and queries, and the ratio.
//   insert mode: the streaming-insert bar. For each --streams count N:
//     N concurrent InsertStreams (one connection each, a contiguous share
//     of the rows, batches of --batch_rows, --window unacked, acked once
//     durable per the server's --durability), then the same rows in the
//     same batches and window from N writer threads into an in-process
//     durable store (CollectionManager, fsync durability, vectors read in
//     place as the server reads its requests, a temporary directory under
//     --engine_dir). The two alternate --repeats times; it prints every run,
//     the best and median of each and their ratio (the service's cost over
//     the engine's own durable ingest), then a summary table. Point
//     --engine_dir at the server's disk for a fair ratio.
//
// Rows are --data (any format client/vector_files reads) or generated
// Gaussian vectors. The server and this process share the machine, so the
// client's own work (serialising, sending) is part of the service figure.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/security_flags.h"
#include "engine/collection.h"
#include "engine/schema.h"
#include "io/vector_files.h"
#include "store/collection_manager.h"

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
ABSL_FLAG(int64_t, queries_per_request, 1,
          "search mode: queries per Search call (consecutive queries of the "
          "--queries set, from a random start)");
ABSL_FLAG(double, duration_s, 10, "Seconds per measurement");
ABSL_FLAG(int64_t, batch_rows, 4096, "Rows per insert batch");
ABSL_FLAG(int64_t, window, 8,
          "insert mode: batches sent but not yet acked, per stream");
ABSL_FLAG(std::vector<std::string>, streams, {"1"},
          "insert mode: concurrent InsertStreams, each on its own connection "
          "with a contiguous share of the rows; the in-process engine gets "
          "as many writer threads. A list (1,2,4) runs one comparison each");
ABSL_FLAG(int64_t, repeats, 3,
          "insert mode: service and engine runs, alternating; the best and "
          "the median of each are reported");
ABSL_FLAG(std::string, engine_dir, "/tmp",
          "insert mode: where the in-process durable store writes (a fresh "
          "temporary directory inside, removed afterwards)");
ABSL_FLAG(int64_t, engine_batch, 0,
          "Queries per in-process engine call; 0 = --clients x "
          "--queries_per_request (the most queries the server can ever "
          "merge)");
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

// The middle value, or the mean of the two middle ones.
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

// Rows [first, first + count) of the data set: what one stream or one
// in-process writer sends.
struct Share {
  int64_t first = 0;
  int64_t count = 0;
};

// Splits `rows` into `parts` contiguous shares, whole batches each (the last
// share takes the remainder), so streams and writers send the same batches.
std::vector<Share> SplitRows(int64_t rows, int64_t parts, int64_t batch) {
  const int64_t batches = (rows + batch - 1) / batch;
  std::vector<Share> shares;
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t b0 = batches * p / parts, b1 = batches * (p + 1) / parts;
    const int64_t first = std::min(rows, b0 * batch);
    const int64_t last = std::min(rows, b1 * batch);
    if (last > first) shares.push_back({first, last - first});
  }
  return shares;
}

// Runs fn(i) on one thread per share and returns the first error.
absl::Status RunShares(const std::vector<Share>& shares,
                       const std::function<absl::Status(const Share&)>& fn) {
  std::vector<absl::Status> status(shares.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < shares.size(); ++i) {
    threads.emplace_back([&, i] { status[i] = fn(shares[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : status) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// One writer of the in-process store: `share`'s rows in batches of `batch`
// with at most `window` unacknowledged WriteAsync calls, vectors read in
// place, the way the server feeds the store for one InsertStream.
absl::Status EngineWriter(ServedCollection& collection, const Data& d,
                          std::span<const uint64_t> ids, const Share& share,
                          int64_t batch, int64_t window) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t outstanding = 0;
  absl::Status status;
  for (int64_t first = share.first; first < share.first + share.count;
       first += batch) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return outstanding < window || !status.ok(); });
      if (!status.ok()) break;
      ++outstanding;
    }
    const int64_t n = std::min(batch, share.first + share.count - first);
    collection.WriteAsync(
        WriteMode::kInsert, ids.subspan(first, n),
        std::span(d.values).subspan(first * d.dim, n * d.dim), {},
        [&](absl::StatusOr<WriteAck> ack) {
          std::lock_guard<std::mutex> lock(mu);
          status.Update(ack.status());
          --outstanding;
          cv.notify_all();
        },
        // d outlives every write: read in place, as the
        // server reads its requests (an owner owning nothing).
        std::shared_ptr<const void>(std::shared_ptr<const void>(),
                                    d.values.data()));
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return outstanding == 0; });
  return status;
}

// The engine's own durable ingest: `d`'s rows into a CollectionManager
// (fsync durability, the server's defaults otherwise) in a fresh directory
// under --engine_dir, one writer thread per share. Returns rows per second,
// acknowledged.
absl::StatusOr<double> EngineDurableIngest(const Data& d,
                                           std::span<const uint64_t> ids,
                                           const std::vector<Share>& shares,
                                           int64_t batch, int64_t window) {
  std::string dir = absl::GetFlag(FLAGS_engine_dir) + "/peakknn-loadgen-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("--engine_dir=", absl::GetFlag(FLAGS_engine_dir),
                     ": cannot create a temporary directory there"));
  }
  absl::StatusOr<double> rate;
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
    if (absl::Status s =
            (*manager)->CreateCollection(schema, Durability::kDefault);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::shared_ptr<ServedCollection>> collection =
        (*manager)->OpenCollection(schema.name);
    if (!collection.ok()) return collection.status();
    const absl::Time start = absl::Now();
    const absl::Status s = RunShares(shares, [&](const Share& share) {
      return EngineWriter(**collection, d, ids, share, batch, window);
    });
    rate = s.ok() ? absl::StatusOr<double>(
                        d.rows / absl::ToDoubleSeconds(absl::Now() - start))
                  : s;
  }  // the manager's Close (a checkpoint) is not timed
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return rate;
}

// The service: one InsertStream per share, each on its own connection.
absl::StatusOr<double> ServiceIngest(const client::ClientOptions& connection,
                                     const Data& d,
                                     std::span<const uint64_t> ids,
                                     const std::vector<Share>& shares,
                                     const client::InsertOptions& options) {
  std::vector<std::unique_ptr<client::Client>> clients;
  for (size_t i = 0; i < shares.size(); ++i) {
    auto c = client::Client::Connect(connection);
    if (!c.ok()) return c.status();
    clients.push_back(*std::move(c));
  }
  std::atomic<size_t> next{0};
  const absl::Time start = absl::Now();
  const absl::Status s = RunShares(shares, [&](const Share& share) {
    client::Client& c = *clients[next++];
    return c
        .InsertAll(absl::GetFlag(FLAGS_collection),
                   ids.subspan(share.first, share.count),
                   std::span(d.values).subspan(share.first * d.dim,
                                               share.count * d.dim),
                   options)
        .status();
  });
  if (!s.ok()) return s;
  return d.rows / absl::ToDoubleSeconds(absl::Now() - start);
}

std::string LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "unknown";
  char line[128] = {};
  const bool read = std::fgets(line, sizeof(line), f) != nullptr;
  std::fclose(f);
  if (!read) return "unknown";
  // "1.23 0.98 0.75 2/345 6789": the three averages.
  std::string s = line;
  size_t end = 0;
  for (int fields = 0; fields < 3 && end != std::string::npos; ++fields) {
    end = s.find(' ', end + (fields > 0 ? 1 : 0));
  }
  return s.substr(0, end);
}

struct InsertResult {
  int64_t streams = 0;
  double service = 0, engine = 0;  // rows/s, best of the runs
  double service_median = 0, engine_median = 0;
};

// Service and engine alternate `repeats` times on the same rows, batches,
// window and parallelism (`streams` InsertStreams = writer threads); the
// best (and the median) of each are compared, so a burst of load from
// another process on the machine hurts one run, not the ratio.
absl::StatusOr<InsertResult> CompareInsert(client::Client& c, const Data& d,
                                           std::span<const uint64_t> ids,
                                           int64_t streams,
                                           const client::InsertOptions& options,
                                           int64_t repeats) {
  const std::vector<Share> shares =
      SplitRows(d.rows, streams, options.batch_rows);
  std::printf(
      "insert: %lld rows x %lld dim f32, batches of %lld rows, %lld "
      "streams / writer threads, window %lld batches each, %lld runs of each; "
      "load average %s\n",
      static_cast<long long>(d.rows), static_cast<long long>(d.dim),
      static_cast<long long>(options.batch_rows),
      static_cast<long long>(shares.size()),
      static_cast<long long>(options.window), static_cast<long long>(repeats),
      LoadAverage().c_str());
  std::vector<double> service_rates, engine_rates;
  for (int64_t r = 0; r < repeats; ++r) {
    if (absl::Status s = CreateRemote(c, d); !s.ok()) return s;
    absl::StatusOr<double> service =
        ServiceIngest(c.options(), d, ids, shares, options);
    if (!service.ok()) return service.status();
    absl::StatusOr<double> engine =
        EngineDurableIngest(d, ids, shares, options.batch_rows, options.window);
    if (!engine.ok()) return engine.status();
    std::printf("  run %lld: service %.0f rows/s, engine %.0f rows/s\n",
                static_cast<long long>(r + 1), *service, *engine);
    std::fflush(stdout);
    service_rates.push_back(*service);
    engine_rates.push_back(*engine);
  }
  InsertResult result;
  result.streams = static_cast<int64_t>(shares.size());
  result.service =
      *std::max_element(service_rates.begin(), service_rates.end());
  result.engine = *std::max_element(engine_rates.begin(), engine_rates.end());
  result.service_median = Median(service_rates);
  result.engine_median = Median(engine_rates);
  std::printf(
      "  service (InsertStream x %lld, acked per the server's "
      "--durability): best %.0f rows/s, median %.0f\n"
      "  engine in-process (CollectionManager, fsync, %lld writer threads "
      "with the same batches and window): best %.0f rows/s, median %.0f\n"
      "  ratio service/engine: best/best %.3f, median/median %.3f (load "
      "average now %s)\n",
      static_cast<long long>(result.streams), result.service,
      result.service_median, static_cast<long long>(result.streams),
      result.engine, result.engine_median, result.service / result.engine,
      result.service_median / result.engine_median, LoadAverage().c_str());
  std::fflush(stdout);
  return result;
}

// One comparison per --streams entry, then a summary table.
absl::Status RunInsert(client::Client& c, const Data& d) {
  std::vector<uint64_t> ids(static_cast<size_t>(d.rows));
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  client::InsertOptions options;
  options.batch_rows = absl::GetFlag(FLAGS_batch_rows);
  options.window = absl::GetFlag(FLAGS_window);
  const int64_t repeats = absl::GetFlag(FLAGS_repeats);
  if (options.batch_rows < 1 || options.window < 1 || repeats < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--batch_rows=", options.batch_rows, ", --window=", options.window,
        " and --repeats=", repeats, " must all be >= 1"));
  }
  std::vector<int64_t> stream_counts;
  for (const std::string& entry : absl::GetFlag(FLAGS_streams)) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(entry, &n) || n < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--streams: \"", entry,
          "\" is not a stream count >= 1 (give a list like 1,2,4)"));
    }
    stream_counts.push_back(n);
  }
  std::vector<InsertResult> results;
  for (int64_t streams : stream_counts) {
    absl::StatusOr<InsertResult> r =
        CompareInsert(c, d, ids, streams, options, repeats);
    if (!r.ok()) return r.status();
    results.push_back(*r);
  }
  std::printf(
      "summary (rows/s, best of %lld; ratio = service / engine in-process):\n"
      "  streams  service    engine     ratio  (median ratio)\n",
      static_cast<long long>(repeats));
  for (const InsertResult& r : results) {
    std::printf("  %7lld  %9.0f  %9.0f  %5.3f  (%5.3f)\n",
                static_cast<long long>(r.streams), r.service, r.engine,
                r.service / r.engine, r.service_median / r.engine_median);
  }
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
  const int64_t per_request = absl::GetFlag(FLAGS_queries_per_request);
  if (per_request < 1 || per_request > nq) {
    return absl::InvalidArgumentError(
        absl::StrCat("--queries_per_request=", per_request,
                     ": must be in [1, --queries=", nq, "]"));
  }
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
      auto own = client::Client::Connect(c.options());
      if (!own.ok()) {
        failed_connect = true;
        return;
      }
      std::mt19937_64 rng(static_cast<uint64_t>(t));
      std::uniform_int_distribution<int64_t> pick(0, nq - per_request);
      while (absl::Now() < stop) {
        const int64_t q = pick(rng);
        const absl::Time t0 = absl::Now();
        auto r = (*own)->Search(
            name, std::span(queries).subspan(q * d.dim, per_request * d.dim), k,
            recall);
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
  const double service_qps =
      static_cast<double>(all.size()) * per_request / elapsed;

  // Engine: the same rows and queries, batched, in this process.
  absl::StatusOr<std::unique_ptr<Collection>> local = CreateLocal(d);
  if (!local.ok()) return local.status();
  if (absl::Status s = (*local)->Write(WriteMode::kInsert, ids, d.values);
      !s.ok()) {
    return s;
  }
  const int64_t engine_batch = absl::GetFlag(FLAGS_engine_batch);
  const int64_t batch =
      std::min(engine_batch > 0 ? engine_batch : clients * per_request, nq);
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

  const std::string request_shape =
      per_request == 1 ? "single-query" : absl::StrCat(per_request, "-query");
  std::printf(
      "search: %lld rows x %lld dim, k=%lld, recall target %.3f (engine plan: "
      "%lld bins, expected recall %.4f)\n"
      "  service: %lld clients, %s Search: %.0f QPS, p50 %.3f ms, "
      "p99 %.3f ms, p99.9 %.3f ms, %lld errors\n"
      "  engine in-process, batches of %lld: %.0f QPS\n"
      "  ratio service/engine: %.3f\n",
      static_cast<long long>(d.rows), static_cast<long long>(d.dim),
      static_cast<long long>(k), recall, static_cast<long long>(bins), expected,
      static_cast<long long>(clients), request_shape.c_str(), service_qps,
      1e3 * Percentile(all, 0.50), 1e3 * Percentile(all, 0.99),
      1e3 * Percentile(all, 0.999), static_cast<long long>(errors.load()),
      static_cast<long long>(batch), engine_qps, service_qps / engine_qps);
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
  if (absl::Status s = client::ApplySecurityFlags(&options); !s.ok()) {
    std::fprintf(stderr, "peakknn-loadgen: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
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
