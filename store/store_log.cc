#include "store/store_log.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace peakknn {

LogFunction LogOrStderr(LogFunction log) {
  if (log) return log;
  return [](std::string_view line) {
    std::fprintf(stderr, "peakknn: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  };
}

void LogThrottle::Log(std::string_view line, absl::Time now) {
  int64_t held_back;
  {
    std::lock_guard lock(mu_);
    if (now - last_ < interval_) {
      ++held_back_;
      return;
    }
    last_ = now;
    held_back = held_back_;
    held_back_ = 0;
  }
  if (held_back == 0) {
    log_(line);
  } else {
    log_(absl::StrCat(AV(line), " (", held_back,
                      " similar lines held back since the last one)"));
  }
}

}  // namespace peakknn
