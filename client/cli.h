// The `peakknn` command-line tool: subcommands share this context.
// Each command returns a Status; cli_main.cc prints errors and maps them to
// exit codes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"

namespace peakknn::client {

struct CliContext {
  ClientOptions client;           // --server, --timeout, --token, --tls*
  std::vector<std::string> args;  // positional arguments after the command
  // Collection options (create, demo).
  int64_t dim = 0;
  std::string metric = "l2";
  std::string dtype = "f32";
  double recall = 0;  // 0: collection default (search); required for plan
  // Search.
  int64_t k = 10;
  std::string format = "table";
  std::string output;  // "" = stdout (required for ivecs)
  // Insert.
  int64_t start_id = 0;
  int64_t batch_rows = 1024;
  bool upsert = false;
  bool progress = true;
  // Plan.
  double n = 0;
  int64_t per_bin = 1;
  int64_t shards = 1;
  // Demo.
  int64_t rows = 20000;
  int64_t queries = 200;
  int64_t clients = 8;
  std::string collection = "demo";
};

// Needs exactly `count` positional arguments, named in `usage`.
absl::Status RequireArgs(const CliContext& ctx, size_t count,
                         const char* usage);
absl::StatusOr<std::unique_ptr<Client>> ConnectFrom(const CliContext& ctx);

absl::Status CmdCreate(const CliContext& ctx);
absl::Status CmdDrop(const CliContext& ctx);
absl::Status CmdList(const CliContext& ctx);
absl::Status CmdDescribe(const CliContext& ctx);
absl::Status CmdStats(const CliContext& ctx);
absl::Status CmdPlan(const CliContext& ctx);
absl::Status CmdInsert(const CliContext& ctx);
absl::Status CmdSearch(const CliContext& ctx);
absl::Status CmdDemo(const CliContext& ctx);

}  // namespace peakknn::client
