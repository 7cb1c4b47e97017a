#include "router/applied_position.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/string_view.h"

namespace peakknn {

absl::Status AppliedPositions::Init() { return env_->CreateDir(dir_); }

std::string AppliedPositions::PathOf(std::string_view collection) const {
  return absl::StrCat(dir_, "/", AV(collection));
}

absl::StatusOr<std::optional<AppliedPosition>> AppliedPositions::Read(
    std::string_view collection) const {
  const std::string path = PathOf(collection);
  if (!env_->FileExists(path)) return std::nullopt;
  absl::StatusOr<std::string> contents = ReadFileToString(env_, path);
  if (!contents.ok()) return contents.status();
  const std::vector<absl::string_view> fields = absl::StrSplit(
      absl::StripSuffix(*contents, "\n"), absl::MaxSplits(' ', 1));
  AppliedPosition position;
  if (fields.size() != 2 ||
      !absl::SimpleAtoi(fields[0], &position.creation_revision) ||
      !absl::SimpleAtoi(fields[1], &position.sequence)) {
    return absl::DataLossError(
        absl::StrCat("applied position file ", path, " holds \"",
                     absl::CHexEscape(*contents),
                     "\", not \"<creation_revision> <sequence>\""));
  }
  return position;
}

absl::Status AppliedPositions::Write(std::string_view collection,
                                     const AppliedPosition& position) {
  return WriteFileAtomically(
      env_, dir_, PathOf(collection),
      absl::StrCat(position.creation_revision, " ", position.sequence, "\n"));
}

absl::Status AppliedPositions::Delete(std::string_view collection) {
  const std::string path = PathOf(collection);
  if (!env_->FileExists(path)) return absl::OkStatus();
  if (absl::Status s = env_->DeleteFile(path); !s.ok()) return s;
  return env_->SyncDir(dir_);
}

}  // namespace peakknn
