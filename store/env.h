// The file-system seam (LevelDB's Env idea): every byte the store writes or
// reads goes through an Env, so tests can swap in FaultInjectionEnv
// (store/fault_injection_env.h) and make fsync, write or rename fail.
//
// Errors are absl::Status values whose message names the operation, the path
// and the OS error, e.g. "append /data/c/wal-00000003.log: No space left on
// device (errno 28)". ENOSPC maps to RESOURCE_EXHAUSTED, ENOENT to NOT_FOUND,
// everything else to INTERNAL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace peakknn {

// A file being written front to back. Not thread-safe.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at the end, or fails; on failure a prefix may have
  // reached the file (Size() then counts only what is known written).
  virtual absl::Status Append(std::string_view data) = 0;
  // fdatasync: everything appended is on stable storage when it returns OK.
  virtual absl::Status Sync() = 0;
  // Cuts the file to `size` bytes (<= Size()) and continues writing there.
  virtual absl::Status Truncate(uint64_t size) = 0;
  virtual absl::Status Close() = 0;
  // Bytes in the file as far as this writer knows.
  virtual uint64_t Size() const = 0;
  virtual const std::string& path() const = 0;
};

// A file read front to back. Not thread-safe.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into scratch; returns how many (0 only at EOF).
  virtual absl::StatusOr<size_t> Read(size_t n, char* scratch) = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // Creates `path`, truncating an existing file.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens the existing file `path` for writing at its end (Size() starts at
  // its length); NOT_FOUND when it does not exist.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, without "." and "..".
  virtual absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) = 0;
  virtual absl::Status DeleteFile(const std::string& path) = 0;
  // Creates `dir`; OK when it already exists.
  virtual absl::Status CreateDir(const std::string& dir) = 0;
  // Removes an empty directory.
  virtual absl::Status DeleteDir(const std::string& dir) = 0;
  // rename(2): atomically replaces `to`.
  virtual absl::Status RenameFile(const std::string& from,
                                  const std::string& to) = 0;
  virtual absl::Status TruncateFile(const std::string& path, uint64_t size) = 0;
  // fsync of a directory, making creates, renames and deletes in it durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;

  // The process-wide POSIX Env.
  static Env* Default();
};

// Whole-file helpers on top of an Env.
absl::StatusOr<std::string> ReadFileToString(Env* env, const std::string& path);
// Writes `data` to TempFilePath(path), fsyncs it, renames it over `path` and
// fsyncs the directory `dir`: after OK the file is durable and readers see
// either the old or the new contents, never a mix.
absl::Status WriteFileAtomically(Env* env, const std::string& dir,
                                 const std::string& path,
                                 std::string_view data);

// Where a file is written before it is renamed to `path`: path + ".tmp".
std::string TempFilePath(std::string_view path);
bool IsTempFilePath(std::string_view path);

}  // namespace peakknn
