// Test support: what a process holds, read from /proc (Linux): its threads
// and its open file descriptors.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace peakknn::testing {

inline std::string ProcDir(pid_t pid) {
  return pid == 0 ? std::string("/proc/self") : absl::StrCat("/proc/", pid);
}

// Threads of process `pid` (0: this process); -1 when it cannot be read.
inline int CountThreads(pid_t pid = 0) {
  std::error_code error;
  int n = 0;
  for (std::filesystem::directory_iterator it(ProcDir(pid) + "/task", error),
       end;
       !error && it != end; it.increment(error)) {
    ++n;
  }
  return error ? -1 : n;
}

// Open file descriptors of process `pid` (0: this process) whose target
// starts with `prefix` ("" counts every one, sockets and pipes included);
// -1 when they cannot be read.
inline int CountOpenFiles(pid_t pid = 0, const std::string& prefix = "") {
  std::error_code error;
  int n = 0;
  for (std::filesystem::directory_iterator it(ProcDir(pid) + "/fd", error), end;
       !error && it != end; it.increment(error)) {
    std::error_code gone;  // an fd closed meanwhile counts as closed
    const std::string target =
        std::filesystem::read_symlink(it->path(), gone).string();
    if (!gone && target.starts_with(prefix)) ++n;
  }
  return error ? -1 : n;
}

// Polls `done` every 10 ms until it returns true or `timeout` passes;
// returns its last answer.
template <typename Done>
bool WaitFor(Done done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

}  // namespace peakknn::testing
