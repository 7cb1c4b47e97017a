// The server's /metrics, scraped by Debian's real Prometheus: start both,
// send traffic, and read back through Prometheus's HTTP API that the target
// is up and peakknn_ counters rose. Skips when /usr/bin/prometheus is absent.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using peakknn::testing::ChildProcess;
using peakknn::testing::ServerProcess;

constexpr char kPrometheus[] = "/usr/bin/prometheus";

// The first sample's value of an instant query, or an error (no sample yet
// counts as an error: the caller polls).
absl::StatusOr<double> QueryValue(int port, const std::string& promql) {
  std::string encoded;
  for (char c : promql) {
    if (isalnum(static_cast<unsigned char>(c)) || c == '_') {
      encoded += c;
    } else {
      encoded += absl::StrCat(
          "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  absl::StatusOr<std::string> body =
      peakknn::testing::HttpGet(port, "/api/v1/query?query=" + encoded);
  if (!body.ok()) return body.status();
  // {"status":"success","data":{"resultType":"vector","result":[{"metric":
  // {...},"value":[1700000000.123,"42"]}]}}
  const size_t value = body->find("\"value\":[");
  if (value == std::string::npos) {
    return absl::NotFoundError(absl::StrCat("no sample yet: ", *body));
  }
  const size_t open = body->find('"', body->find(',', value) + 1);
  const size_t close = body->find('"', open + 1);
  double v;
  if (open == std::string::npos || close == std::string::npos ||
      !absl::SimpleAtod(body->substr(open + 1, close - open - 1), &v)) {
    return absl::InternalError(absl::StrCat("unparsable: ", *body));
  }
  return v;
}

// Polls until the query's value satisfies `ok` (up to 60 s).
absl::StatusOr<double> WaitFor(int port, const std::string& promql,
                               const std::function<bool(double)>& ok) {
  absl::Status last;
  for (const absl::Time stop = absl::Now() + absl::Seconds(60);
       absl::Now() < stop; absl::SleepFor(absl::Milliseconds(250))) {
    absl::StatusOr<double> v = QueryValue(port, promql);
    if (v.ok() && ok(*v)) return *v;
    last =
        v.ok() ? absl::OutOfRangeError(absl::StrCat("value ", *v)) : v.status();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("waiting for ", promql, ": ", last.message()));
}

TEST(PrometheusScrapeTest, RealPrometheusScrapesPeakknnCounters) {
  if (access(kPrometheus, X_OK) != 0) {
    GTEST_SKIP() << kPrometheus
                 << " not installed (Debian package 'prometheus'); skipping "
                    "the real-scrape test";
  }
  absl::StatusOr<ServerProcess> server =
      ServerProcess::Start({"--drain_seconds=2"});
  ASSERT_TRUE(server.ok()) << server.status();

  const std::string dir = peakknn::testing::MakeTempDir("peakknn-prom");
  absl::StatusOr<int> web_port = peakknn::testing::FreePort();
  ASSERT_TRUE(web_port.ok());
  {
    std::ofstream config(dir + "/prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
           << "scrape_configs:\n  - job_name: peakknn\n"
           << "    static_configs:\n      - targets: ['127.0.0.1:"
           << server->metrics_port << "']\n";
  }
  absl::StatusOr<ChildProcess> prometheus = ChildProcess::Spawn(
      {kPrometheus, "--config.file=" + dir + "/prometheus.yml",
       "--storage.tsdb.path=" + dir + "/data",
       absl::StrCat("--web.listen-address=127.0.0.1:", *web_port),
       "--log.level=warn"},
      {}, dir + "/prometheus.log");
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();

  // Traffic: a collection, an insert stream and searches.
  client::ClientOptions options;
  options.target = server->target();
  auto c = client::Client::Connect(options);
  ASSERT_TRUE(c.ok()) << c.status();
  v1::CollectionSchema schema;
  schema.set_name("prom");
  schema.set_dim(8);
  schema.set_metric(v1::METRIC_L2);
  ASSERT_TRUE((*c)->CreateCollection(schema).ok());
  std::vector<uint64_t> ids(500);
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<float> rows(500 * 8);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 13);
  ASSERT_TRUE((*c)->InsertAll("prom", ids, rows).ok());
  auto search = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE((*c)->Search("prom", std::span(&rows[i * 8], 8), 5).ok());
    }
  };
  search(20);

  absl::StatusOr<double> up = WaitFor(*web_port, "up{job=\"peakknn\"}",
                                      [](double v) { return v == 1; });
  ASSERT_TRUE(up.ok()) << up.status();
  absl::StatusOr<double> first =
      WaitFor(*web_port,
              "sum(peakknn_rpc_requests_total{method=\"Search\",code=\"OK\"})",
              [](double v) { return v >= 20; });
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<double> inserted =
      WaitFor(*web_port, "peakknn_inserted_rows_total{collection=\"prom\"}",
              [](double v) { return v == 500; });
  EXPECT_TRUE(inserted.ok()) << inserted.status();
  absl::StatusOr<double> live =
      WaitFor(*web_port, "peakknn_collection_live_rows{collection=\"prom\"}",
              [](double v) { return v == 500; });
  EXPECT_TRUE(live.ok()) << live.status();

  // More traffic: the counters rise in Prometheus.
  search(30);
  absl::StatusOr<double> second =
      WaitFor(*web_port,
              "sum(peakknn_rpc_requests_total{method=\"Search\",code=\"OK\"})",
              [&](double v) { return v >= *first + 30; });
  EXPECT_TRUE(second.ok()) << second.status();
  absl::StatusOr<double> queries =
      WaitFor(*web_port, "peakknn_search_queries_total",
              [](double v) { return v >= 50; });
  EXPECT_TRUE(queries.ok()) << queries.status();
  absl::StatusOr<double> batches =
      WaitFor(*web_port, "peakknn_search_batch_queries_count",
              [](double v) { return v >= 1; });
  EXPECT_TRUE(batches.ok()) << batches.status();

  EXPECT_TRUE(prometheus->Stop(SIGTERM).ok());
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  absl::StatusOr<int> rc = server->process.Stop(SIGTERM);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0);
}

}  // namespace
}  // namespace peakknn
