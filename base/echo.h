// Client input echoed in error messages. A message names the value at
// fault, but the value came from a client: it may be huge (a status message
// travels in a gRPC trailer, and a default client refuses trailers over
// 8 KiB, so a 100 KB name quoted whole turns NOT_FOUND into "metadata size
// exceeds limit"), hold bytes that are not text, or be a double that the
// default formatting rounds (1.0000001 printed as "1", which reads as
// valid).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace peakknn {

// Bytes of client text an error message quotes at most.
inline constexpr size_t kMaxEchoedBytes = 64;

// `text` in double quotes, C-escaped; beyond kMaxEchoedBytes cut and
// marked with its full length: "xxxx..."... (102400 bytes).
std::string QuoteInput(std::string_view text);

// The shortest decimal text that reads back as exactly `value` (1.0000001,
// 0.95, 1e-300, inf, nan).
std::string ExactDouble(double value);

}  // namespace peakknn
