// peakknn create / drop / list / describe / stats / plan.
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"
#include "engine/recall_calculator.h"
#include "engine/schema.h"

namespace peakknn::client {
namespace {

std::string MetricText(v1::Metric metric) {
  switch (metric) {
    case v1::METRIC_L2:
      return "l2";
    case v1::METRIC_INNER_PRODUCT:
      return "ip";
    case v1::METRIC_COSINE:
      return "cosine";
    default:
      return "?";
  }
}

void PrintInfoHeader() {
  std::printf("%-24s %6s %-7s %-5s %8s %12s %12s %14s\n", "name", "dim",
              "metric", "dtype", "recall", "live_rows", "rows", "memory_bytes");
}

void PrintInfoRow(const v1::CollectionInfo& info) {
  const v1::CollectionSchema& s = info.schema();
  std::printf("%-24s %6u %-7s %-5s %8.4f %12lld %12lld %14lld\n",
              s.name().c_str(), s.dim(), MetricText(s.metric()).c_str(),
              s.dtype() == v1::DTYPE_BF16 ? "bf16" : "f32",
              s.default_recall_target(),
              static_cast<long long>(info.live_rows()),
              static_cast<long long>(info.rows()),
              static_cast<long long>(info.memory_bytes()));
}

}  // namespace

absl::Status RequireArgs(const CliContext& ctx, size_t count,
                         const char* usage) {
  if (ctx.args.size() != count) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage: peakknn ", usage, " (got ", ctx.args.size(),
                     " arguments, need ", count, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Client>> ConnectFrom(const CliContext& ctx) {
  return Client::Connect(ctx.client);
}

absl::Status CmdCreate(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(
          ctx, 1,
          "create NAME --dim D [--metric l2|ip|cosine] [--dtype f32|bf16] "
          "[--recall R]");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Metric> metric = ParseMetric(ctx.metric);
  if (!metric.ok()) return metric.status();
  absl::StatusOr<DType> dtype = ParseDType(ctx.dtype);
  if (!dtype.ok()) return dtype.status();
  v1::CollectionSchema schema;
  schema.set_name(ctx.args[0]);
  schema.set_dim(static_cast<uint32_t>(std::max<int64_t>(ctx.dim, 0)));
  schema.set_metric(*metric == Metric::kL2 ? v1::METRIC_L2
                    : *metric == Metric::kInnerProduct
                        ? v1::METRIC_INNER_PRODUCT
                        : v1::METRIC_COSINE);
  schema.set_dtype(*dtype == DType::kBf16 ? v1::DTYPE_BF16 : v1::DTYPE_F32);
  schema.set_default_recall_target(ctx.recall);
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectFrom(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::CollectionInfo> info = (*client)->CreateCollection(schema);
  if (!info.ok()) return info.status();
  std::printf("created collection %s\n", info->schema().name().c_str());
  return absl::OkStatus();
}

absl::Status CmdDrop(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(ctx, 1, "drop NAME"); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectFrom(ctx);
  if (!client.ok()) return client.status();
  if (absl::Status s = (*client)->DropCollection(ctx.args[0]); !s.ok()) {
    return s;
  }
  std::printf("dropped collection %s\n", ctx.args[0].c_str());
  return absl::OkStatus();
}

absl::Status CmdList(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(ctx, 0, "list"); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectFrom(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::vector<v1::CollectionInfo>> infos =
      (*client)->ListCollections();
  if (!infos.ok()) return infos.status();
  PrintInfoHeader();
  for (const v1::CollectionInfo& info : *infos) PrintInfoRow(info);
  return absl::OkStatus();
}

absl::Status CmdDescribe(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(ctx, 1, "describe NAME"); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectFrom(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::CollectionInfo> info =
      (*client)->DescribeCollection(ctx.args[0]);
  if (!info.ok()) return info.status();
  PrintInfoHeader();
  PrintInfoRow(*info);
  std::printf("last sequence: %llu\n",
              static_cast<unsigned long long>(info->last_sequence()));
  return absl::OkStatus();
}

absl::Status CmdStats(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(ctx, 0, "stats"); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectFrom(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::GetStatsResponse> stats = (*client)->GetStats();
  if (!stats.ok()) return stats.status();
  std::printf(
      "server %s  version %s  backend %s (device memory %.1f MiB)  up %.0f "
      "s\n"
      "searches %llu requests, %llu queries in %llu batches (%.1f "
      "queries/batch)\n"
      "inserted rows %llu\n"
      "limits: dim <= %u, k <= %u, queries/request <= %u, message <= %llu "
      "bytes\n\n",
      (*client)->target().c_str(), stats->version().c_str(),
      stats->backend().c_str(),
      static_cast<double>(stats->backend_device_memory_bytes()) / (1 << 20),
      stats->uptime_seconds(),
      static_cast<unsigned long long>(stats->search_requests()),
      static_cast<unsigned long long>(stats->search_queries()),
      static_cast<unsigned long long>(stats->batches()),
      stats->batches() ? static_cast<double>(stats->search_queries()) /
                             static_cast<double>(stats->batches())
                       : 0.0,
      static_cast<unsigned long long>(stats->inserted_rows()), stats->max_dim(),
      stats->max_k(), stats->max_queries_per_request(),
      static_cast<unsigned long long>(stats->max_message_bytes()));
  PrintInfoHeader();
  for (const v1::CollectionInfo& info : stats->collections()) {
    PrintInfoRow(info);
  }
  return absl::OkStatus();
}

absl::Status CmdPlan(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(
          ctx, 0, "plan -n ROWS -k K --recall R [--per_bin P] [--shards S]");
      !s.ok()) {
    return s;
  }
  if (!(ctx.n >= 0) || ctx.n > 9e18) {
    return absl::InvalidArgumentError(
        absl::StrCat("-n ", ctx.n, ": must be a row count >= 0"));
  }
  const int64_t n = static_cast<int64_t>(ctx.n);
  absl::StatusOr<RecallPlan> plan =
      PlanRecall(n, ctx.k, ctx.recall, static_cast<int>(ctx.per_bin),
                 static_cast<int>(ctx.shards));
  if (!plan.ok()) return plan.status();
  std::printf(
      "n=%lld k=%lld recall target %.4f, %lld per bin, %lld shard(s)\n"
      "  %s\n"
      "  bins (L)            %lld total, %lld per shard\n"
      "  expected recall@k   %.6f\n"
      "  worst-rank recall   %.6f\n"
      "  conservative L      %lld (XLA ApproxTopK form)\n",
      static_cast<long long>(n), static_cast<long long>(ctx.k), ctx.recall,
      static_cast<long long>(ctx.per_bin), static_cast<long long>(ctx.shards),
      plan->exact ? "exact search (bins would cost as much as a full scan)"
                  : "approximate search",
      static_cast<long long>(plan->bins),
      static_cast<long long>(plan->bins_per_shard), plan->expected_recall,
      plan->worst_rank_recall, static_cast<long long>(plan->conservative_bins));
  return absl::OkStatus();
}

}  // namespace peakknn::client
