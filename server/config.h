// peakknn-server configuration: every setting is a command-line flag with a
// default, and each flag --foo_bar can also be set by the environment
// variable PEAKKNN_FOO_BAR (12-factor, for Kubernetes). A flag given on the
// command line wins over the environment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "store/durability.h"

namespace peakknn::server {

enum class Backend { kAuto, kCpu, kCuda };

// What the process is (issue 13): a standalone server, a replica of one
// shard of every collection of a cluster (router/shard_replica.h), or the
// cluster's router (router/router_core.h).
enum class ServerRole { kStandalone, kShard, kRouter };

struct ServerConfig {
  ServerRole role = ServerRole::kStandalone;
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 = ephemeral
  std::string metrics_listen = "127.0.0.1:9464";  // "" disables /metrics
  // Plaintext grpc.health.v1 only, for probes that cannot speak TLS
  // (server/health_endpoints.h); "" = none.
  std::string health_listen;
  std::string data_dir = "./peakknn-data";
  // How every write is acknowledged: kFsync (after its log record is
  // fsynced) or kNone (after it reaches the OS; for bulk loads).
  Durability durability = Durability::kFsync;
  // Recovery: cut the log at a corrupt record (loudly) instead of refusing
  // to start with DATA_LOSS.
  bool truncate_corrupt_wal = false;
  Backend backend = Backend::kAuto;
  // The CUDA backend plugin for --backend=cuda|auto; "" looks beside the
  // executable (engine/cuda/plugin_loader.h).
  std::string cuda_plugin;
  // CUDA device ordinal for the CUDA backend.
  int cuda_device = 0;
  // When set, the server writes its chosen gRPC port there once listening
  // (for --listen ...:0), then the metrics port and the health port (0:
  // none) on lines 2 and 3.
  std::string port_file;

  // Dynamic batcher (per collection).
  int64_t max_batch = 256;      // queries per engine batch
  int64_t max_delay_us = 1000;  // longest the oldest query waits for company
  int64_t max_queue = 8192;     // queries waiting per collection

  // Most collections; creates beyond get RESOURCE_EXHAUSTED. Must fit the
  // open-file limit (server/fd_limit.h), checked at start-up.
  int64_t max_collections = 1000;

  // Hard request limits.
  int64_t max_message_bytes = 64 << 20;
  int64_t max_dim = 4096;
  int64_t max_k = 1024;
  int64_t max_queries_per_request = 4096;
  int64_t max_rows_per_write = 1 << 20;

  // Engine.
  int64_t block_rows = 65536;
  int threads = 0;  // 0: one per hardware thread

  // Connections and streams. A connection carries at most
  // max_streams_per_connection calls at once (HTTP/2 SETTINGS; more wait at
  // the client) and is closed after connection_idle_s without a call; at
  // most max_insert_streams InsertStreams are open server-wide, and one
  // with nothing in flight that received nothing for insert_stream_idle_s
  // is closed (server/insert_stream_registry.h). 0 s: no timeout.
  int64_t max_insert_streams = 256;
  // Bytes of requests all calls together may hold at once
  // (server/inflight_budget.h); beyond: RESOURCE_EXHAUSTED.
  int64_t max_inflight_bytes = int64_t{1} << 30;
  double insert_stream_idle_s = 300;
  int64_t max_streams_per_connection = 1024;
  double connection_idle_s = 3600;

  // Transport security (server/tls_credentials.h): TLS on the gRPC port
  // when cert and key are set (both or neither); mutual TLS (client
  // certificates required, verified against this CA bundle) when
  // tls_client_ca_file is set too. Plaintext otherwise.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // How often the certificate files and the tokens file are checked for
  // changes and reloaded (s).
  int64_t tls_reload_s = 60;
  // Role tokens (server/auth_tokens.h); "" serves every caller.
  std::string auth_tokens_file;

  // Cluster mode (--role=shard). The NATS servers ("nats://host:port",
  // comma-separated on the command line), the shard this replica holds,
  // its name (unique per shard, [A-Za-z0-9_-]), the copies of the metadata
  // buckets in NATS (must match what the cluster was created with), and the
  // gRPC address it announces to routers ("": --listen with the port
  // chosen).
  std::vector<std::string> nats_urls;
  int shard = 0;
  int shards = 1;  // --role=router: of each collection it creates
  std::string replica_name;
  int nats_replicas = 3;
  std::string advertise_address;

  // Seconds SIGTERM waits for in-flight requests before cancelling them.
  double drain_seconds = 30;

  // --check_config: print EffectiveConfig() and exit 0 instead of serving
  // (deploy/ checks every manifest's flags and PEAKKNN_* variables this way).
  // Not a setting, so not read from the environment.
  bool check_config = false;
};

// Applies PEAKKNN_* environment variables to the flags, then parses argv
// (which overrides them), then validates. Exits with usage on --help.
absl::StatusOr<ServerConfig> LoadConfig(int argc, char** argv);

// Validates ranges; errors name the flag, the value and the limit.
absl::Status ValidateConfig(const ServerConfig& config);

// Every setting as "name=value" lines, one per flag that PEAKKNN_<NAME> can
// also set, with the values in force after LoadConfig (environment, then
// argv, then defaults).
std::string EffectiveConfig();

}  // namespace peakknn::server
