// peakknn-server: serves peakknn.v1.VectorSearch over gRPC, health and
// reflection beside it, Prometheus metrics on their own port.
//
// Lifecycle: listen (health NOT_SERVING, RPCs UNAVAILABLE) -> recover the
// collections in --data_dir (checkpoint + WAL replay) -> SERVING -> on
// SIGTERM or SIGINT: NOT_SERVING, stop accepting, let in-flight calls finish
// (up to --drain_seconds), run the queued searches, checkpoint every
// collection (CollectionManager::Close), exit 0. A failed recovery or final
// checkpoint exits 1.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/absl_view.h"
#include "engine/collection_manager.h"
#include "engine/thread_pool.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/service.h"

namespace peakknn::server {
namespace {

constexpr const char* kServiceName = "peakknn.v1.VectorSearch";

void Log(const std::string& line) {
  const std::string now = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                           absl::UTCTimeZone());
  std::fprintf(stderr, "%s peakknn-server: %s\n", now.c_str(), line.c_str());
  std::fflush(stderr);
}

// Chooses the backend. Only the CPU backend is wired into the server: the
// CUDA backend (engine/cuda_backend.h, used by peakknn-bench) links cuBLAS,
// and with libcublas/libcublasLt loaded into this process prometheus-cpp's
// civetweb fails to start the /metrics listener ("null context when
// constructing CivetServer"; reproduced with LD_PRELOAD of either library).
// Loading the CUDA backend lazily (dlopen after /metrics is up) is the next
// step.
absl::StatusOr<std::string> ResolveBackend(Backend backend) {
  switch (backend) {
    case Backend::kCpu:
      return std::string("cpu");
    case Backend::kAuto:
      Log("backend auto: using cpu (the server does not load the CUDA "
          "backend yet; see server/main.cc)");
      return std::string("cpu");
    case Backend::kCuda:
      break;
  }
  return absl::UnimplementedError(
      "--backend=cuda: CUDA backend not built/available in this server yet "
      "(loading cuBLAS breaks the metrics listener; lazy loading is not "
      "implemented); use --backend=cpu or auto");
}

// Written to a temporary name and renamed, so readers never see half.
absl::Status WritePortFile(const std::string& path, int port,
                           int metrics_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n" << metrics_port << "\n";
    if (!out.good()) {
      return absl::InternalError(
          absl::StrCat("--port_file: cannot write ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("--port_file: cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  // Block the stop signals in every thread (threads inherit the mask) so
  // that only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<ServerConfig> config = LoadConfig(argc, argv);
  if (!config.ok()) {
    Log(std::string(config.status().message()));
    return 2;
  }
  absl::StatusOr<std::string> backend = ResolveBackend(config->backend);
  if (!backend.ok()) {
    Log(std::string(backend.status().message()));
    return 2;
  }

  Metrics metrics;
  int metrics_port = 0;
  if (!config->metrics_listen.empty()) {
    absl::StatusOr<int> port = metrics.Serve(config->metrics_listen);
    if (!port.ok()) {
      Log(std::string(port.status().message()));
      return 1;
    }
    metrics_port = *port;
  }

  std::unique_ptr<ThreadPool> pool;
  if (config->threads > 0) pool = std::make_unique<ThreadPool>(config->threads);

  ManagerOptions options;
  options.data_dir = config->data_dir;
  options.pool = pool.get();
  options.block_rows = config->block_rows;
  options.default_durability = config->durability;
  options.truncate_corrupt_wal = config->truncate_corrupt_wal;
  options.log = [](std::string_view line) { Log(std::string(line)); };
  options.on_wal_fsync = [&metrics](absl::Duration d) {
    metrics.ObserveWalFsync(absl::ToDoubleSeconds(d));
  };
  options.on_checkpoint = [&metrics](absl::Duration d) {
    metrics.ObserveCheckpoint(absl::ToDoubleSeconds(d));
  };
  // Answers UNAVAILABLE until Recover below; outlives the service.
  std::unique_ptr<CollectionManager> manager =
      CollectionManager::Create(options);

  VectorSearchService service(*config, *backend, manager.get(), &metrics);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  // Loopback by default: plaintext. TLS and tokens are a separate feature.
  builder.AddListeningPort(config->listen, grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config->max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config->max_message_bytes));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(absl::StrCat("--listen=", config->listen,
                     ": cannot listen (address in use or invalid)"));
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  health->SetServingStatus(kServiceName, false);
  Log(absl::StrCat("listening on ", config->listen, " (port ", port,
                   "), metrics on port ", metrics_port, ", backend ",
                   *backend));
  if (!config->port_file.empty()) {
    if (absl::Status s = WritePortFile(config->port_file, port, metrics_port);
        !s.ok()) {
      Log(std::string(s.message()));
      return 1;
    }
  }

  // Recovery while health says NOT_SERVING.
  Log(absl::StrCat("recovering collections in ", config->data_dir,
                   " (writes acknowledged with durability ",
                   AV(DurabilityName(config->durability)), ")"));
  const absl::Time recovery_start = absl::Now();
  if (absl::Status s = manager->Recover(); !s.ok()) {
    Log(absl::StrCat("cannot open collections in ", config->data_dir, ": ",
                     absl::StatusCodeToString(s.code()), ": ", s.message()));
    server->Shutdown();
    return 1;
  }
  service.PublishCollectionRows();
  Log(absl::StrCat("recovered ", manager->ListCollections().size(),
                   " collections in ",
                   absl::FormatDuration(absl::Now() - recovery_start)));
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
  Log("serving");

  int signal = 0;
  sigwait(&stop_signals, &signal);
  Log(absl::StrCat("received signal ", signal, ": draining (up to ",
                   config->drain_seconds, " s)"));
  health->SetServingStatus(false);
  health->SetServingStatus(kServiceName, false);
  // Stops accepting; waits for in-flight calls (whose searches the batchers
  // keep running) until the deadline, then cancels the rest.
  server->Shutdown(
      absl::ToChronoTime(absl::Now() + absl::Seconds(config->drain_seconds)));
  service.StopBatchers();
  // Drains the writes still queued and checkpoints every collection, so
  // the next start replays no log.
  if (absl::Status s = manager->Close(); !s.ok()) {
    Log(absl::StrCat("checkpoint at shutdown failed: ", s.message()));
    return 1;
  }
  Log("checkpoint written");
  server->Wait();
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace peakknn::server

int main(int argc, char** argv) { return peakknn::server::Run(argc, argv); }
