#include "server/config.h"

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "engine/schema.h"

ABSL_FLAG(std::string, role, "standalone",
          "standalone (collections in --data_dir, read and written here) or "
          "shard (a replica of shard --shard of every collection of the "
          "cluster at --nats_urls: applies the shard's write streams, serves "
          "searches; writes go through the router) or router (serves the "
          "cluster at --nats_urls through the same API: writes to the shards' "
          "streams, searches fanned out to one replica of every shard)");
ABSL_FLAG(std::string, nats_urls, "",
          "--role=shard|router: the NATS servers, comma-separated "
          "(nats://host:port,...)");
ABSL_FLAG(int32_t, shard, 0, "--role=shard: the shard this replica holds");
ABSL_FLAG(int32_t, shards, 1,
          "--role=router: shards of each collection this router creates "
          "(1..1024; fixed for the collection's life)");
ABSL_FLAG(std::string, replica_name, "",
          "--role=shard: this replica's name, unique per shard, "
          "[A-Za-z0-9_-] (its member record and NATS consumers)");
ABSL_FLAG(int32_t, nats_replicas, 3,
          "--role=shard|router: copies of the cluster's metadata buckets in "
          "NATS, as the cluster was created with, and (router) of each new "
          "shard stream (1..5)");
ABSL_FLAG(std::string, advertise_address, "",
          "--role=shard: the host:port routers reach this replica's gRPC "
          "service at; empty: --listen with the port chosen");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address host:port (port 0 picks a free port)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus /metrics address host:port; empty disables it");
ABSL_FLAG(std::string, health_listen, "",
          "If set, a second, plaintext listen address host:port serving only "
          "grpc.health.v1, for probes that cannot speak TLS (Kubernetes gRPC "
          "probes); empty: health on --listen only");
ABSL_FLAG(std::string, data_dir, "./peakknn-data",
          "Directory for collections (WAL and checkpoints)");
ABSL_FLAG(std::string, durability, "fsync",
          "When writes are acknowledged: fsync (after the log is fsynced; "
          "survives power loss) or none (after the OS has the log record; "
          "survives a crash, not a power loss; for bulk loads)");
ABSL_FLAG(bool, truncate_corrupt_wal, false,
          "Recovery: cut a collection's log at a corrupt record instead of "
          "refusing to start (loses the records from there on)");
ABSL_FLAG(std::string, backend, "auto",
          "Search backend: auto (CUDA when its plugin loads and a device is "
          "usable, else the CPU), cpu or cuda (fails to start without it)");
ABSL_FLAG(std::string, cuda_plugin, "",
          "Path of libpeakknn_cuda_plugin.so for --backend=cuda|auto; empty "
          "looks in the executable's directory, then ../lib beside it");
ABSL_FLAG(int32_t, cuda_device, 0,
          "CUDA device ordinal the CUDA backend uses (see nvidia-smi)");
ABSL_FLAG(std::string, port_file, "",
          "If set, write the chosen gRPC port (line 1), metrics port "
          "(line 2) and health port (line 3, 0 without --health_listen) here "
          "once listening");
ABSL_FLAG(int64_t, max_batch, 256, "Most queries per engine batch");
ABSL_FLAG(int64_t, max_delay_us, 1000,
          "Longest a queued query waits for others to batch with (us)");
ABSL_FLAG(int64_t, max_queue, 8192,
          "Most queries queued per collection; more get RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_collections, 1000,
          "Most collections; CreateCollection beyond it gets "
          "RESOURCE_EXHAUSTED. Start-up fails unless 3 open files per "
          "collection + 128 fit the open-file limit (raised to the hard "
          "limit first). Collections already in --data_dir are all served, "
          "even beyond it");
ABSL_FLAG(int64_t, max_message_bytes, 64 << 20,
          "Largest gRPC message accepted or sent (bytes)");
ABSL_FLAG(int64_t, max_dim, 4096, "Largest collection dimension");
ABSL_FLAG(int64_t, max_k, 1024, "Largest k per search");
ABSL_FLAG(int64_t, max_queries_per_request, 4096,
          "Most query vectors in one Search request");
ABSL_FLAG(int64_t, max_rows_per_write, 1 << 20,
          "Most rows in one insert batch, Upsert, Delete or Get");
ABSL_FLAG(
    int64_t, block_rows, 65536,
    "Largest storage block (rows); smaller blocks hold small collections");
