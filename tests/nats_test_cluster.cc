#include "tests/nats_test_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace peakknn::testing {

std::string NatsTestCluster::ServerBinary() {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs =
      absl::StrSplit(path != nullptr ? path : "", ':', absl::SkipEmpty());
  dirs.push_back("/usr/sbin");
  for (const std::string& dir : dirs) {
    const std::string candidate = dir + "/nats-server";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<NatsTestCluster>> NatsTestCluster::Start(
    int size) {
  if (ServerBinary().empty()) {
    return absl::FailedPreconditionError("nats-server is not installed");
  }
  // FreePort's ports are free only "a moment ago": another test running in
  // parallel can take one before nats-server binds it, and that node then
  // exits ("address already in use"). Such a start is retried on fresh
  // ports; any other failure is returned as it is.
  constexpr int kAttempts = 4;
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    std::unique_ptr<NatsTestCluster> cluster(new NatsTestCluster());
    last = cluster->TryStart(size);
    if (last.ok()) return cluster;
    if (!cluster->AnyNodeLostItsPort()) return last;
  }
  return last;
}

absl::Status NatsTestCluster::TryStart(int size) {
  dir_ = MakeTempDir("peakknn-nats");
  if (dir_.empty()) {
    return absl::InternalError("cannot make a temporary directory");
  }
  nodes_.resize(size);
  for (Node& node : nodes_) {
    for (int* port :
         {&node.client_port, &node.cluster_port, &node.monitor_port}) {
      absl::StatusOr<int> free = FreePort();
      if (!free.ok()) return free.status();
      *port = *free;
    }
  }
  for (int i = 0; i < size; ++i) {
    if (absl::Status s = Spawn(i); !s.ok()) return s;
  }
  return WaitForMetaLeader(absl::Seconds(30));
}

bool NatsTestCluster::AnyNodeLostItsPort() const {
  for (int i = 0; i < size(); ++i) {
    if (absl::StrContains(Log(i), "address already in use")) return true;
  }
  return false;
}

NatsTestCluster::~NatsTestCluster() {
  nodes_.clear();  // kills and reaps every server before their files go
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

absl::Status NatsTestCluster::Spawn(int node) {
  std::vector<std::string> routes;
  for (const Node& n : nodes_) {
    routes.push_back(absl::StrCat("nats://127.0.0.1:", n.cluster_port));
  }
  const Node& n = nodes_[node];
  const std::vector<std::string> argv = {
      ServerBinary(),   "--jetstream",
      "--store_dir",    absl::StrCat(dir_, "/n", node),
      "--server_name",  absl::StrCat("n", node),
      "--addr",         "127.0.0.1",
      "--port",         absl::StrCat(n.client_port),
      "--http_port",    absl::StrCat(n.monitor_port),
      "--cluster_name", "peakknn-test",
      "--cluster",      absl::StrCat("nats://127.0.0.1:", n.cluster_port),
      "--routes",       absl::StrJoin(routes, ","),
  };
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Spawn(argv, {}, absl::StrCat(dir_, "/n", node, ".log"));
  if (!child.ok()) return child.status();
  nodes_[node].process = std::move(*child);
  return absl::OkStatus();
}

std::string NatsTestCluster::ClientUrl(int node) const {
  return absl::StrCat("nats://127.0.0.1:", nodes_[node].client_port);
}

std::vector<std::string> NatsTestCluster::ClientUrls() const {
  std::vector<std::string> urls;
  for (int i = 0; i < size(); ++i) urls.push_back(ClientUrl(i));
  return urls;
}

absl::StatusOr<int> NatsTestCluster::NodeNamed(
    const std::string& server_name) const {
  for (int i = 0; i < size(); ++i) {
    if (server_name == absl::StrCat("n", i)) return i;
  }
  return absl::NotFoundError(
      absl::StrCat("no node named \"", server_name, "\""));
}

absl::Status NatsTestCluster::Kill(int node) {
  absl::StatusOr<int> code = nodes_[node].process.Stop(SIGKILL, 10);
  return code.ok() ? absl::OkStatus() : code.status();
}

absl::Status NatsTestCluster::WaitForMetaLeader(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    bool all = true;
    for (int i = 0; i < size() && all; ++i) {
      if (nodes_[i].process.pid() <= 0) continue;  // killed
      absl::StatusOr<std::string> jsz = HttpGet(nodes_[i].monitor_port, "/jsz");
      // "meta_cluster": {"name": ..., "leader": "n1", ...}; no "leader"
      // while there is none.
      all = jsz.ok() && absl::StrContains(*jsz, "\"leader\": \"n");
      last = jsz.ok() ? *jsz : std::string(jsz.status().message());
    }
    if (all) return absl::OkStatus();
    if (AnyNodeLostItsPort()) {
      return absl::UnavailableError("a nats-server could not bind its port");
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no JetStream meta leader within ", absl::FormatDuration(timeout),
      "; last /jsz: ", last, "\nlog of n0:\n", Log(0)));
}

std::string NatsTestCluster::Log(int node) const {
  std::ifstream in(absl::StrCat(dir_, "/n", node, ".log"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void NatsClusterTest::SetUp() {
  if (NatsTestCluster::ServerBinary().empty()) {
    GTEST_SKIP() << "nats-server is not installed (Debian package "
                    "nats-server, see scripts/install-deps.sh): skipping";
  }
  absl::StatusOr<std::unique_ptr<NatsTestCluster>> cluster =
      NatsTestCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  cluster_ = *std::move(cluster);
  absl::StatusOr<std::unique_ptr<nats::NatsConnection>> conn = Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  conn_ = *std::move(conn);
}

void NatsClusterTest::TearDown() {
  conn_.reset();  // before the servers go, so it does not reconnect
  cluster_.reset();
}

absl::StatusOr<std::unique_ptr<nats::NatsConnection>> NatsClusterTest::Connect(
    std::vector<std::string> urls) const {
  const bool in_order = !urls.empty();
  return nats::NatsConnection::Connect(
      {.servers = in_order ? std::move(urls) : cluster_->ClientUrls(),
       .randomize = !in_order,
       .name = "peakknn-test"});
}

}  // namespace peakknn::testing
