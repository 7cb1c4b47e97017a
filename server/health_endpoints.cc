#include "server/health_endpoints.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"

namespace peakknn::server {
namespace {

constexpr const char* kServiceName = "peakknn.v1.VectorSearch";

void SetStatus(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(serving);
  health->SetServingStatus(kServiceName, serving);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HealthEndpoints>> HealthEndpoints::Start(
    grpc::Server* main, const std::string& health_listen) {
  std::unique_ptr<HealthEndpoints> endpoints(new HealthEndpoints(main));
  if (!health_listen.empty()) {
    // grpc::EnableDefaultHealthCheckService(true), called before the main
    // server was built, gives this server its own health service too.
    grpc::ServerBuilder builder;
    builder.AddListeningPort(health_listen, grpc::InsecureServerCredentials(),
                             &endpoints->port_);
    endpoints->health_server_ = builder.BuildAndStart();
    if (endpoints->health_server_ == nullptr || endpoints->port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("--health_listen=", health_listen,
                       ": cannot listen (address in use or invalid)"));
    }
  }
  endpoints->SetServing(false);
  return endpoints;
}

HealthEndpoints::~HealthEndpoints() {
  if (health_server_ != nullptr) health_server_->Shutdown();
}

void HealthEndpoints::SetServing(bool serving) {
  SetStatus(main_, serving);
  if (health_server_ != nullptr) SetStatus(health_server_.get(), serving);
}

}  // namespace peakknn::server
