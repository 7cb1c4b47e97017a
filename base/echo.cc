#include "base/echo.h"

#include <charconv>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace peakknn {

std::string QuoteInput(std::string_view text) {
  if (text.size() <= kMaxEchoedBytes) {
    return absl::StrCat("\"", absl::CEscape(AV(text)), "\"");
  }
  return absl::StrCat("\"", absl::CEscape(AV(text.substr(0, kMaxEchoedBytes))),
                      "...\" (", text.size(), " bytes)");
}

std::string ExactDouble(double value) {
  char buffer[32];  // the longest shortest form is 24 characters
  const std::to_chars_result r =
      std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, r.ptr);
}

}  // namespace peakknn
