// peakknn insert / search: vectors from files (or stdin) through the server.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/progress_bar.h"
#include "client/result_format.h"
#include "io/vector_files.h"

namespace peakknn::client {
namespace {

// stdin is read as CSV (one vector per line) through the file reader, via a
// private temporary file, so both paths share one parser and its errors.
absl::StatusOr<FloatMatrix> ReadStdinCsv() {
  char path[] = "/tmp/peakknn-stdin-XXXXXX.csv";
  const int fd = mkstemps(path, 4);
  if (fd < 0) return absl::InternalError("cannot create a temporary file");
  close(fd);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::cin.rdbuf();
  }
  absl::StatusOr<FloatMatrix> m = ReadVectors(path);
  std::remove(path);
  if (!m.ok()) {
    return absl::Status(m.status().code(), absl::StrCat("stdin (read as CSV): ",
                                                        m.status().message()));
  }
  return m;
}

}  // namespace

absl::Status CmdInsert(const CliContext& ctx) {
  if (absl::Status s = RequireArgs(
          ctx, 2,
          "insert NAME FILE(.fvecs|.bvecs|.npy|.csv) [--start_id N] "
          "[--batch_rows B] [--upsert]");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectFrom(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::CollectionInfo> info =
      (*client)->DescribeCollection(ctx.args[0]);
  if (!info.ok()) return info.status();
  const int64_t dim = info->schema().dim();
  // Text files may carry extra trailing columns (sift5k's id column): keep
  // the collection's dim. Binary formats must match it exactly.
  ReadOptions read;
  read.columns = dim;
  absl::StatusOr<FloatMatrix> data = ReadVectors(ctx.args[1], read);
  if (!data.ok()) return data.status();
  if (data->rows == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx.args[1], ": holds no vectors"));
  }
  if (data->dim != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx.args[1], ": holds vectors of dim ", data->dim,
                     " but collection '", ctx.args[0], "' has dim ", dim));
  }
  std::vector<uint64_t> ids(static_cast<size_t>(data->rows));
  std::iota(ids.begin(), ids.end(), static_cast<uint64_t>(ctx.start_id));
  InsertOptions options;
  options.batch_rows = ctx.batch_rows;
  options.upsert = ctx.upsert;
  ProgressBar bar("insert", data->rows);
  const absl::Time start = absl::Now();
  absl::StatusOr<InsertSummary> summary = (*client)->InsertAll(
      ctx.args[0], ids, data->values, options,
      ctx.progress
          ? ProgressFn([&](int64_t done, int64_t) { bar.Update(done); })
          : ProgressFn());
  if (ctx.progress) bar.Finish();
  if (!summary.ok()) return summary.status();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf(
      "inserted %lld rows (ids %lld..%lld, dim %lld) into %s in %.2f s "
      "(%.0f rows/s), last sequence %llu\n",
      static_cast<long long>(summary->rows),
      static_cast<long long>(ctx.start_id),
      static_cast<long long>(ctx.start_id + data->rows - 1),
      static_cast<long long>(data->dim), ctx.args[0].c_str(), seconds,
      summary->rows / std::max(seconds, 1e-9),
      static_cast<unsigned long long>(summary->last_sequence));
  return absl::OkStatus();
}

absl::Status CmdSearch(const CliContext& ctx) {
  if (absl::Status s =
          RequireArgs(ctx, 2,
                      "search NAME FILE|- [-k K] [--recall R] [--format "
                      "table|json|ivecs] [--output PATH]");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<ResultFormat> format = ParseResultFormat(ctx.format);
  if (!format.ok()) return format.status();
  if (*format == ResultFormat::kIvecs && ctx.output.empty()) {
    return absl::InvalidArgumentError(
        "--format=ivecs: needs --output PATH (binary output)");
  }
  absl::StatusOr<FloatMatrix> queries =
      ctx.args[1] == "-" ? ReadStdinCsv() : ReadVectors(ctx.args[1]);
  if (!queries.ok()) return queries.status();
  if (queries->rows == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx.args[1], ": holds no query vectors"));
  }
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectFrom(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<SearchAllResult> results = (*client)->SearchAll(
      ctx.args[0], queries->values, queries->dim, ctx.k, ctx.recall);
  if (!results.ok()) return results.status();
  if (*format == ResultFormat::kIvecs) {
    return WriteIvecsResults(*results, ctx.k, ctx.output);
  }
  std::ofstream file;
  if (!ctx.output.empty()) {
    file.open(ctx.output, std::ios::trunc);
    if (!file) {
      return absl::InvalidArgumentError(
          absl::StrCat("--output=", ctx.output, ": cannot open for writing"));
    }
  }
  std::ostream& out = ctx.output.empty() ? std::cout : file;
  if (*format == ResultFormat::kJson) {
    WriteJson(*results, out);
  } else {
    WriteTable(*results, out);
  }
  out.flush();
  if (!out) {
    return absl::DataLossError("writing search results failed");
  }
  return absl::OkStatus();
}

}  // namespace peakknn::client
