// Where probes ask whether the server serves: grpc.health.v1 on the main
// gRPC port and, with --health_listen, on a second port that is always
// plaintext and serves nothing else of peakknn's.
//
// Why a second port: Kubernetes' native gRPC probes (and most load-balancer
// health checks) cannot speak TLS or present a client certificate, so a
// server whose main port requires TLS or mTLS cannot be probed there. The
// health port carries no data and takes no token; what it tells (serving or
// not) is no secret. Server reflection, which gRPC installs on every server
// of the process, answers there too; it describes only the public API.
//
// Both ports report the same status, for "" and for the VectorSearch
// service: NOT_SERVING while collections are recovered and from SIGTERM on.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace peakknn::server {

class HealthEndpoints {
 public:
  // Reports NOT_SERVING on `main`'s health service (which must be enabled)
  // and, when `health_listen` is not empty, starts the health port there
  // (host:port; port 0 picks one), also NOT_SERVING. `main` must outlive
  // this object.
  static absl::StatusOr<std::unique_ptr<HealthEndpoints>> Start(
      grpc::Server* main, const std::string& health_listen);
  // Stops the health port, if any.
  ~HealthEndpoints();

  // The health port, or 0 without --health_listen.
  int port() const { return port_; }

  // SERVING or NOT_SERVING on every endpoint, for "" and
  // peakknn.v1.VectorSearch.
  void SetServing(bool serving);

 private:
  explicit HealthEndpoints(grpc::Server* main) : main_(main) {}

  grpc::Server* const main_;
  std::unique_ptr<grpc::Server> health_server_;  // null without the port
  int port_ = 0;
};

}  // namespace peakknn::server
