// Where the store reports what recovery and maintenance did, one line per
// event.
#pragma once

#include <functional>
#include <string_view>

namespace peakknn {

// Receives one line, without a trailing newline. Called from the store's
// threads; must be thread-safe and must not call back into the store.
using LogFunction = std::function<void(std::string_view)>;

// `log`, or when it is empty a function that writes "peakknn: <line>" to
// standard error.
LogFunction LogOrStderr(LogFunction log);

}  // namespace peakknn
