// Writing search results in the CLI's output formats.
//
//   table  one line per (query, rank): query, rank, id, distance
//   json   one object: expected_recall, bins, exact, results[{query, ids,
//          distances}]
//   ivecs  one row of k int32 ids per query (-1 pads missing results);
//          ids above INT32_MAX are an error
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"

namespace peakknn::client {

enum class ResultFormat { kTable, kJson, kIvecs };

absl::StatusOr<ResultFormat> ParseResultFormat(const std::string& text);

// Table and JSON to `out`.
void WriteTable(const SearchAllResult& results, std::ostream& out);
void WriteJson(const SearchAllResult& results, std::ostream& out);
// .ivecs to `path`, k columns.
absl::Status WriteIvecsResults(const SearchAllResult& results, int64_t k,
                               const std::string& path);

}  // namespace peakknn::client
