#include "bench/contender_list.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/faiss_contender.h"
#include "bench/peakknn_contender.h"

namespace peakknn::bench {

absl::StatusOr<std::vector<std::string>> ParseCompare(
    absl::string_view compare) {
  std::vector<std::string> systems;
  if (compare == "none") return systems;
  for (absl::string_view name : absl::StrSplit(compare, ',')) {
    if (name != "faiss-flat" && name != "faiss-hnsw" && name != "faiss-ivf") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--compare: unknown system \"", name,
          "\"; expected a comma-separated list of faiss-flat, faiss-hnsw, "
          "faiss-ivf, or none"));
    }
    if (std::find(systems.begin(), systems.end(), name) != systems.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--compare names \"", name, "\" twice"));
    }
    systems.emplace_back(name);
  }
  return systems;
}

absl::StatusOr<std::vector<std::unique_ptr<Contender>>> MakeContenders(
    const ContenderListConfig& config) {
  absl::StatusOr<std::vector<std::string>> systems =
      ParseCompare(config.compare);
  if (!systems.ok()) return systems.status();
  const auto wants = [&](absl::string_view name) {
    return std::find(systems->begin(), systems->end(), name) != systems->end();
  };
  std::vector<std::unique_ptr<Contender>> out;
  if (wants("faiss-flat")) {
    out.push_back(std::make_unique<FaissFlatContender>(config.metric));
  }
  for (DType dtype : config.dtypes) {
    out.push_back(std::make_unique<PeakknnContender>(
        config.metric, dtype, config.recall_targets, config.pool,
        config.backend));
  }
  if (wants("faiss-hnsw")) {
    out.push_back(
        std::make_unique<FaissHnswContender>(config.metric, config.hnsw));
  }
  if (wants("faiss-ivf")) {
    out.push_back(
        std::make_unique<FaissIvfContender>(config.metric, config.ivf));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseIntList(absl::string_view flag,
                                                  absl::string_view text) {
  std::vector<int64_t> values;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    int64_t value;
    if (!absl::SimpleAtoi(item, &value) || value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": \"", item,
                       "\" is not a positive integer (in \"", text, "\")"));
    }
    values.push_back(value);
  }
  return values;
}

absl::StatusOr<std::vector<double>> ParseRecallList(absl::string_view flag,
                                                    absl::string_view text) {
  std::vector<double> values;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    double value;
    if (!absl::SimpleAtod(item, &value) || !(value > 0 && value <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": \"", item,
                       "\" is not a recall in (0, 1] (in \"", text, "\")"));
    }
    values.push_back(value);
  }
  return values;
}

}  // namespace peakknn::bench
