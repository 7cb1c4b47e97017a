#include "server/auth_tokens.h"

#include <openssl/sha.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace peakknn::server {
namespace {

constexpr size_t kMinTokenBytes = 16;
constexpr size_t kMaxTokenBytes = 4096;

std::optional<Role> ParseRole(absl::string_view text) {
  if (text == "read") return Role::kRead;
  if (text == "write") return Role::kWrite;
  if (text == "admin") return Role::kAdmin;
  return std::nullopt;
}

// Visible ASCII only: what an HTTP/2 header value carries unchanged.
bool IsTokenText(absl::string_view token) {
  for (const char c : token) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

TokenTable::Digest TokenTable::Hash(absl::string_view token) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest.data());
  return digest;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text,
                                             absl::string_view path) {
  TokenTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    const auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": ", what));
    };
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return error(absl::StrCat("expected '<role> <token>', found ",
                                fields.size(), " fields"));
    }
    const std::optional<Role> role = ParseRole(fields[0]);
    if (!role.has_value()) {
      return error("the first field is not a role (read, write or admin)");
    }
    const absl::string_view token = fields[1];
    if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes) {
      return error(absl::StrCat("the token has ", token.size(),
                                " characters; it needs ", kMinTokenBytes,
                                " to ", kMaxTokenBytes));
    }
    if (!IsTokenText(token)) {
      return error("the token has a character outside printable ASCII");
    }
    const Digest digest = Hash(token);
    for (const Entry& entry : table.entries_) {
      if (entry.digest == digest) {
        return error("the token appears on an earlier line too");
      }
    }
    table.entries_.push_back(Entry{digest, *role});
  }
  if (table.entries_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": no tokens (every call would be refused); add lines "
                     "'<role> <token>'"));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.is_open() || in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth_tokens_file=", path, ": cannot read it"));
  }
  return Parse(text.str(), path);
}

std::optional<Role> TokenTable::Find(absl::string_view token) const {
  const Digest digest = Hash(token);
  // Every entry, every byte: no branch depends on the digests' contents.
  // Digests are distinct, so at most one entry matches and `role` is its
  // role (0 for none).
  int role = 0;
  for (const Entry& entry : entries_) {
    unsigned difference = 0;
    for (size_t i = 0; i < digest.size(); ++i) {
      difference |= static_cast<unsigned>(entry.digest[i] ^ digest[i]);
    }
    // 1 when difference == 0, else 0 (difference is at most 255).
    const unsigned equal = ((difference - 1) >> 8) & 1;
    role |= static_cast<int>(equal) * static_cast<int>(entry.role);
  }
  if (role == 0) return std::nullopt;
  return static_cast<Role>(role);
}

}  // namespace peakknn::server
