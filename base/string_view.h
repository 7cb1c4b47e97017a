// Debian 12's Abseil is built with its own absl::string_view type (not
// std::string_view), so absl::StrCat, SimpleAtoi and friends do not accept
// std::string_view. AV() converts without copying.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace peakknn {

inline absl::string_view AV(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view SV(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace peakknn
