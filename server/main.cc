// peakknn-server: serves peakknn.v1.VectorSearch over gRPC, health and
// reflection beside it (and on --health_listen: server/health_endpoints.h),
// Prometheus metrics on their own port.
//
// Lifecycle: listen (health NOT_SERVING, RPCs UNAVAILABLE) -> recover the
// collections in --data_dir (checkpoint + WAL replay) -> SERVING -> on
// SIGTERM or SIGINT: NOT_SERVING, stop accepting, let in-flight calls finish
// (up to --drain_seconds), run the queued searches, checkpoint every
// collection (CollectionManager::Close), exit 0. A failed recovery or final
// checkpoint exits 1, as does --backend=cuda where CUDA cannot run; bad flags
// exit 2, as does a --max_collections that does not fit the open-file limit
// (server/fd_limit.h; checked under --check_config too), and so do TLS files
// or a tokens file that cannot be used (server/tls_credentials.h,
// server/auth_tokens.h).
//
// --role=shard (router/shard_replica.h): after recovery the server joins the
// NATS cluster at --nats_urls and starts applying shard --shard of every
// collection in the cluster's metadata to collections in
// <data_dir>/collections (how far, in <data_dir>/applied:
// router/applied_position.h); its gRPC API serves
// searches and reads, and refuses writes and DDL (router/replica_core.h).
// A NATS cluster that cannot be reached, or whose metadata buckets cannot
// be opened, within 60 s of start-up exits 1; later outages are retried.
//
// --role=router (router/router_core.h): joins the NATS cluster at
// --nats_urls first (the same 60 s), then serves the cluster through the
// same API: no data directory, no store; SIGTERM drains in-flight calls
// and exits 0.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "base/thread_pool.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/plugin_loader.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "router/cluster_metadata.h"
#include "router/nats/connection.h"
#include "router/replica_core.h"
#include "router/router_core.h"
#include "router/shard_replica.h"
#include "server/authorizer.h"
#include "server/config.h"
#include "server/fd_limit.h"
#include "server/health_endpoints.h"
#include "server/listen_address.h"
#include "server/metrics.h"
#include "server/service.h"
#include "server/tls_credentials.h"
#include "store/collection_manager.h"

