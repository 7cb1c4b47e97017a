// peakknn demo: a guided end-to-end run against a server. Creates a
// collection, streams generated data in with a progress bar, runs
// single-query searches from several client threads (so the server's
// batcher merges them), then checks recall against exact search through the
// same server (recall_target = 1) and prints it beside the expected recall
// and the QPS.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/progress_bar.h"

namespace peakknn::client {
namespace {

// Gaussian clusters: realistic enough that neighbours are meaningful.
std::vector<float> GenerateClustered(int64_t rows, int64_t dim, uint64_t seed) {
  constexpr int kClusters = 64;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centers(static_cast<size_t>(kClusters * dim));
  for (float& c : centers) c = 4.0f * normal(rng);
  std::uniform_int_distribution<int> pick(0, kClusters - 1);
  std::vector<float> data(static_cast<size_t>(rows * dim));
  for (int64_t r = 0; r < rows; ++r) {
    const float* center = &centers[static_cast<size_t>(pick(rng) * dim)];
    for (int64_t d = 0; d < dim; ++d) {
      data[r * dim + d] = center[d] + normal(rng);
    }
  }
  return data;
}

}  // namespace

absl::Status CmdDemo(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(
          ctx, 0,
          "demo [--rows N] [--dim D] [--queries Q] [-k K] [--clients C] "
          "[--collection NAME]");
      !s.ok()) {
    return s;
  }
  const int64_t dim = ctx.dim > 0 ? ctx.dim : 64;
  if (ctx.rows < 1 || ctx.queries < 1 || ctx.clients < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rows=", ctx.rows, ", --queries=", ctx.queries,
                     ", --clients=", ctx.clients, ": each must be >= 1"));
  }
  absl::StatusOr<std::unique_ptr<Client>> connected = ConnectFrom(ctx);
  if (!connected.ok()) return connected.status();
  Client& client = **connected;

  // 1. A fresh collection (the demo owns its name and replaces it).
  if (client.DescribeCollection(ctx.collection).ok()) {
    std::printf("demo: replacing existing collection %s\n",
                ctx.collection.c_str());
    if (absl::Status s = client.DropCollection(ctx.collection); !s.ok()) {
      return s;
    }
  }
  v1::CollectionSchema schema;
  schema.set_name(ctx.collection);
  schema.set_dim(static_cast<uint32_t>(dim));
  schema.set_metric(v1::METRIC_L2);
  schema.set_default_recall_target(ctx.recall > 0 ? ctx.recall : 0.95);
  absl::StatusOr<v1::CollectionInfo> created = client.CreateCollection(schema);
  if (!created.ok()) return created.status();
  std::printf("demo: created %s (dim %lld, L2, recall target %.2f)\n",
              ctx.collection.c_str(), static_cast<long long>(dim),
              created->schema().default_recall_target());

  // 2. Stream the data in.
  const std::vector<float> data = GenerateClustered(ctx.rows, dim, 42);
  std::vector<uint64_t> ids(static_cast<size_t>(ctx.rows));
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  ProgressBar bar("insert", ctx.rows);
  InsertOptions insert;
  insert.batch_rows = ctx.batch_rows;
  const absl::Time insert_start = absl::Now();
  absl::StatusOr<InsertSummary> inserted =
      client.InsertAll(ctx.collection, ids, data, insert,
                       [&](int64_t done, int64_t) { bar.Update(done); });
  bar.Finish();
  if (!inserted.ok()) return inserted.status();
  const double insert_seconds =
      absl::ToDoubleSeconds(absl::Now() - insert_start);

  // 3. Single-query searches from several threads.
  const std::vector<float> queries = GenerateClustered(ctx.queries, dim, 7);
  std::vector<std::vector<uint64_t>> approx(static_cast<size_t>(ctx.queries));
  std::atomic<int64_t> next{0};
  std::mutex mu;
  absl::Status failure;     // guarded by mu
  double expected_sum = 0;  // guarded by mu
  const absl::Time search_start = absl::Now();
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < ctx.clients; ++t) {
    threads.emplace_back([&] {
      for (int64_t q = next++; q < ctx.queries; q = next++) {
        absl::StatusOr<v1::SearchResponse> r = client.Search(
            ctx.collection,
            std::span<const float>(queries).subspan(q * dim, dim), ctx.k);
        std::lock_guard lock(mu);
        if (!r.ok()) {
          if (failure.ok()) failure = r.status();
          return;
        }
        approx[q].assign(r->results(0).ids().begin(),
                         r->results(0).ids().end());
        expected_sum += r->expected_recall();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double search_seconds =
      absl::ToDoubleSeconds(absl::Now() - search_start);
  if (!failure.ok()) return failure;

  // 4. Exact answers through the same server.
  absl::StatusOr<SearchAllResult> exact =
      client.SearchAll(ctx.collection, queries, dim, ctx.k, 1.0);
  if (!exact.ok()) return exact.status();
  int64_t hits = 0;
  int64_t wanted = 0;
  for (int64_t q = 0; q < ctx.queries; ++q) {
    const absl::flat_hash_set<uint64_t> truth(exact->ids[q].begin(),
                                              exact->ids[q].end());
    wanted += static_cast<int64_t>(truth.size());
    for (uint64_t id : approx[q]) hits += truth.contains(id);
  }
  std::printf(
      "demo: inserted %lld rows in %.2f s (%.0f rows/s)\n"
      "demo: %lld single-query searches (k=%lld) from %lld clients in %.2f s: "
      "%.0f QPS\n"
      "demo: measured recall@%lld %.4f (against exact search), expected "
      "%.4f\n",
      static_cast<long long>(ctx.rows), insert_seconds,
      ctx.rows / std::max(insert_seconds, 1e-9),
      static_cast<long long>(ctx.queries), static_cast<long long>(ctx.k),
      static_cast<long long>(ctx.clients), search_seconds,
      ctx.queries / std::max(search_seconds, 1e-9),
      static_cast<long long>(ctx.k),
      wanted ? static_cast<double>(hits) / wanted : 1.0,
      expected_sum / ctx.queries);
  return absl::OkStatus();
}

}  // namespace peakknn::client
