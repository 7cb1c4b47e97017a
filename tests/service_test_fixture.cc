#include "tests/service_test_fixture.h"

#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"

namespace peakknn::testing {

std::vector<float> RandomRows(int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(rows) * kServiceTestDim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<uint64_t> Iota(uint64_t first, int64_t count) {
  std::vector<uint64_t> ids(static_cast<size_t>(count));
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

std::optional<double> MetricValue(
    server::Metrics& metrics, const std::string& name,
    const std::map<std::string, std::string>& labels) {
  for (const prometheus::MetricFamily& family : metrics.registry().Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      std::map<std::string, std::string> got;
      for (const auto& label : m.label) got[label.name] = label.value;
      if (got != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return m.counter.value;
        case prometheus::MetricType::Gauge:
          return m.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(m.histogram.sample_count);
        default:
          return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

void ServiceTest::Start(const server::ServerConfig& config) {
  service_ =
      std::make_unique<server::VectorSearchService>(config, &core_, &metrics_);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service_.get());
  // As peakknn-server sets them (server/main.cc).
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  server_ = builder.BuildAndStart();
  ASSERT_NE(server_, nullptr);
  ASSERT_NE(port, 0);
  target_ = absl::StrCat("127.0.0.1:", port);
  client::ClientOptions options;
  options.target = target_;
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(options);
  ASSERT_TRUE(c.ok()) << c.status();
  client_ = *std::move(c);
}

void ServiceTest::StartReady(const server::ServerConfig& config) {
  core_.SetReady(absl::OkStatus());
  Start(config);
}

void ServiceTest::TearDown() {
  core_.ReleaseAcks();
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }
  if (service_ != nullptr) service_->StopBatchers();
  client_.reset();
  server_.reset();
  service_.reset();
}

void ServiceTest::Create(const std::string& name) {
  v1::CollectionSchema schema;
  schema.set_name(name);
  schema.set_dim(kServiceTestDim);
  schema.set_metric(v1::METRIC_L2);
  absl::StatusOr<v1::CollectionInfo> info = client_->CreateCollection(schema);
  ASSERT_TRUE(info.ok()) << info.status();
}

std::vector<float> ServiceTest::Fill(const std::string& name, uint64_t first,
                                     int64_t rows, uint32_t seed) {
  std::vector<float> data = RandomRows(rows, seed);
  auto ack = client_->Upsert(name, Iota(first, rows), data);
  EXPECT_TRUE(ack.ok()) << ack.status();
  return data;
}

}  // namespace peakknn::testing