namespace peakknn::server {
namespace {

void Log(const std::string& line) {
  const std::string now = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                           absl::UTCTimeZone());
  std::fprintf(stderr, "%s peakknn-server: %s\n", now.c_str(), line.c_str());
  std::fflush(stderr);
}

// The search backend of every collection; `backend` is null for the CPU
// (each collection then scans with the CPU backend over the engine pool).
// Outlives the CollectionManager.
struct ChosenBackend {
  std::string name;  // "cpu" or "cuda": logs, GetStats, metrics
  std::unique_ptr<SearchBackend> backend;
};

// The CUDA backend from its plugin (never linked into this binary: see
// engine/cuda/plugin_loader.h for why cuBLAS breaks /metrics when linked),
// or why not: no plugin, plugin unloadable, or no usable device.
absl::StatusOr<std::unique_ptr<SearchBackend>> LoadCudaBackend(
    const std::string& plugin_path, int device) {
  PEAKKNN_ASSIGN_OR_RETURN(CudaPlugin plugin, CudaPlugin::Load(plugin_path));
  Log(absl::StrCat("loaded CUDA plugin ", plugin.path()));
  // Its message says what is missing ("CUDA is unusable: no CUDA-capable
  // device is detected", "... driver version is insufficient ...").
  PEAKKNN_RETURN_IF_ERROR(plugin.Available(device));
  if (absl::StatusOr<CudaDeviceInfo> info = plugin.Describe(device);
      info.ok()) {
    Log(absl::StrCat("CUDA device ", device, ": ", info->name,
                     ", compute capability ", info->compute_capability, ", ",
                     info->memory_bytes >> 20, " MiB"));
  }
  CudaBackendOptions options;
  options.device = device;
  return plugin.MakeBackend(options);
}

// --backend=cpu: the CPU. cuda: the CUDA backend, or an error naming why it
// cannot run. auto: CUDA when it can run, else the CPU with a log line
// saying why.
absl::StatusOr<ChosenBackend> ResolveBackend(const ServerConfig& config) {
  if (config.backend == Backend::kCpu) return ChosenBackend{"cpu", nullptr};
  absl::StatusOr<std::unique_ptr<SearchBackend>> cuda =
      LoadCudaBackend(config.cuda_plugin, config.cuda_device);
  if (cuda.ok()) {
    std::string name((*cuda)->name());
    return ChosenBackend{std::move(name), std::move(*cuda)};
  }
  if (config.backend == Backend::kCuda) {
    return absl::Status(cuda.status().code(),
                        absl::StrCat("--backend=cuda: cannot use CUDA: ",
                                     cuda.status().message()));
  }
  Log(absl::StrCat("backend auto: using the CPU backend: ",
                   cuda.status().message()));
  return ChosenBackend{"cpu", nullptr};
}

// Written to a temporary name and renamed, so readers never see half.
absl::Status WritePortFile(const std::string& path, int port, int metrics_port,
                           int health_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n" << metrics_port << "\n" << health_port << "\n";
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

// --role=shard: the replica and what it stands on, destroyed in reverse
// order (replica first), before the store closes.
struct ShardRole {
  std::unique_ptr<nats::NatsConnection> conn;
  std::unique_ptr<ClusterMetadata> metadata;
  std::unique_ptr<ShardReplica> replica;
};

// The gRPC address routers reach this replica at: --advertise_address, or
// --listen's host with the port chosen.
std::string AdvertisedAddress(const ServerConfig& config, int port) {
  if (!config.advertise_address.empty()) return config.advertise_address;
  const size_t colon = config.listen.rfind(':');
  return absl::StrCat(config.listen.substr(0, colon), ":", port);
}

// How long start-up keeps trying to reach NATS and open the metadata
// buckets (a NATS cluster starting beside the replica, or busy electing
// leaders) before it exits 1.
constexpr absl::Duration kJoinTimeout = absl::Seconds(60);

// One try at the connection (kept once made) and the metadata buckets.
absl::Status TryJoin(const ServerConfig& config, std::string_view name,
                     std::unique_ptr<nats::NatsConnection>& conn,
                     std::unique_ptr<ClusterMetadata>& metadata) {
  if (conn == nullptr) {
    PEAKKNN_ASSIGN_OR_RETURN(
        conn, nats::NatsConnection::Connect(
                  {.servers = config.nats_urls, .name = std::string(name)}));
  }
  PEAKKNN_ASSIGN_OR_RETURN(
      metadata,
      ClusterMetadata::Open(*conn, {.replicas = config.nats_replicas}));
  return absl::OkStatus();
}

// TryJoin until it works or kJoinTimeout has passed.
absl::Status Join(const ServerConfig& config, std::string_view name,
                  std::unique_ptr<nats::NatsConnection>& conn,
                  std::unique_ptr<ClusterMetadata>& metadata) {
  const absl::Time deadline = absl::Now() + kJoinTimeout;
  for (absl::Status joined = TryJoin(config, name, conn, metadata);
       !joined.ok(); joined = TryJoin(config, name, conn, metadata)) {
    if (absl::Now() >= deadline) return joined;
    Log(absl::StrCat(
        AV(name), ": cannot join the cluster yet (retrying for up to ",
        absl::FormatDuration(kJoinTimeout), "): ", joined.ToString()));
    absl::SleepFor(absl::Seconds(1));
  }
  return absl::OkStatus();
}

absl::StatusOr<ShardRole> StartShardRole(const ServerConfig& config,
                                         ServiceCore& local, int port) {
  ShardRole role;
  PEAKKNN_RETURN_IF_ERROR(Join(config,
                               absl::StrCat("peakknn shard ", config.shard,
                                            " replica ", config.replica_name),
                               role.conn, role.metadata));
  PEAKKNN_ASSIGN_OR_RETURN(
      role.replica,
      ShardReplica::Start(
          *role.conn, *role.metadata, local,
          {.shard = config.shard,
           .replica = config.replica_name,
           .address = AdvertisedAddress(config, port),
           .state_dir = absl::StrCat(config.data_dir, "/applied"),
           .log = [](std::string_view line) { Log(std::string(line)); }}));
  return role;
}

// --role=router: the core and what it stands on, destroyed in reverse
// order.
struct RouterRole {
  std::unique_ptr<nats::NatsConnection> conn;
  std::unique_ptr<ClusterMetadata> metadata;
  std::unique_ptr<RouterCore> core;
};

absl::StatusOr<RouterRole> StartRouterRole(const ServerConfig& config) {
  RouterRole role;
  PEAKKNN_RETURN_IF_ERROR(
      Join(config, "peakknn router", role.conn, role.metadata));
  RouterOptions options;
  options.shards = config.shards;
  options.streams.replicas = config.nats_replicas;
  options.view.log = [](std::string_view line) { Log(std::string(line)); };
  role.core = std::make_unique<RouterCore>(*role.conn, *role.metadata,
                                           std::move(options));
  return role;
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
  // Before anything opens files: the soft limit up to the hard one, then
  // the worst case of --max_collections checked against it.
  absl::StatusOr<FdLimit> fds = RaiseFdLimit();
  if (!fds.ok()) {
    Log(std::string(fds.status().message()));
    return 1;
  }
  if (!fds->raise_error.ok()) {
    Log(absl::StrCat("cannot raise the open-file limit: ",
                     fds->raise_error.message()));
  }
  if (absl::Status s = CheckFdBudget(config->max_collections, fds->soft);
      !s.ok()) {
    Log(std::string(s.message()));
    return 2;
  }
  if (config->check_config) {
    std::fputs(EffectiveConfig().c_str(), stdout);
    return 0;
  }
  Log(absl::StrCat("open-file limit ", fds->soft, " (was ", fds->soft_before,
                   ", hard ", fds->hard,
                   "); --max_collections=", config->max_collections,
                   " needs at most ", FdsNeeded(config->max_collections)));
  // The transport and the tokens, before anything starts: unusable files
  // are bad flags (exit 2).
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentialsFor(*config);
  if (!credentials.ok()) {
    Log(std::string(credentials.status().message()));
    return 2;
  }
  if (config->tls_cert_file.empty() && !IsLocalOnly(config->listen)) {
    Log(absl::StrCat(
        "WARNING: --listen=", config->listen,
        " is reachable from the network and TLS is off: requests, vectors "
        "and tokens cross it in plaintext. Set --tls_cert_file and "
        "--tls_key_file, or listen on loopback"));
  }
  std::unique_ptr<Authorizer> authorizer;
  if (!config->auth_tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<Authorizer>> opened = Authorizer::Open(
        config->auth_tokens_file, absl::Seconds(config->tls_reload_s),
        [](std::string_view line) { Log(std::string(line)); });
    if (!opened.ok()) {
      Log(std::string(opened.status().message()));
      return 2;
    }
    authorizer = *std::move(opened);
  }
  // Before /metrics starts, to fail fast; the order does not matter to
  // civetweb (the plugin's TLS is dynamic, engine/cuda/plugin_loader.h).
  absl::StatusOr<ChosenBackend> backend = ResolveBackend(*config);
  if (!backend.ok()) {
    Log(std::string(backend.status().message()));
    return 1;
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
  metrics.SetBackend(backend->name);

  std::unique_ptr<ThreadPool> pool;
  if (config->threads > 0) pool = std::make_unique<ThreadPool>(config->threads);

  const bool shard = config->role == ServerRole::kShard;
  const bool router = config->role == ServerRole::kRouter;
  std::optional<RouterRole> router_role;
  if (router) {
    absl::StatusOr<RouterRole> started = StartRouterRole(*config);
    if (!started.ok()) {
      Log(
          absl::StrCat("--role=router: cannot join the cluster at "
                       "--nats_urls: ",
                       started.status().ToString()));
      return 1;
    }
    router_role = *std::move(started);
    metrics.SetBackend("router");
  }
  ManagerOptions options;
  // A replica keeps its applied positions beside the store's directory,
  // not in it (where recovery would log them as strays).
  options.data_dir =
      shard ? absl::StrCat(config->data_dir, "/collections") : config->data_dir;
  options.pool = pool.get();
  options.backend = backend->backend.get();
  options.block_rows = config->block_rows;
  options.default_durability = config->durability;
  options.truncate_corrupt_wal = config->truncate_corrupt_wal;
  options.max_collections = config->max_collections;
  options.log = [](std::string_view line) { Log(std::string(line)); };
  options.on_wal_fsync = [&metrics](absl::Duration d) {
    metrics.ObserveWalFsync(absl::ToDoubleSeconds(d));
  };
  options.on_checkpoint = [&metrics](absl::Duration d) {
    metrics.ObserveCheckpoint(absl::ToDoubleSeconds(d));
  };
  // Answers UNAVAILABLE until Recover below; outlives the service. A
  // router has no store.
  std::unique_ptr<CollectionManager> manager =
      router ? nullptr : CollectionManager::Create(options);

  // A shard replica serves its store read-only: its collections change only
  // through its shard's write streams.
  std::optional<ReplicaCore> replica_core;
  if (shard) replica_core.emplace(manager.get());
  ServiceCore* core = router
                          ? static_cast<ServiceCore*>(router_role->core.get())
                      : shard ? static_cast<ServiceCore*>(&*replica_core)
                              : manager.get();
  VectorSearchService service(*config, core, &metrics, authorizer.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen, *credentials, &port);
  builder.RegisterService(&service);
  // gRPC's transport buffers (received bytes not yet read by a call,
  // flow-control windows that BDP probing grows) are not in the in-flight
  // budget; without a quota, clients that send and never read their acks
  // grew the server to 14x the budget. Under pressure gRPC shrinks its
  // windows, so senders slow down rather than the server growing. Never
  // below kMinTransportQuota: with a budget of a few MiB (tests), a quota
  // that small starved the transport itself and it dropped a stream whose
  // batch the budget would have refused with an ack (seen in CI).
  constexpr int64_t kMinTransportQuota = int64_t{8} << 20;
  grpc::ResourceQuota quota("peakknn-transport");
  quota.Resize(static_cast<size_t>(
      std::max(config->max_inflight_bytes, kMinTransportQuota)));
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config->max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config->max_message_bytes));
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONCURRENT_STREAMS,
      static_cast<int>(config->max_streams_per_connection));
  if (config->connection_idle_s > 0) {
    // gRPC's default is no idle limit; a connection with no call for this
    // long gets a GOAWAY, and the client reconnects when it next calls.
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_IDLE_MS,
        static_cast<int>(config->connection_idle_s * 1000));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(absl::StrCat("--listen=", config->listen,
                     ": cannot listen (address in use or invalid)"));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<HealthEndpoints>> health =
      HealthEndpoints::Start(server.get(), config->health_listen);
  if (!health.ok()) {
    Log(std::string(health.status().message()));
    server->Shutdown();
    return 1;
  }
  Log(absl::StrCat(
      "listening on ", config->listen, " (port ", port, ", ",
      TransportName(*config), ", ",
      authorizer != nullptr ? "role tokens" : "no authentication",
      "), metrics on port ", metrics_port,
      (*health)->port() > 0
          ? absl::StrCat(", plaintext health on port ", (*health)->port())
          : std::string(),
      ", backend ", router ? "router" : backend->name));
  if (!config->port_file.empty()) {
    if (absl::Status s = WritePortFile(config->port_file, port, metrics_port,
                                       (*health)->port());
        !s.ok()) {
      Log(std::string(s.message()));
      return 1;
    }
  }

