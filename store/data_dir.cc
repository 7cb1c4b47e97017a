#include "store/data_dir.h"

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace peakknn {
namespace {

constexpr std::string_view kCheckpointPrefix = "ckpt-";
constexpr std::string_view kWalPrefix = "wal-", kWalSuffix = ".log";
constexpr std::string_view kCreatingSuffix = ".creating";
constexpr std::string_view kDroppingSuffix = ".dropping";

// Where collection directory `dir` goes to be deleted.
std::string DroppingDir(std::string_view dir) {
  return absl::StrCat(AV(dir), AV(kDroppingSuffix));
}

}  // namespace

std::string CheckpointFileName(uint64_t sequence) {
  char name[48];
  std::snprintf(name, sizeof(name), "ckpt-%020llu.dat",
                static_cast<unsigned long long>(sequence));
  return name;
}

bool IsCheckpointFileName(std::string_view name) {
  return name.starts_with(kCheckpointPrefix);
}

std::optional<uint64_t> ParseCheckpointFileName(std::string_view name) {
  constexpr std::string_view kSuffix = ".dat";
  if (!name.starts_with(kCheckpointPrefix) || !name.ends_with(kSuffix)) {
    return std::nullopt;
  }
  std::string_view digits = name;
  digits.remove_prefix(kCheckpointPrefix.size());
  digits.remove_suffix(kSuffix.size());
  uint64_t sequence;
  // Round trip: only the writer's own spelling (no sign, spaces or path).
  if (!absl::SimpleAtoi(AV(digits), &sequence) ||
      CheckpointFileName(sequence) != name) {
    return std::nullopt;
  }
  return sequence;
}

std::string WalSegmentName(uint64_t number) {
  char name[32];
  std::snprintf(name, sizeof(name), "wal-%08llu.log",
                static_cast<unsigned long long>(number));
  return name;
}

std::optional<uint64_t> ParseWalSegmentName(std::string_view name) {
  if (name.size() <= kWalPrefix.size() + kWalSuffix.size() ||
      !name.starts_with(kWalPrefix) || !name.ends_with(kWalSuffix)) {
    return std::nullopt;
  }
  name.remove_prefix(kWalPrefix.size());
  name.remove_suffix(kWalSuffix.size());
  uint64_t number;
  if (!absl::SimpleAtoi(AV(name), &number)) return std::nullopt;
  return number;
}

DataDirEntry ClassifyDataDirEntry(Env* env, const std::string& data_dir,
                                  std::string_view name) {
  if (name.ends_with(kCreatingSuffix) || name.ends_with(kDroppingSuffix)) {
    return DataDirEntry::kInterrupted;
  }
  return env->FileExists(JoinPath(JoinPath(data_dir, name), kManifestName))
             ? DataDirEntry::kCollection
             : DataDirEntry::kOther;
}

std::string CreatingDir(std::string_view dir) {
  return absl::StrCat(AV(dir), AV(kCreatingSuffix));
}

absl::Status DropCollectionDir(Env* env, const std::string& dir) {
  const std::string doomed = DroppingDir(dir);
  if (absl::Status s = env->RenameFile(dir, doomed); !s.ok()) return s;
  if (absl::Status s = env->SyncDir(ParentDir(dir)); !s.ok()) return s;
  return RemoveFlatDir(env, doomed);
}

absl::Status RemoveFlatDir(Env* env, const std::string& dir) {
  auto names = env->GetChildren(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (absl::Status s = env->DeleteFile(JoinPath(dir, name)); !s.ok()) {
      return s;
    }
  }
  return env->DeleteDir(dir);
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  return absl::StrCat(AV(dir), "/", AV(name));
}

std::string ParentDir(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

}  // namespace peakknn
