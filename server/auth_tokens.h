// Role tokens: the --auth_tokens_file format and the look-up of a presented
// bearer token.
//
// File format: one "<role> <token>" per line, separated by spaces or tabs;
// blank lines and lines whose first non-blank character is '#' are
// ignored. Roles: read, write, admin. A token is 16 to 4096 printable
// ASCII characters without whitespace, and appears at most once; a file
// needs at least one (one with none would refuse every call). Errors
// name the file and line and never echo any field of the line (a line
// with its fields swapped would otherwise print its token).
//
// Tokens are kept only as SHA-256 digests, and Find compares the digest of
// the presented token with every entry's without stopping at the first
// difference, so its time does not depend on how much of a token matched.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace peakknn::server {

// Each role may call what the roles before it may (server/authorizer.h
// has the method table).
enum class Role { kRead = 1, kWrite = 2, kAdmin = 3 };

// "read", "write" or "admin".
absl::string_view RoleName(Role role);

class TokenTable {
 public:
  // Parses a tokens file's `text`; errors are INVALID_ARGUMENT
  // "<path>:<line>: ...".
  static absl::StatusOr<TokenTable> Parse(absl::string_view text,
                                          absl::string_view path);
  // Reads and parses `path`; an unreadable file is INVALID_ARGUMENT naming
  // it.
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The role `token` was given, or nullopt for an unknown token. Takes the
  // same time whichever entry (if any) matches and however much of it does.
  std::optional<Role> Find(absl::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct Entry {
    Digest digest;  // SHA-256 of the token
    Role role;
  };
  static Digest Hash(absl::string_view token);

  std::vector<Entry> entries_;  // digests distinct
};

}  // namespace peakknn::server