ABSL_FLAG(int32_t, threads, 0, "Engine threads; 0 = one per hardware thread");
ABSL_FLAG(double, drain_seconds, 30,
          "On SIGTERM, how long in-flight requests may take to finish (s)");
ABSL_FLAG(int64_t, max_insert_streams, 256,
          "Most InsertStream calls open at once; more get RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_inflight_bytes, int64_t{1} << 30,
          "Bytes of requests all calls together may hold at once (unary "
          "requests and pipelined InsertStream batches, counted twice: wire "
          "and parsed); beyond: RESOURCE_EXHAUSTED. Also bounds gRPC's "
          "transport buffers (its resource quota)");
ABSL_FLAG(double, insert_stream_idle_s, 300,
          "Close an InsertStream with every batch acknowledged that received "
          "nothing for this long, with UNAVAILABLE (s); 0 = never");
ABSL_FLAG(int64_t, max_streams_per_connection, 1024,
          "Most concurrent calls on one client connection (HTTP/2 "
          "MAX_CONCURRENT_STREAMS); further calls wait at the client");
ABSL_FLAG(double, connection_idle_s, 3600,
          "Close a client connection that has had no call for this long (s); "
          "0 = never");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain of the gRPC port; with --tls_key_file turns "
          "on TLS (both or neither). Re-read when it changes");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM private key of --tls_cert_file. Re-read when it changes");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle: turns on mutual TLS (every client must present a "
          "certificate signed by it). Needs --tls_cert_file. Re-read when it "
          "changes");
ABSL_FLAG(int64_t, tls_reload_s, 60,
          "How often the TLS files and --auth_tokens_file are checked for "
          "changes (s)");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "Role tokens, one '<role> <token>' per line (roles read, write, "
          "admin); callers must send 'authorization: Bearer <token>'. Empty: "
          "no authentication. Re-read when it changes");
ABSL_FLAG(bool, check_config, false,
          "Parse the flags and PEAKKNN_* variables, validate them, print the "
          "effective settings (name=value) and exit 0 without serving; bad "
          "settings exit non-zero naming the problem. Does not probe the "
          "backend, the data directory or the addresses");

namespace peakknn::server {
namespace {

// Every flag above; each is also read from PEAKKNN_<NAME in upper case>.
constexpr const char* kFlagNames[] = {
    "role",
    "nats_urls",
    "shard",
    "shards",
    "replica_name",
    "nats_replicas",
    "advertise_address",
    "listen",
    "metrics_listen",
    "health_listen",
    "data_dir",
    "durability",
    "truncate_corrupt_wal",
    "backend",
    "cuda_plugin",
    "cuda_device",
    "port_file",
    "max_batch",
    "max_delay_us",
    "max_queue",
    "max_collections",
    "max_message_bytes",
    "max_dim",
    "max_k",
    "max_queries_per_request",
    "max_rows_per_write",
    "block_rows",
    "threads",
    "max_insert_streams",
    "max_inflight_bytes",
    "insert_stream_idle_s",
    "max_streams_per_connection",
    "connection_idle_s",
    "drain_seconds",
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "tls_reload_s",
    "auth_tokens_file",
};

absl::Status ApplyEnvironment() {
  for (const char* name : kFlagNames) {
    const std::string var =
        absl::StrCat("PEAKKNN_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable ", var, "=\"", value, "\": ", error));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Backend> ParseBackend(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "auto") return Backend::kAuto;
  if (lower == "cpu") return Backend::kCpu;
  if (lower == "cuda") return Backend::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("--backend=\"", text, "\": must be one of auto, cpu, cuda"));
}

absl::StatusOr<ServerRole> ParseRole(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "standalone") return ServerRole::kStandalone;
  if (lower == "shard") return ServerRole::kShard;
  if (lower == "router") return ServerRole::kRouter;
  return absl::InvalidArgumentError(absl::StrCat(
      "--role=\"", text, "\": must be standalone, shard or router"));
}

absl::StatusOr<Durability> ParseDurability(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "fsync") return Durability::kFsync;
  if (lower == "none") return Durability::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("--durability=\"", text, "\": must be fsync or none"));
}

