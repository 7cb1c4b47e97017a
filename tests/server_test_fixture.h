// Test support for the integration tests that run the real peakknn-server
// binary on a loopback port and talk to it through the real C++ client
// (server_integration_test.cc, server_write_streams_test.cc,
// server_batching_test.cc, server_lifecycle_test.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace peakknn::testing {

// The dimension of the collections CreateAndFill makes.
inline constexpr int kServerTestDim = 16;

// Exact k nearest ids by L2 (ties by lower id) of `query` among the rows
// of `data` (row-major, `dim` floats each, ids 0, 1, ...), for checking.
std::vector<uint64_t> BruteForce(const std::vector<float>& data, int dim,
                                 const float* query, int k);

class ServerTest : public ::testing::Test {
 protected:
  // Starts peakknn-server with `flags` (after --drain_seconds=2) and `env`,
  // and connects client_.
  void StartServer(const std::vector<std::string>& flags = {},
                   const std::vector<std::string>& env = {});
  // Creates an L2 collection of kServerTestDim and inserts `rows` random
  // rows (ids 0..rows-1, kept in data_).
  void CreateAndFill(const std::string& name, int64_t rows);
  // SIGTERM; the server must exit 0.
  void TearDown() override;

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
  std::vector<float> data_;
};

}  // namespace peakknn::testing
