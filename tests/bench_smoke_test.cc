// Runs the real peakknn-bench binary on a tiny synthetic set and checks its
// JSON report: both systems present, every field there, measured recall
// consistent with the recall each system promises.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
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

// Parses the JSON report at `path` into `report`; returns its text (for
// failure messages).
std::string ReadReport(const std::string& path, Struct& report) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(
      google::protobuf::util::JsonStringToMessage(text.str(), &report).ok())
      << path << ": " << text.str();
  return text.str();
}

bool IsNull(const Struct& s, const std::string& key) {
  const auto it = s.fields().find(key);
  return it != s.fields().end() && it->second.kind_case() == Value::kNullValue;
}

TEST(BenchSmokeTest, JsonHasBothSystemsAndRecallMeetsPromise) {
  const std::string json_path = testing::TempDir() + "/bench_smoke.json";
  std::remove(json_path.c_str());
  std::string output;
  ASSERT_EQ(RunCommand(BenchCommand(json_path), output), 0) << output;

  Struct report;
  const std::string text = ReadReport(json_path, report);
  ASSERT_EQ(report.fields().size(), 3u) << text;
  EXPECT_GT(Number(report, "sgemm_peak_gflops"), 0);
  EXPECT_GT(Number(report, "memory_bandwidth_gbps"), 0);
  const Value& results = report.fields().at("results");
  ASSERT_EQ(results.kind_case(), Value::kListValue);
  ASSERT_EQ(results.list_value().values_size(), 3);

  std::set<std::string> systems;
  for (const Value& v : results.list_value().values()) {
    const Struct& r = v.struct_value();
    SCOPED_TRACE(Text(r, "system") + " " + Text(r, "dtype"));
    EXPECT_EQ(r.fields().size(), 14u);
    EXPECT_EQ(Text(r, "setting"), "");
    EXPECT_GE(Number(r, "build_seconds"), 0);
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

// --sweep recall: one build per contender, every setting measured against
// exact truth; then the plot script turns the report into a PNG.
TEST(BenchSmokeTest, RecallSweepMeasuresEverySettingAndPlots) {
  const std::string json_path = testing::TempDir() + "/recall_sweep.json";
  const std::string png_path = testing::TempDir() + "/recall_sweep.png";
  std::remove(json_path.c_str());
  std::remove(png_path.c_str());
  std::string output;
  ASSERT_EQ(RunCommand(std::string(PEAKKNN_BENCH_BINARY) +
                           " --data synthetic --n 3000 --dim 16 --clusters 30"
                           " --queries 200 --k 10 --dtype both --sweep recall"
                           " --recall-targets 0.9,1 --hnsw-ef-search 16,64"
                           " --ivf-nprobe 1,4 --repeats 1 --threads 2"
                           " --sgemm-size 256 --bandwidth-mb 64 --json " +
                           json_path,
                       output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("sweep recall: n=3000"));
  EXPECT_THAT(output, HasSubstr("6x faiss-flat needs 6 x "));
  Struct report;
  const std::string text = ReadReport(json_path, report);
  const Value& results = report.fields().at("results");
  ASSERT_EQ(results.list_value().values_size(), 9) << text;

  std::map<std::string, const Struct*> by_setting;  // "system dtype setting"
  for (const Value& v : results.list_value().values()) {
    const Struct& r = v.struct_value();
    const std::string name = Text(r, "system") + " " + Text(r, "dtype") + " " +
                             (Text(r, "system") == "peakknn"
                                  ? std::to_string(Number(r, "recall_target"))
                                  : Text(r, "setting"));
    SCOPED_TRACE(name);
    EXPECT_EQ(r.fields().size(), 14u);
    EXPECT_GT(Number(r, "qps"), 0);
    const double recall = Number(r, "recall");
    EXPECT_GE(recall, 0);
    EXPECT_LE(recall, 1);
    by_setting[name] = &r;
  }
  for (const std::string approximate :
       {"faiss-hnsw f32 M=32,efC=40,efSearch=16",
        "faiss-hnsw f32 M=32,efC=40,efSearch=64",
        "faiss-ivf f32 nlist=219,nprobe=1",
        "faiss-ivf f32 nlist=219,nprobe=4"}) {
    SCOPED_TRACE(approximate);
    ASSERT_EQ(by_setting.count(approximate), 1u) << text;
    const Struct& r = *by_setting[approximate];
    EXPECT_TRUE(IsNull(r, "recall_target"));  // tuned by the setting
    EXPECT_TRUE(IsNull(r, "expected_recall"));
    EXPECT_GT(Number(r, "build_seconds"), 0);
  }
  // One build per contender, shared by its settings.
  EXPECT_EQ(
      Number(*by_setting["faiss-ivf f32 nlist=219,nprobe=1"], "build_seconds"),
      Number(*by_setting["faiss-ivf f32 nlist=219,nprobe=4"], "build_seconds"));
  // Probing more lists searches a superset of the rows.
  EXPECT_GE(Number(*by_setting["faiss-ivf f32 nlist=219,nprobe=4"], "recall"),
            Number(*by_setting["faiss-ivf f32 nlist=219,nprobe=1"], "recall"));
  // 3000 rows are an easy graph: a 64-wide search finds nearly everything.
  EXPECT_GE(
      Number(*by_setting["faiss-hnsw f32 M=32,efC=40,efSearch=64"], "recall"),
      0.9);
  for (const std::string dtype : {"f32", "bf16"}) {
    const std::string exact = "peakknn " + dtype + " " + std::to_string(1.0);
    const std::string approx = "peakknn " + dtype + " " + std::to_string(0.9);
    ASSERT_EQ(by_setting.count(exact), 1u) << text;
    ASSERT_EQ(by_setting.count(approx), 1u) << text;
    EXPECT_EQ(Number(*by_setting[exact], "expected_recall"), 1);
    EXPECT_GE(Number(*by_setting[exact], "recall"), 0.999);
    EXPECT_GE(Number(*by_setting[approx], "expected_recall"), 0.9);
  }

  std::string plot_output;
  ASSERT_EQ(RunCommand(std::string("/usr/bin/python3 ") + PEAKKNN_PLOT_SCRIPT +
                           " --json " + json_path + " --png " + png_path,
                       plot_output),
            0)
      << plot_output;
  EXPECT_THAT(plot_output, HasSubstr("N=3000"));
  std::ifstream png(png_path, std::ios::binary);
  char magic[8] = {};
  png.read(magic, sizeof(magic));
  EXPECT_EQ(std::string(magic, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

// --sweep batch: one line per batch size up to --queries, with the shares
// of the sgemm peak and of the read bandwidth.
TEST(BenchSmokeTest, BatchSweepPrintsEverySmallBatch) {
  std::string output;
  ASSERT_EQ(RunCommand(std::string(PEAKKNN_BENCH_BINARY) +
                           " --n 4000 --dim 16 --clusters 20 --queries 8"
                           " --dtype f32 --sweep batch --repeats 1 --threads 2"
                           " --sgemm-size 128 --bandwidth-mb 16",
                       output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("%peak"));
  EXPECT_THAT(output, HasSubstr("%bw"));
  for (const std::string batch : {"1", "2", "4", "8"}) {
    // "batch n queries": the batch size and the query count agree.
    EXPECT_THAT(output, testing::ContainsRegex("\\s" + batch + "\\s+4000\\s+" +
                                               batch + "\\s+10\\s+2\\s"))
        << batch;
  }
  EXPECT_THAT(output, testing::Not(HasSubstr(" 16 ")));  // past --queries
}

TEST(BenchSmokeTest, RejectsUnknownCompareSystem) {
  std::string output;
  EXPECT_NE(RunCommand(std::string(PEAKKNN_BENCH_BINARY) +
                           " --n 1000 --dim 8 --compare faiss-flat,annoy",
                       output),
            0);
  EXPECT_THAT(output, HasSubstr("unknown system \"annoy\""));
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
