// The `peakknn` CLI as a user runs it: a real server, the real binary,
// real files (fvecs written and ivecs read back with client/vector_files).
#include <signal.h>

#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/vector_files.h"
#include "tests/server_process.h"

namespace peakknn {
namespace {

using peakknn::testing::RunCommand;
using peakknn::testing::ServerProcess;
using ::testing::HasSubstr;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start({"--drain_seconds=2"});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    dir_ = server_->dir;
  }
  void TearDown() override {
    if (server_ == nullptr) return;  // SetUp failed and said why
    absl::StatusOr<int> rc = server_->process.Stop(SIGTERM);
    EXPECT_TRUE(rc.ok() && *rc == 0);
  }
  // Runs `peakknn --server=... ARGS`; returns the exit code.
  int Cli(const std::string& args, std::string* out) {
    return RunCommand(absl::StrCat(PEAKKNN_CLI_BIN,
                                   " --server=", server_->target(), " ", args),
                      out);
  }

  std::unique_ptr<ServerProcess> server_;
  std::string dir_;
};

TEST_F(CliTest, CreateInsertSearchListDescribeStatsDrop) {
  FloatMatrix data;
  data.rows = 300;
  data.dim = 8;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < data.rows * data.dim; ++i) {
    data.values.push_back(normal(rng));
  }
  const std::string fvecs = dir_ + "/rows.fvecs";
  ASSERT_TRUE(WriteFvecs(fvecs, data).ok());

  std::string out;
  ASSERT_EQ(Cli("create docs --dim 8 --metric l2", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("created collection docs"));
  ASSERT_EQ(Cli("insert docs " + fvecs + " --start_id 1000", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("inserted 300 rows (ids 1000..1299"));
  EXPECT_THAT(out, HasSubstr("100%"));  // the progress bar finished

  // Queries: the first 3 rows, exact; each finds itself first.
  FloatMatrix queries = data;
  queries.rows = 3;
  queries.values.resize(3 * 8);
  const std::string qfile = dir_ + "/q.fvecs";
  ASSERT_TRUE(WriteFvecs(qfile, queries).ok());
  const std::string ivecs = dir_ + "/out.ivecs";
  ASSERT_EQ(Cli(absl::StrCat("search docs ", qfile, " -k 4 --recall 1 ",
                             "--format ivecs --output ", ivecs),
                &out),
            0)
      << out;
  absl::StatusOr<IntMatrix> ids = ReadIvecs(ivecs);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->rows, 3);
  ASSERT_EQ(ids->dim, 4);
  for (int q = 0; q < 3; ++q) EXPECT_EQ(ids->row(q)[0], 1000 + q);

  ASSERT_EQ(Cli("search docs " + qfile + " -k 2 --format json", &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"expected_recall\""));
  EXPECT_THAT(out, HasSubstr("{\"query\": 2, \"ids\": [1002,"));

  // stdin, CSV, table output.
  std::string row0;
  for (int j = 0; j < 8; ++j) {
    absl::StrAppend(&row0, j ? "," : "", data.values[j]);
  }
  ASSERT_EQ(RunCommand(absl::StrCat("echo '", row0, "' | ", PEAKKNN_CLI_BIN,
                                    " --server=", server_->target(),
                                    " search docs - -k 1 --recall 1"),
                       &out),
            0)
      << out;
  EXPECT_THAT(out, ::testing::ContainsRegex("0 +0 +1000 "));

  ASSERT_EQ(Cli("list", &out), 0) << out;
  EXPECT_THAT(out, ::testing::ContainsRegex("docs +8 l2 +f32 +0.9500 +300"));
  ASSERT_EQ(Cli("describe docs", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("last sequence: 1"));
  ASSERT_EQ(Cli("stats", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("inserted rows 300"));
  EXPECT_THAT(out, HasSubstr("backend cpu"));
  ASSERT_EQ(Cli("drop docs", &out), 0) << out;
  EXPECT_NE(Cli("describe docs", &out), 0);
  EXPECT_THAT(out, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, DemoReportsMeasuredAndExpectedRecallAndQps) {
  std::string out;
  ASSERT_EQ(Cli("demo --rows 3000 --dim 16 --queries 50 --clients 4", &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("inserted 3000 rows"));
  EXPECT_THAT(out, ::testing::ContainsRegex("measured recall@10 0\\.9[0-9]+|"
                                            "measured recall@10 1\\.0"));
  EXPECT_THAT(out, HasSubstr("expected 0.9"));
  EXPECT_THAT(out, HasSubstr("QPS"));
}

TEST_F(CliTest, ClearErrors) {
  std::string out;
  // Malformed file: named, exit 2 (bad input) or 1; never a crash.
  const std::string bad = dir_ + "/bad.csv";
  std::ofstream(bad) << "1,2,3\n4,five,6\n";
  ASSERT_EQ(Cli("create c --dim 3", &out), 0) << out;
  const int rc = Cli("insert c " + bad, &out);
  EXPECT_TRUE(rc == 1 || rc == 2) << rc;
  EXPECT_THAT(out, HasSubstr("bad.csv"));
  EXPECT_EQ(Cli("search c " + dir_ + "/missing.fvecs", &out) != 0, true);
  EXPECT_THAT(out, HasSubstr("missing.fvecs"));
  // Usage errors exit 2.
  EXPECT_EQ(Cli("frobnicate", &out), 2);
  EXPECT_THAT(out, HasSubstr("unknown command"));
  EXPECT_EQ(Cli("create", &out), 2);
  EXPECT_THAT(out, HasSubstr("usage: peakknn create NAME"));
  // Server-side validation comes through with the field.
  EXPECT_EQ(Cli("create d --dim 0", &out), 2);
  EXPECT_THAT(out, HasSubstr("schema.dim=0"));
}

TEST(CliNoServerTest, PlanWorksOfflineAndUnreachableServerIsNamed) {
  std::string out;
  ASSERT_EQ(RunCommand(absl::StrCat(PEAKKNN_CLI_BIN,
                                    " plan -n 1e6 -k 10 --recall 0.95"),
                       &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("bins (L)            96 total"));
  EXPECT_THAT(out, HasSubstr("expected recall@k   0.95"));
  absl::StatusOr<int> port = peakknn::testing::FreePort();
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(RunCommand(absl::StrCat(PEAKKNN_CLI_BIN,
                                    " --server=127.0.0.1:", *port, " list"),
                       &out),
            1);
  EXPECT_THAT(out, HasSubstr(absl::StrCat("cannot reach a peakknn server at "
                                          "127.0.0.1:",
                                          *port)));
}

}  // namespace
}  // namespace peakknn
