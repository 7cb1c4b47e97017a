// The benchmark's results: a table for people and JSON for tools.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace peakknn::bench {

// One contender's measurement; field names are the JSON keys.
struct ResultRow {
  std::string system;  // "peakknn" | "faiss-flat" | "faiss-hnsw" | "faiss-ivf"
  std::string dtype;   // "f32" | "bf16"
  std::string metric;  // "l2" | "ip" | "cosine"
  int64_t n = 0;       // base rows
  int64_t dim = 0;
  int64_t queries = 0;
  int64_t k = 0;
  // The search-time setting beyond the recall target ("M=32,efC=40,
  // efSearch=64", "nlist=1265,nprobe=8"); "" for peakknn and faiss-flat.
  std::string setting;
  double build_seconds = 0;    // loading the rows / building the index
  double recall_target = 1.0;  // NaN (null, "-") where there is none
  double qps = 0;              // queries / best batch time
  double recall = 0;           // measured recall@k against exact truth
  double expected_recall = 1;  // the analytic promise; NaN where there is none
  double gflops = 0;           // 2 * n * dim * queries / best time / 1e9
};

// Prints an aligned table with a header line.
std::string FormatTable(const std::vector<ResultRow>& rows);

// {"sgemm_peak_gflops": x, "memory_bandwidth_gbps": y,
//  "results": [{...ResultRow fields...}]}
std::string FormatJson(double sgemm_peak_gflops, double memory_bandwidth_gbps,
                       const std::vector<ResultRow>& rows);

absl::Status WriteFile(const std::string& path, const std::string& text);

}  // namespace peakknn::bench
