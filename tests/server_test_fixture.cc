#include "tests/server_test_fixture.h"

#include <signal.h>

#include <algorithm>
#include <numeric>
#include <utility>

namespace peakknn::testing {

std::vector<uint64_t> BruteForce(const std::vector<float>& data, int dim,
                                 const float* query, int k) {
  const int64_t n = static_cast<int64_t>(data.size()) / dim;
  std::vector<std::pair<float, uint64_t>> d;
  for (int64_t i = 0; i < n; ++i) {
    float s = 0;
    for (int j = 0; j < dim; ++j) {
      const float t = data[i * dim + j] - query[j];
      s += t * t;
    }
    d.push_back({s, static_cast<uint64_t>(i)});
  }
  std::partial_sort(d.begin(), d.begin() + k, d.end());
  std::vector<uint64_t> ids;
  for (int i = 0; i < k; ++i) ids.push_back(d[i].second);
  return ids;
}

void ServerTest::StartServer(const std::vector<std::string>& flags,
                             const std::vector<std::string>& env) {
  // Shutdown waits out the drain time while an idle client connection
  // stays open, so tests keep it short (a later flag wins).
  std::vector<std::string> all = {"--drain_seconds=2"};
  all.insert(all.end(), flags.begin(), flags.end());
  absl::StatusOr<ServerProcess> server = ServerProcess::Start(all, env);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::make_unique<ServerProcess>(std::move(*server));
  client::ClientOptions options;
  options.target = server_->target();
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(options);
  ASSERT_TRUE(c.ok()) << c.status();
  client_ = std::move(*c);
}

void ServerTest::CreateAndFill(const std::string& name, int64_t rows) {
  v1::CollectionSchema schema;
  schema.set_name(name);
  schema.set_dim(kServerTestDim);
  schema.set_metric(v1::METRIC_L2);
  ASSERT_TRUE(client_->CreateCollection(schema).ok());
  data_ = RandomVectors(rows, kServerTestDim, 1);
  std::vector<uint64_t> ids(rows);
  std::iota(ids.begin(), ids.end(), 0);
  absl::StatusOr<client::InsertSummary> s =
      client_->InsertAll(name, ids, data_);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->rows, rows);
}

void ServerTest::TearDown() {
  if (server_ != nullptr && server_->process.pid() > 0) {
    absl::StatusOr<int> rc = server_->process.Stop(SIGTERM);
    EXPECT_TRUE(rc.ok()) << rc.status();
    if (rc.ok()) {
      EXPECT_EQ(*rc, 0) << server_->Log();
    }
  }
}

}  // namespace peakknn::testing
