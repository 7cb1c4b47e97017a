#include "server/fd_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "store/wal_writer.h"

namespace peakknn::server {
namespace {

uint64_t FromRlim(rlim_t value) {
  return value == RLIM_INFINITY ? std::numeric_limits<uint64_t>::max()
                                : static_cast<uint64_t>(value);
}

std::string Errno(int err) {
  return absl::StrCat(std::strerror(err), " (errno ", err, ")");
}

}  // namespace

int64_t FdsNeeded(int64_t max_collections) {
  return max_collections * kMaxWalFds + kReservedFds;
}

absl::StatusOr<FdLimit> RaiseFdLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(
        absl::StrCat("getrlimit(RLIMIT_NOFILE): ", Errno(errno)));
  }
  FdLimit result;
  result.soft_before = FromRlim(limit.rlim_cur);
  result.soft = result.soft_before;
  result.hard = FromRlim(limit.rlim_max);
  if (limit.rlim_cur == limit.rlim_max) return result;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    result.raise_error = absl::InternalError(
        absl::StrCat("setrlimit(RLIMIT_NOFILE) to the hard limit ", result.hard,
                     ": ", Errno(errno)));
    return result;
  }
  result.soft = result.hard;
  return result;
}

absl::Status CheckFdBudget(int64_t max_collections, uint64_t limit) {
  const int64_t needed = FdsNeeded(max_collections);
  if (static_cast<uint64_t>(needed) <= limit) return absl::OkStatus();
  const int64_t fits =
      (static_cast<int64_t>(limit) - kReservedFds) / kMaxWalFds;
  const std::string remedy =
      fits >= 1 ? absl::StrCat("lower --max_collections to at most ", fits,
                               ", or raise the limit")
                : absl::StrCat("raise the limit to at least ", FdsNeeded(1));
  return absl::InvalidArgumentError(absl::StrCat(
      "--max_collections=", max_collections, " needs up to ", needed,
      " open files (", kMaxWalFds, " per writing collection + ", kReservedFds,
      " for connections, metrics, checkpoints and recovery), but the "
      "open-file limit (RLIMIT_NOFILE) is ",
      limit, ": ", remedy,
      " (ulimit -n, systemd LimitNOFILE=, docker run --ulimit nofile=)"));
}

}  // namespace peakknn::server
