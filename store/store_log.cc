#include "store/store_log.h"

#include <cstdio>

namespace peakknn {

LogFunction LogOrStderr(LogFunction log) {
  if (log) return log;
  return [](std::string_view line) {
    std::fprintf(stderr, "peakknn: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  };
}

}  // namespace peakknn