absl::Status CheckRange(const char* flag, int64_t value, int64_t lo,
                        int64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", value, ": must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

// TLS needs a certificate and its key; mutual TLS is TLS plus a client CA.
absl::Status ValidateTls(const ServerConfig& c) {
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_cert_file and --tls_key_file: set both or neither (only --",
        c.tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file",
        " is set)"));
  }
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca_file: mutual TLS needs TLS; set --tls_cert_file and "
        "--tls_key_file too");
  }
  return absl::OkStatus();
}

// --role=shard needs a cluster to join and a name in it (whose spelling,
// like the shard's upper bound, ShardReplica::Start checks).
absl::Status ValidateShardRole(const ServerConfig& c) {
  if (c.role == ServerRole::kRouter) {
    if (c.nats_urls.empty()) {
      return absl::InvalidArgumentError(
          "--role=router: --nats_urls must name at least one NATS server");
    }
    PEAKKNN_RETURN_IF_ERROR(CheckRange("shards", c.shards, 1, 1024));
    return CheckRange("nats_replicas", c.nats_replicas, 1, 5);
  }
  if (c.role != ServerRole::kShard) return absl::OkStatus();
  if (c.nats_urls.empty()) {
    return absl::InvalidArgumentError(
        "--role=shard: --nats_urls must name at least one NATS server");
  }
  if (c.replica_name.empty()) {
    return absl::InvalidArgumentError(
        "--role=shard: --replica_name must be set (unique per shard)");
  }
  if (c.shard < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shard=", c.shard, ": must be >= 0"));
  }
  return CheckRange("nats_replicas", c.nats_replicas, 1, 5);
}

}  // namespace

