// Runs the real peakknn-bench binary on a tiny synthetic set and checks its
// JSON report: both systems present, every field there, measured recall
// consistent with the recall each system promises.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::testing::HasSubstr;

constexpr int kQueries = 1000;

// Runs a shell command; returns its exit status and stdout+stderr.
int RunCommand(const std::string& command, std::string& output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, got);
  }
  return pclose(pipe);
}

std::string BenchCommand(const std::string& json_path) {
  return std::string(PEAKKNN_BENCH_BINARY) +
         " --data synthetic --n 5000 --dim 32 --clusters 50 --queries " +
         std::to_string(kQueries) +
         " --k 10 --recall 0.9 --metric l2 --dtype both --compare faiss-flat"
         " --repeats 1 --threads 2 --sgemm-size 256 --json " +
         json_path;
}

double Number(const Struct& s, const std::string& key) {
  const auto it = s.fields().find(key);
  EXPECT_NE(it, s.fields().end()) << "missing key " << key;
  if (it == s.fields().end()) return NAN;
  EXPECT_EQ(it->second.kind_case(), Value::kNumberValue) << key;
  return it->second.number_value();
}

std::string Text(const Struct& s, const std::string& key) {
  const auto it = s.fields().find(key);
  EXPECT_NE(it, s.fields().end()) << "missing key " << key;
  return it == s.fields().end() ? "" : it->second.string_value();
}

TEST(BenchSmokeTest, JsonHasBothSystemsAndRecallMeetsPromise) {
  const std::string json_path = testing::TempDir() + "/bench_smoke.json";
  std::remove(json_path.c_str());
  std::string output;
  ASSERT_EQ(RunCommand(BenchCommand(json_path), output), 0) << output;

  std::ifstream in(json_path);
  std::stringstream text;
  text << in.rdbuf();
  Struct report;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(text.str(), &report).ok())
      << text.str();
  ASSERT_EQ(report.fields().size(), 2u) << text.str();
  EXPECT_GT(Number(report, "sgemm_peak_gflops"), 0);
  const Value& results = report.fields().at("results");
  ASSERT_EQ(results.kind_case(), Value::kListValue);
  ASSERT_EQ(results.list_value().values_size(), 3);

  std::set<std::string> systems;
  for (const Value& v : results.list_value().values()) {
    const Struct& r = v.struct_value();
    SCOPED_TRACE(Text(r, "system") + " " + Text(r, "dtype"));
    EXPECT_EQ(r.fields().size(), 12u);
    systems.insert(Text(r, "system") + "/" + Text(r, "dtype"));
    EXPECT_EQ(Text(r, "metric"), "l2");
    EXPECT_EQ(Number(r, "n"), 5000);
    EXPECT_EQ(Number(r, "dim"), 32);
    EXPECT_EQ(Number(r, "queries"), kQueries);
    EXPECT_EQ(Number(r, "k"), 10);
    EXPECT_GT(Number(r, "qps"), 0);
    EXPECT_GT(Number(r, "gflops"), 0);
    const double expected = Number(r, "expected_recall");
    const double recall = Number(r, "recall");
    if (Text(r, "system") == "faiss-flat") {
      EXPECT_EQ(Number(r, "recall_target"), 1);
      EXPECT_EQ(expected, 1);
      EXPECT_GE(recall, 0.999);  // exact search is its own ground truth
    } else {
      EXPECT_EQ(Number(r, "recall_target"), 0.9);
      EXPECT_GE(expected, 0.9);
      EXPECT_LT(expected, 1);
      // Per-query recall lies in [0, 1], so its variance is at most
      // E(1 - E): 4 standard errors of the mean over the queries.
      EXPECT_GE(recall,
                expected - 4 * std::sqrt(expected * (1 - expected) / kQueries));
    }
  }
  EXPECT_EQ(systems, (std::set<std::string>{"faiss-flat/f32", "peakknn/f32",
                                            "peakknn/bf16"}));
  EXPECT_THAT(output, HasSubstr("sgemm peak"));
}

TEST(BenchSmokeTest, ReexecutesWithoutOpenblasOverrides) {
  std::string output;
  ASSERT_EQ(RunCommand("OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=262144 " +
                           BenchCommand(testing::TempDir() + "/reexec.json"),
                       output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("re-executing"));
  EXPECT_THAT(output,
              HasSubstr("unset by re-exec (were: OPENBLAS_CORETYPE=Haswell "
                        "OPENBLAS_L2_SIZE=262144)"));
}

}  // namespace
}  // namespace peakknn
