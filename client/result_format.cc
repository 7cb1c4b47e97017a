#include "client/result_format.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "io/vector_files.h"

namespace peakknn::client {

absl::StatusOr<ResultFormat> ParseResultFormat(const std::string& text) {
  if (text == "table") return ResultFormat::kTable;
  if (text == "json") return ResultFormat::kJson;
  if (text == "ivecs") return ResultFormat::kIvecs;
  return absl::InvalidArgumentError(
      absl::StrCat("--format=", text, ": must be table, json or ivecs"));
}

void WriteTable(const SearchAllResult& r, std::ostream& out) {
  out << absl::StrFormat("%-7s %-5s %-20s %s\n", "query", "rank", "id",
                         "distance");
  for (size_t q = 0; q < r.ids.size(); ++q) {
    for (size_t i = 0; i < r.ids[q].size(); ++i) {
      out << absl::StrFormat("%-7d %-5d %-20d %.6g\n", q, i, r.ids[q][i],
                             r.distances[q][i]);
    }
  }
  out << absl::StrFormat("# expected recall %.4f, bins %d%s\n",
                         r.expected_recall, r.bins, r.exact ? " (exact)" : "");
}

void WriteJson(const SearchAllResult& r, std::ostream& out) {
  out << absl::StrFormat("{\"expected_recall\": %.6f, \"bins\": %d, ",
                         r.expected_recall, r.bins)
      << "\"exact\": " << (r.exact ? "true" : "false") << ", \"results\": [";
  for (size_t q = 0; q < r.ids.size(); ++q) {
    out << (q ? ",\n  " : "\n  ") << "{\"query\": " << q << ", \"ids\": [";
    for (size_t i = 0; i < r.ids[q].size(); ++i) {
      out << (i ? ", " : "") << r.ids[q][i];
    }
    out << "], \"distances\": [";
    for (size_t i = 0; i < r.distances[q].size(); ++i) {
      out << (i ? ", " : "") << absl::StrFormat("%.9g", r.distances[q][i]);
    }
    out << "]}";
  }
  out << "\n]}\n";
}

absl::Status WriteIvecsResults(const SearchAllResult& r, int64_t k,
                               const std::string& path) {
  IntMatrix m;
  m.rows = static_cast<int64_t>(r.ids.size());
  m.dim = k;
  m.values.assign(static_cast<size_t>(m.rows * k), -1);
  for (size_t q = 0; q < r.ids.size(); ++q) {
    for (size_t i = 0; i < r.ids[q].size() && static_cast<int64_t>(i) < k;
         ++i) {
      if (r.ids[q][i] > static_cast<uint64_t>(INT32_MAX)) {
        return absl::OutOfRangeError(
            absl::StrCat("--format=ivecs: id ", r.ids[q][i], " (query ", q,
                         ") does not fit in int32; use --format=json"));
      }
      m.values[q * k + i] = static_cast<int32_t>(r.ids[q][i]);
    }
  }
  return WriteIvecs(path, m);
}

}  // namespace peakknn::client
