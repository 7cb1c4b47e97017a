// peakknn: command-line client for peakknn-server.
//
//   peakknn [flags] COMMAND [ARGS]
//   commands: create drop list describe insert search plan stats demo
//
// --server (or PEAKKNN_SERVER) picks the server; `plan` needs none.
// --token (or PEAKKNN_TOKEN) and --tls* (client/security_flags.h) for a
// server with role tokens or TLS.
// Exit codes: 0 ok, 1 the operation failed, 2 bad usage or input.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/security_flags.h"

ABSL_FLAG(std::string, server, "",
          "peakknn-server address host:port (default: $PEAKKNN_SERVER or "
          "127.0.0.1:50051)");
ABSL_FLAG(double, timeout, 60, "Per-call deadline in seconds");
ABSL_FLAG(int64_t, dim, 0, "create: vector dimension; demo: default 64");
ABSL_FLAG(std::string, metric, "l2", "create: l2, ip or cosine");
ABSL_FLAG(std::string, dtype, "f32", "create: f32 or bf16");
ABSL_FLAG(double, recall, 0,
          "search: recall target (0 = collection default, 1 = exact); "
          "create/demo: the collection default; plan: required");
ABSL_FLAG(int64_t, k, 10, "search/plan/demo: neighbours per query");
ABSL_FLAG(std::string, format, "table", "search: table, json or ivecs");
ABSL_FLAG(std::string, output, "", "search: output file (default stdout)");
ABSL_FLAG(int64_t, start_id, 0, "insert: id of the file's first row");
ABSL_FLAG(int64_t, batch_rows, 1024, "insert/demo: rows per stream message");
ABSL_FLAG(bool, upsert, false, "insert: replace rows whose id exists");
ABSL_FLAG(bool, progress, true, "insert: draw a progress bar on stderr");
ABSL_FLAG(double, n, 0, "plan: rows in the collection (e.g. 1e6)");
ABSL_FLAG(int64_t, per_bin, 1, "plan: candidates kept per bin");
ABSL_FLAG(int64_t, shards, 1, "plan: shards the bins are spread over");
ABSL_FLAG(int64_t, rows, 20000, "demo: rows to generate");
ABSL_FLAG(int64_t, queries, 200, "demo: queries to run");
ABSL_FLAG(int64_t, clients, 8, "demo: concurrent client threads");
ABSL_FLAG(std::string, collection, "demo", "demo: collection name");

namespace peakknn::client {
namespace {

using Command = absl::Status (*)(const CliContext&);

struct NamedCommand {
  const char* name;
  Command run;
  const char* help;
};

constexpr NamedCommand kCommands[] = {
    {"create", CmdCreate,
     "create NAME --dim D [--metric] [--dtype] [--recall]"},
    {"drop", CmdDrop, "drop NAME"},
    {"list", CmdList, "list"},
    {"describe", CmdDescribe, "describe NAME"},
    {"insert", CmdInsert, "insert NAME FILE (.fvecs .bvecs .npy .csv)"},
    {"search", CmdSearch, "search NAME FILE|- [-k] [--recall] [--format]"},
    {"plan", CmdPlan, "plan -n ROWS -k K --recall R (no server needed)"},
    {"stats", CmdStats, "stats"},
    {"demo", CmdDemo, "demo [--rows] [--dim] [--queries] [--clients]"},
};

std::string Usage() {
  std::string usage =
      "peakknn [flags] COMMAND [ARGS]  (flags may follow the command)\n";
  for (const NamedCommand& c : kCommands) {
    absl::StrAppend(&usage, "  peakknn ", c.help, "\n");
  }
  return usage;
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(Usage());
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    std::fprintf(stderr, "%s", Usage().c_str());
    return 2;
  }
  const std::string command = positional[1];
  CliContext ctx;
  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    const char* env = std::getenv("PEAKKNN_SERVER");
    server = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  }
  ctx.client.target = server;
  if (absl::Status s = ApplySecurityFlags(&ctx.client); !s.ok()) {
    std::fprintf(stderr, "peakknn: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  ctx.client.call_timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout));
  ctx.args.assign(positional.begin() + 2, positional.end());
  ctx.dim = absl::GetFlag(FLAGS_dim);
  ctx.metric = absl::GetFlag(FLAGS_metric);
  ctx.dtype = absl::GetFlag(FLAGS_dtype);
  ctx.recall = absl::GetFlag(FLAGS_recall);
  ctx.k = absl::GetFlag(FLAGS_k);
  ctx.format = absl::GetFlag(FLAGS_format);
  ctx.output = absl::GetFlag(FLAGS_output);
  ctx.start_id = absl::GetFlag(FLAGS_start_id);
  ctx.batch_rows = absl::GetFlag(FLAGS_batch_rows);
  ctx.upsert = absl::GetFlag(FLAGS_upsert);
  ctx.progress = absl::GetFlag(FLAGS_progress);
  ctx.n = absl::GetFlag(FLAGS_n);
  ctx.per_bin = absl::GetFlag(FLAGS_per_bin);
  ctx.shards = absl::GetFlag(FLAGS_shards);
  ctx.rows = absl::GetFlag(FLAGS_rows);
  ctx.queries = absl::GetFlag(FLAGS_queries);
  ctx.clients = absl::GetFlag(FLAGS_clients);
  ctx.collection = absl::GetFlag(FLAGS_collection);

  for (const NamedCommand& c : kCommands) {
    if (command != c.name) continue;
    const absl::Status status = c.run(ctx);
    if (status.ok()) return 0;
    std::fprintf(stderr, "peakknn %s: %s: %s\n", c.name,
                 absl::StatusCodeToString(status.code()).c_str(),
                 std::string(status.message()).c_str());
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::fprintf(stderr, "peakknn: unknown command \"%s\"\n%s", command.c_str(),
               Usage().c_str());
  return 2;
}

}  // namespace
}  // namespace peakknn::client

int main(int argc, char** argv) { return peakknn::client::Run(argc, argv); }