absl::Status ValidateConfig(const ServerConfig& c) {
  if (c.data_dir.empty()) {
    return absl::InvalidArgumentError("--data_dir: must not be empty");
  }
  if (c.listen.empty()) {
    return absl::InvalidArgumentError("--listen: must not be empty");
  }
  for (const absl::Status& s : {
           CheckRange("max_batch", c.max_batch, 1, 1 << 20),
           CheckRange("max_delay_us", c.max_delay_us, 0, 10'000'000),
           CheckRange("max_queue", c.max_queue, 1, 1 << 24),
           CheckRange("max_collections", c.max_collections, 1, 1 << 20),
           CheckRange("max_message_bytes", c.max_message_bytes, 1 << 16,
                      (int64_t{1} << 31) - 1),
           CheckRange("max_dim", c.max_dim, 1, kMaxDim),
           CheckRange("max_k", c.max_k, 1, kMaxK),
           CheckRange("max_queries_per_request", c.max_queries_per_request, 1,
                      1 << 20),
           CheckRange("max_rows_per_write", c.max_rows_per_write, 1, 1 << 26),
           CheckRange("block_rows", c.block_rows, 16, 1 << 24),
           CheckRange("threads", c.threads, 0, 4096),
           CheckRange("max_insert_streams", c.max_insert_streams, 1, 1 << 20),
           CheckRange("max_inflight_bytes", c.max_inflight_bytes, 1 << 16,
                      int64_t{1} << 50),
           CheckRange("max_streams_per_connection",
                      c.max_streams_per_connection, 1, (int64_t{1} << 31) - 1),
           // gRPC's certificate watcher takes whole seconds as unsigned int.
           CheckRange("tls_reload_s", c.tls_reload_s, 1, 86400),
       }) {
    PEAKKNN_RETURN_IF_ERROR(s);
  }
  if (c.max_inflight_bytes < 2 * c.max_message_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_inflight_bytes=", c.max_inflight_bytes,
        ": must be >= 2 x --max_message_bytes=", c.max_message_bytes,
        " (a request of the largest size, wire and parsed, must fit)"));
  }
  if (c.max_queue < c.max_queries_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_queue=", c.max_queue, ": must be >= --max_queries_per_request=",
        c.max_queries_per_request, " (a full-size request must fit)"));
  }
  if (c.cuda_device < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cuda_device=", c.cuda_device, ": must be a device ordinal >= 0"));
  }
  if (c.block_rows % 16 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--block_rows=", c.block_rows, ": must be a multiple of 16"));
  }
  PEAKKNN_RETURN_IF_ERROR(ValidateTls(c));
  PEAKKNN_RETURN_IF_ERROR(ValidateShardRole(c));
  for (const auto& [flag, seconds] : {
           std::pair{"drain_seconds", c.drain_seconds},
           std::pair{"insert_stream_idle_s", c.insert_stream_idle_s},
           std::pair{"connection_idle_s", c.connection_idle_s},
       }) {
    // At most a year: the gRPC argument is in int milliseconds.
    if (!(seconds >= 0 && seconds <= 365 * 86400)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, "=", seconds, ": must be in [0, 31536000] seconds"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadConfig(int argc, char** argv) {
  // --help lists the flags of this file; Abseil's default lists those of a
  // file named like the program ("peakknn-server") and would find none.
  const auto is_server_flag = [](absl::string_view file) {
    return absl::EndsWith(file, "server/config.cc");
  };
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = is_server_flag;
  usage.contains_helpshort_flags = is_server_flag;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "peakknn k-nearest-neighbour search server. Every flag --foo can also "
      "be set by the environment variable PEAKKNN_FOO.");
  PEAKKNN_RETURN_IF_ERROR(ApplyEnvironment());
  // The server takes no positional arguments; one is a mistake (a manifest's
  // "serve", a flag missing its "--") that would otherwise be ignored.
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument \"", positional[1], "\": flags are --name=value"));
  }

  ServerConfig c;
  PEAKKNN_ASSIGN_OR_RETURN(c.role, ParseRole(absl::GetFlag(FLAGS_role)));
  c.nats_urls = absl::StrSplit(absl::GetFlag(FLAGS_nats_urls), ',',
                               absl::SkipWhitespace());
  c.shard = absl::GetFlag(FLAGS_shard);
  c.shards = absl::GetFlag(FLAGS_shards);
  c.replica_name = absl::GetFlag(FLAGS_replica_name);
  c.nats_replicas = absl::GetFlag(FLAGS_nats_replicas);
  c.advertise_address = absl::GetFlag(FLAGS_advertise_address);
  c.listen = absl::GetFlag(FLAGS_listen);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.health_listen = absl::GetFlag(FLAGS_health_listen);
  c.data_dir = absl::GetFlag(FLAGS_data_dir);
  PEAKKNN_ASSIGN_OR_RETURN(c.durability,
                           ParseDurability(absl::GetFlag(FLAGS_durability)));
  c.truncate_corrupt_wal = absl::GetFlag(FLAGS_truncate_corrupt_wal);
  PEAKKNN_ASSIGN_OR_RETURN(c.backend,
                           ParseBackend(absl::GetFlag(FLAGS_backend)));
  c.cuda_plugin = absl::GetFlag(FLAGS_cuda_plugin);
  c.cuda_device = absl::GetFlag(FLAGS_cuda_device);
  c.port_file = absl::GetFlag(FLAGS_port_file);
  c.max_batch = absl::GetFlag(FLAGS_max_batch);
  c.max_delay_us = absl::GetFlag(FLAGS_max_delay_us);
  c.max_queue = absl::GetFlag(FLAGS_max_queue);
  c.max_collections = absl::GetFlag(FLAGS_max_collections);
  c.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  c.max_dim = absl::GetFlag(FLAGS_max_dim);
  c.max_k = absl::GetFlag(FLAGS_max_k);
  c.max_queries_per_request = absl::GetFlag(FLAGS_max_queries_per_request);
  c.max_rows_per_write = absl::GetFlag(FLAGS_max_rows_per_write);
  c.block_rows = absl::GetFlag(FLAGS_block_rows);
  c.threads = absl::GetFlag(FLAGS_threads);
  c.max_insert_streams = absl::GetFlag(FLAGS_max_insert_streams);
  c.max_inflight_bytes = absl::GetFlag(FLAGS_max_inflight_bytes);
  c.insert_stream_idle_s = absl::GetFlag(FLAGS_insert_stream_idle_s);
  c.max_streams_per_connection =
      absl::GetFlag(FLAGS_max_streams_per_connection);
  c.connection_idle_s = absl::GetFlag(FLAGS_connection_idle_s);
  c.drain_seconds = absl::GetFlag(FLAGS_drain_seconds);
  c.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  c.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  c.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  c.tls_reload_s = absl::GetFlag(FLAGS_tls_reload_s);
  c.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  c.check_config = absl::GetFlag(FLAGS_check_config);
  PEAKKNN_RETURN_IF_ERROR(ValidateConfig(c));
  return c;
}

std::string EffectiveConfig() {
  std::string out;
  for (const char* name : kFlagNames) {
    absl::StrAppend(&out, name, "=",
                    absl::FindCommandLineFlag(name)->CurrentValue(), "\n");
  }
  return out;
}

}  // namespace peakknn::server
