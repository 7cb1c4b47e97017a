// Test support for the in-process service tests (service_test.cc,
// service_contract_test.cc): VectorSearchService on a real grpc::Server on a
// loopback port, against FakeCore (tests/fake_core.h), driven through the
// real C++ client, plus small helpers those tests share.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/service.h"
#include "tests/fake_core.h"

namespace peakknn::testing {

// The dimension of every collection these tests create.
inline constexpr int kServiceTestDim = 4;

// `rows` x kServiceTestDim normal floats, row-major, from `seed`.
std::vector<float> RandomRows(int64_t rows, uint32_t seed);

// first, first + 1, ..., first + count - 1.
std::vector<uint64_t> Iota(uint64_t first, int64_t count);

// The value of the series `name` with exactly `labels` in the registry
// (a histogram's sample count); nullopt when there is no such series.
std::optional<double> MetricValue(
    server::Metrics& metrics, const std::string& name,
    const std::map<std::string, std::string>& labels = {});

// Polls `done` every 10 ms for up to 5 s.
template <typename Predicate>
bool Eventually(Predicate done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class ServiceTest : public ::testing::Test {
 protected:
  // Serves the service over core_ with `config`; connects client_.
  void Start(const server::ServerConfig& config = {});
  // Start with the core ready.
  void StartReady(const server::ServerConfig& config = {});
  void TearDown() override;

  // Creates an L2 collection of kServiceTestDim.
  void Create(const std::string& name);
  // Upserts `rows` rows with ids first.. and returns their vectors.
  std::vector<float> Fill(const std::string& name, uint64_t first, int64_t rows,
                          uint32_t seed);

  server::Metrics metrics_;
  FakeCore core_;
  std::unique_ptr<server::VectorSearchService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;  // host:port of server_
  std::unique_ptr<client::Client> client_;
};

}  // namespace peakknn::testing
