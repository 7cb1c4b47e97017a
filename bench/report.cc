#include "bench/report.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace peakknn::bench {
namespace {

// JSON has no NaN or infinity; such a value (e.g. a rate from a zero time)
// is written as null.
std::string JsonNumber(double x) {
  if (!std::isfinite(x)) return "null";
  char buffer[32];
  // Shortest text that reads back as the same double (0.95, not
  // 0.94999999999999996).
  const std::to_chars_result r = std::to_chars(buffer, buffer + 32, x);
  return std::string(buffer, r.ptr);
}

// A table cell with `precision` decimals; "-" for a quantity the system
// does not have (NaN).
std::string Cell(double x, int precision) {
  if (std::isnan(x)) return "-";
  return absl::StrFormat("%.*f", precision, x);
}

}  // namespace

std::string FormatTable(const std::vector<ResultRow>& rows) {
  constexpr char kRow[] =
      "%-11s %-5s %-6s %9s %5s %7s %5s %8s %11s %8s %9s %9s %9s  %s\n";
  std::string out = absl::StrFormat(
      kRow, "system", "dtype", "metric", "n", "dim", "queries", "k", "target",
      "qps", "recall", "expected", "gflops", "build_s", "setting");
  for (const ResultRow& r : rows) {
    out += absl::StrFormat(
        kRow, r.system, r.dtype, r.metric, absl::StrCat(r.n),
        absl::StrCat(r.dim), absl::StrCat(r.queries), absl::StrCat(r.k),
        std::isnan(r.recall_target) ? "-"
                                    : absl::StrFormat("%.4g", r.recall_target),
        Cell(r.qps, 1), Cell(r.recall, 4), Cell(r.expected_recall, 4),
        Cell(r.gflops, 1), Cell(r.build_seconds, 2), r.setting);
  }
  return out;
}

std::string FormatJson(double sgemm_peak_gflops, double memory_bandwidth_gbps,
                       const std::vector<ResultRow>& rows) {
  std::string out = absl::StrCat(
      "{\"sgemm_peak_gflops\": ", JsonNumber(sgemm_peak_gflops),
      ", \"memory_bandwidth_gbps\": ", JsonNumber(memory_bandwidth_gbps),
      ", \"results\": [");
  for (size_t i = 0; i < rows.size(); ++i) {
    const ResultRow& r = rows[i];
    // system, dtype, metric and setting are identifiers and numbers the
    // benchmark writes itself: nothing to escape.
    absl::StrAppend(&out, i ? ", " : "", "{\"system\": \"", r.system,
                    "\", \"dtype\": \"", r.dtype, "\", \"metric\": \"",
                    r.metric, "\", \"n\": ", r.n, ", \"dim\": ", r.dim,
                    ", \"queries\": ", r.queries, ", \"k\": ", r.k,
                    ", \"recall_target\": ", JsonNumber(r.recall_target),
                    ", \"qps\": ", JsonNumber(r.qps),
                    ", \"recall\": ", JsonNumber(r.recall),
                    ", \"expected_recall\": ", JsonNumber(r.expected_recall),
                    ", \"gflops\": ", JsonNumber(r.gflops),
                    ", \"build_seconds\": ", JsonNumber(r.build_seconds),
                    ", \"setting\": \"", r.setting, "\"}");
  }
  out += "]}\n";
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace peakknn::bench
