// Crash test: a child process (tests/crash_writer.cc) streams batches into a
// store and prints each acknowledgement; this test SIGKILLs it at random
// moments, again and again on the same directory. After every restart the
// recovered rows must equal exactly the acknowledged batches, plus possibly
// the one batch that was in flight, applied whole: acknowledged ids present
// with their exact vectors, deleted ids gone, no batch half applied. The
// child reports what it recovered as a digest (tests/crash_workload.h), so a
// cycle's check costs one line however large the store has grown; when the
// digest differs, the child lists every row instead of writing and the
// failure names the ids that differ.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/crash_workload.h"
#include "tests/store_test_util.h"

namespace peakknn {
namespace {

using crash::ApplyBatch;
using crash::Digest;
using crash::Model;

class Child {
 public:
  Child(const std::string& dir, uint64_t start_tag) {
    int out[2], in[2];
    EXPECT_EQ(::pipe(out), 0);
    EXPECT_EQ(::pipe(in), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(in[0], STDIN_FILENO);
      for (int fd : {out[0], out[1], in[0], in[1]}) ::close(fd);
      const std::string tag = std::to_string(start_tag);
      ::execl(CRASH_WRITER_PATH, CRASH_WRITER_PATH, dir.c_str(), tag.c_str(),
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(out[1]);
    ::close(in[0]);
    fd_ = out[0];
    command_fd_ = in[1];
  }
  ~Child() {
    if (fd_ >= 0) ::close(fd_);
    if (command_fd_ >= 0) ::close(command_fd_);
  }

  // Sends the child its command after READY: "GO" or "DUMP".
  void Send(const std::string& command) {
    const std::string line = command + "\n";
    EXPECT_EQ(::write(command_fd_, line.data(), line.size()),
              static_cast<ssize_t>(line.size()));
  }

  // The next complete line, or nullopt at EOF or when `deadline` passes.
  std::optional<std::string> ReadLine(
      std::chrono::steady_clock::time_point deadline) {
    while (true) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return std::nullopt;  // EOF: a partial line is dropped
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // SIGKILL; returns true when the child died of it (not earlier).
  bool Kill() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;          // the child's stdout
  int command_fd_ = -1;  // the child's stdin
  std::string buffer_;
};

// Applies batch `tag` to the model and keeps its digest in step.
void Apply(uint64_t tag, Model* model, Digest* digest) {
  *digest = crash::DigestWithBatch(*model, *digest, tag);
  ApplyBatch(tag, model);
}

// What the child recovered (`got`) must be the acknowledged batches, or them
// plus the whole in-flight batch (-1: none), which the model then takes in.
// On a mismatch, has the child (waiting after READY) list its rows to name
// the ids that differ. Returns what is wrong, or "".
std::string CheckRecovered(Child* child, const Digest& got, int64_t in_flight,
                           Model* model, Digest* digest) {
  if (got == *digest) return "";
  if (in_flight >= 0 &&
      got == crash::DigestWithBatch(*model, *digest, in_flight)) {
    Apply(static_cast<uint64_t>(in_flight), model, digest);
    return "";
  }
  child->Send("DUMP");
  Model rows;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (auto line = child->ReadLine(deadline)) {
    std::istringstream in(*line);
    std::string word;
    uint64_t id, tag;
    if (in >> word >> id >> tag && word == "HAVE") rows[id] = tag;
  }
  const std::string wrong = crash::CheckRecovered(rows, in_flight, model);
  return "recovered digest (" + std::to_string(got.rows) + " rows) differs: " +
         (wrong.empty() ? "yet the rows listed match" : wrong);
}

TEST(CrashTest, AcknowledgedWritesSurviveRepeatedSigkill) {
  char tmpl[] = "/tmp/peakknn-crash-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = std::string(tmpl) + "/store";
  // 24 in CI; PEAKKNN_CRASH_CYCLES=1000 for a soak (tests/README.md).
  const int64_t rounds = testing::CountFromEnv("PEAKKNN_CRASH_CYCLES", 24);
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> run_ms(20, 400);

  Model model;
  Digest digest;           // of `model`
  int64_t in_flight = -1;  // tag with BEGIN seen and no ACK, or -1
  uint64_t next_tag = 0;
  int64_t acked_total = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Start past the in-flight batch, so the child's recovered range covers
    // its ids whether or not it was applied.
    if (in_flight >= 0) next_tag = in_flight + 1;
    Child child(dir, next_tag);
    const auto start = std::chrono::steady_clock::now();
    std::optional<Digest> recovered;
    bool ready = false;
    while (auto line = child.ReadLine(start + std::chrono::seconds(60))) {
      std::istringstream in(*line);
      std::string word;
      in >> word;
      if (word == "READY") {
        ready = true;
        break;
      }
      ASSERT_EQ(word, "DIGEST") << "child: " << *line;
      recovered.emplace();
      in >> recovered->rows >> recovered->sum;
    }
    ASSERT_TRUE(ready && recovered) << "child did not recover within 60 s";
    const std::string wrong =
        CheckRecovered(&child, *recovered, in_flight, &model, &digest);
    ASSERT_TRUE(wrong.empty()) << wrong;
    child.Send("GO");
    in_flight = -1;

    const auto kill_at = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(run_ms(rng));
    while (auto line = child.ReadLine(kill_at)) {
      std::istringstream in(*line);
      std::string word;
      uint64_t tag;
      in >> word >> tag;
      if (word == "BEGIN") {
        in_flight = static_cast<int64_t>(tag);
      } else if (word == "ACK") {
        ASSERT_EQ(in_flight, static_cast<int64_t>(tag)) << *line;
        Apply(tag, &model, &digest);
        in_flight = -1;
        next_tag = tag + 1;
        ++acked_total;
      } else {
        FAIL() << "child: " << *line;
      }
    }
    ASSERT_TRUE(child.Kill()) << "child exited before it was killed";
    // Lines the child wrote before dying still count.
    while (auto line = child.ReadLine(std::chrono::steady_clock::now() +
                                      std::chrono::seconds(2))) {
      std::istringstream in(*line);
      std::string word;
      uint64_t tag;
      in >> word >> tag;
      if (word == "BEGIN") in_flight = static_cast<int64_t>(tag);
      if (word == "ACK" && in_flight == static_cast<int64_t>(tag)) {
        Apply(tag, &model, &digest);
        in_flight = -1;
        next_tag = tag + 1;
        ++acked_total;
      }
    }
  }
  EXPECT_GT(acked_total, rounds) << "too few batches to mean anything";
  std::printf(
      "crash test: %lld kills, %lld acknowledged batches, %zu live ids\n",
      static_cast<long long>(rounds), static_cast<long long>(acked_total),
      model.size());
  std::system(("rm -rf " + std::string(tmpl)).c_str());
}

}  // namespace
}  // namespace peakknn
