// Test support: a real NATS JetStream cluster of nats-server processes on
// loopback ports (127.0.0.1 only), with its files in a fresh temporary
// directory, whose nodes tests can kill -9.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "router/nats/connection.h"
#include "tests/server_process.h"

namespace peakknn::testing {

class NatsTestCluster {
 public:
  // The nats-server binary ($PATH, then /usr/sbin), or "" when none is
  // installed: the tests then skip, printing why.
  static std::string ServerBinary();

  // Starts `size` servers (named n0, n1, ...) with JetStream and cluster
  // routes to each other; returns once every server sees a JetStream meta
  // leader.
  static absl::StatusOr<std::unique_ptr<NatsTestCluster>> Start(int size = 3);
  // Kills every server and removes the directory.
  ~NatsTestCluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  std::string ClientUrl(int node) const;  // nats://127.0.0.1:port
  std::vector<std::string> ClientUrls() const;
  // The node index of server name "n<i>".
  absl::StatusOr<int> NodeNamed(const std::string& server_name) const;

  // SIGKILL, then reap.
  absl::Status Kill(int node);

 private:
  struct Node {
    int client_port = 0;
    int cluster_port = 0;
    int monitor_port = 0;
    ChildProcess process;
  };
  NatsTestCluster() = default;
  // One try at Start on freshly picked ports.
  absl::Status TryStart(int size);
  // Whether a node failed to bind one of its ports (it then exits).
  bool AnyNodeLostItsPort() const;
  absl::Status Spawn(int node);
  // Waits until every running server reports a JetStream meta leader.
  absl::Status WaitForMetaLeader(absl::Duration timeout);
  std::string Log(int node) const;

  std::string dir_;
  std::vector<Node> nodes_;
};

// A fixture that starts a 3-node cluster and connects to all of it for each
// test; skips, saying why, when nats-server is not installed.
class NatsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A connection that reconnects forever: to `urls` in that order, or to
  // every node in a random order.
  absl::StatusOr<std::unique_ptr<nats::NatsConnection>> Connect(
      std::vector<std::string> urls = {}) const;

  std::unique_ptr<NatsTestCluster> cluster_;
  std::unique_ptr<nats::NatsConnection> conn_;
};

}  // namespace peakknn::testing
