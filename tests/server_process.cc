#include "tests/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace peakknn::testing {
namespace {

absl::StatusOr<int> ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return absl::InternalError("child neither exited nor was signalled");
}

}  // namespace

absl::StatusOr<ChildProcess> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::vector<std::string>& env,
    const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  pid_t pid;
  const int rc =
      posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("posix_spawn ", argv[0], ": error ", rc));
  }
  return ChildProcess(pid);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  std::swap(pid_, other.pid_);
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

absl::StatusOr<int> ChildProcess::Wait(double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(timeout_s);
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return ExitCode(status);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "process ", pid_, " still running after ", timeout_s, " s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::FailedPreconditionError("process already reaped");
}

absl::StatusOr<int> ChildProcess::Stop(int signal, double timeout_s) {
  if (pid_ <= 0) return absl::FailedPreconditionError("process not running");
  kill(pid_, signal);
  return Wait(timeout_s);
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl =
      absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

ServerProcess::ServerProcess(ServerProcess&& other) noexcept
    : process(std::move(other.process)),
      port(other.port),
      metrics_port(other.metrics_port),
      health_port(other.health_port),
      dir(std::move(other.dir)),
      owns_dir(other.owns_dir) {
  other.owns_dir = false;
}

ServerProcess::~ServerProcess() {
  process = ChildProcess();  // kill and reap before removing its files
  if (owns_dir) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}

std::string ServerProcess::target() const {
  return absl::StrCat("127.0.0.1:", port);
}

std::string ServerProcess::Log() const {
  std::ifstream in(dir + "/server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<ServerProcess> ServerProcess::Start(
    const std::vector<std::string>& extra_flags,
    const std::vector<std::string>& env, const std::string& dir,
    const std::vector<std::string>& launcher) {
  ServerProcess server;
  server.dir = dir.empty() ? MakeTempDir("peakknn-server") : dir;
  server.owns_dir = dir.empty();
  const std::string port_file = server.dir + "/ports";
  std::remove(port_file.c_str());
  const std::vector<std::string> server_argv = {
      PEAKKNN_SERVER_BIN,
      "--listen=127.0.0.1:0",
      "--metrics_listen=127.0.0.1:0",
      absl::StrCat("--port_file=", port_file),
      absl::StrCat("--data_dir=", server.dir, "/data"),
  };
  std::vector<std::string> argv = launcher;
  argv.insert(argv.end(), server_argv.begin(), server_argv.end());
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  // A restart on the same dir appends to the earlier server's log.
  const size_t log_start = server.Log().size();
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Spawn(argv, env, server.dir + "/server.log");
  if (!child.ok()) return child.status();
  server.process = std::move(*child);
  // The port file appears once the server listens; it serves once it has
  // recovered its collections (and logs "serving").
  bool listening = false;
  for (int i = 0; i < 3000; ++i) {  // up to 30 s
    if (!listening) {
      std::ifstream in(port_file);
      std::string line1, line2, line3;
      listening = in && std::getline(in, line1) && std::getline(in, line2) &&
                  std::getline(in, line3) &&
                  absl::SimpleAtoi(line1, &server.port) &&
                  absl::SimpleAtoi(line2, &server.metrics_port) &&
                  absl::SimpleAtoi(line3, &server.health_port);
    }
    if (listening && server.Log().find("peakknn-server: serving\n",
                                       log_start) != std::string::npos) {
      return server;
    }
    absl::StatusOr<int> exited = server.process.Wait(0.01);
    if (exited.ok()) {
      return absl::InternalError(absl::StrCat(
          "peakknn-server exited with ", *exited,
          listening ? " before serving:\n" : " before listening:\n",
          server.Log()));
    }
  }
  return absl::DeadlineExceededError(
      absl::StrCat("peakknn-server ",
                   listening ? "did not start serving" : "wrote no port file",
                   " within 30 s:\n", server.Log()));
}

std::vector<float> RandomVectors(int64_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(n * dim));
  for (float& x : v) x = normal(rng);
  return v;
}

int64_t ProcessMemoryKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    // "VmRSS:\t  123456 kB"
    if (line.starts_with(field + ":")) {
      int64_t kb = -1;
      return absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                                  line.substr(field.size() + 1), "kB")),
                              &kb)
                 ? kb
                 : -1;
    }
  }
  return -1;
}

absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("cannot bind a loopback port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect 127.0.0.1:", port));
  }
  const std::string request =
      absl::StrCat("GET ", path,
                   " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (write(fd, request.data(), request.size()) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("short write");
  }
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
    response.append(buf, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return absl::InternalError(absl::StrCat("bad HTTP response: ", response));
  }
  if (response.find(" 200 ") > response.find("\r\n")) {
    return absl::InternalError(
        absl::StrCat("HTTP ", response.substr(0, response.find("\r\n"))));
  }
  return response.substr(body + 4);
}

int RunCommand(const std::string& command, std::string* output) {
  output->clear();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) {
    output->append(buf, n);
  }
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace peakknn::testing
