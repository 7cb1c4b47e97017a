// Test support: runs the real peakknn-server binary (and other programs) as
// child processes on loopback, and tiny HTTP/port helpers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace peakknn::testing {

// A child process; killed (SIGKILL) and reaped on destruction if still
// running.
class ChildProcess {
 public:
  // argv[0] is the program path. `env` entries "NAME=value" are added to
  // the inherited environment. stdout/stderr go to `log_path` ("" inherits).
  static absl::StatusOr<ChildProcess> Spawn(
      const std::vector<std::string>& argv,
      const std::vector<std::string>& env = {},
      const std::string& log_path = "");
  ChildProcess() = default;  // no process
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Sends `signal` and waits up to `timeout_s`; returns the exit code, or
  // 128 + signal number when killed by a signal; DEADLINE_EXCEEDED on
  // timeout (the child is then killed).
  absl::StatusOr<int> Stop(int signal, double timeout_s = 30);
  // Waits for exit without signalling.
  absl::StatusOr<int> Wait(double timeout_s);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// peakknn-server started with --listen 127.0.0.1:0, --metrics_listen
// 127.0.0.1:0 and a port file in a fresh temporary directory (also its
// --data_dir); Start returns once it serves (port file written and its
// collections recovered), or an error if it exits first.
struct ServerProcess {
  ServerProcess() = default;
  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess& operator=(ServerProcess&&) = delete;
  // Kills the server if running and removes `dir` if Start created it.
  ~ServerProcess();

  ChildProcess process;
  int port = 0;
  int metrics_port = 0;
  int health_port = 0;  // 0 without --health_listen
  std::string dir;      // holds server.log and data/
  bool owns_dir = false;
  std::string target() const;
  std::string Log() const;  // the server's stderr so far

  // `launcher`: a program (absolute path) and its arguments that exec the
  // server, e.g. {"/usr/bin/prlimit", "--nofile=256:256", "--"} to run it
  // under an open-file limit; empty runs it directly.
  static absl::StatusOr<ServerProcess> Start(
      const std::vector<std::string>& extra_flags = {},
      const std::vector<std::string>& env = {}, const std::string& dir = "",
      const std::vector<std::string>& launcher = {});
};

// A memory figure of process `pid` from /proc/<pid>/status, in KiB: `field`
// "VmRSS" (resident now) or "VmHWM" (peak resident); -1 if unreadable.
int64_t ProcessMemoryKb(pid_t pid, const std::string& field);

// A fresh directory under $TEST_TMPDIR or /tmp.
std::string MakeTempDir(const std::string& prefix);
// A loopback TCP port that was free a moment ago.
absl::StatusOr<int> FreePort();

// n x dim standard-normal floats from a seeded generator (test data).
std::vector<float> RandomVectors(int64_t n, int dim, uint64_t seed);
// GET http://127.0.0.1:port/path; returns the body of a 200 response.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);
// Runs a shell command; returns its exit code and fills `output` with its
// stdout and stderr.
int RunCommand(const std::string& command, std::string* output);

}  // namespace peakknn::testing