  // Recovery while health says NOT_SERVING (a router has nothing to
  // recover).
  if (!router) {
    // A replica's store is one level down (made here: the store creates
    // only its own directory).
    Log(absl::StrCat("recovering collections in ", options.data_dir,
                     " (writes acknowledged with durability ",
                     AV(DurabilityName(config->durability)), ")"));
    const absl::Time recovery_start = absl::Now();
    absl::Status recovery =
        shard ? Env::Default()->CreateDir(config->data_dir) : absl::OkStatus();
    if (recovery.ok()) recovery = manager->Recover();
    if (!recovery.ok()) {
      Log(absl::StrCat("cannot open collections in ", options.data_dir, ": ",
                       absl::StatusCodeToString(recovery.code()), ": ",
                       recovery.message()));
      server->Shutdown();
      return 1;
    }
    service.PublishCollectionRows();
    const absl::StatusOr<std::vector<CollectionInfo>> recovered =
        manager->ListCollections();
    Log(absl::StrCat("recovered ", recovered.ok() ? recovered->size() : 0,
                     " collections in ",
                     absl::FormatDuration(absl::Now() - recovery_start)));
  }
  std::optional<ShardRole> shard_role;
  if (shard) {
    absl::StatusOr<ShardRole> started = StartShardRole(*config, *manager, port);
    if (!started.ok()) {
      Log(absl::StrCat("--role=shard: cannot join the cluster at --nats_urls: ",
                       started.status().ToString()));
      server->Shutdown();
      return 1;
    }
    shard_role = *std::move(started);
    // Reads at a stream position (min_applied_sequence) wait on it; reset
    // before the replica stops (below).
    replica_core->SetAppliedSequence(
        [replica = shard_role->replica.get()](const std::string& collection) {
          return replica->AppliedSequence(collection);
        });
    Log(absl::StrCat("shard ", config->shard, " replica ", config->replica_name,
                     " applying its write streams"));
  }
  (*health)->SetServing(true);
  Log("serving");

  int signal = 0;
  sigwait(&stop_signals, &signal);
  Log(absl::StrCat("received signal ", signal, ": draining (up to ",
                   config->drain_seconds, " s)"));
  (*health)->SetServing(false);
  // Stops accepting; waits for in-flight calls (whose searches the batchers
  // keep running) until the deadline, then cancels the rest.
  server->Shutdown(
      absl::ToChronoTime(absl::Now() + absl::Seconds(config->drain_seconds)));
  service.StopBatchers();
  // No more writes from the streams; the positions recorded stay valid.
  if (replica_core.has_value()) replica_core->SetAppliedSequence(nullptr);
  shard_role.reset();
  // Drains the writes still queued and checkpoints every collection, so
  // the next start replays no log.
  if (manager == nullptr) {
    server->Wait();
    Log("stopped");
    return 0;
  }
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
