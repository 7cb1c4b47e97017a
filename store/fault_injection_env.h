// An Env for tests that forwards to a real Env and fails chosen operations.
//
// Each Inject* call arms one fault that fires on the next matching operation
// (on any file created through this Env) and then disarms itself, so a test
// can say "the next fsync fails" and check that exactly that write fails with
// a clear error while everything acknowledged before stays intact.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "store/env.h"

namespace peakknn {

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(Env* base) : base_(base) {}

  // The next WritableFile::Sync or SyncDir fails with EIO, syncing nothing.
  void InjectSyncFailure() { sync_failures_.fetch_add(1); }
  // The next Append writes half of its bytes, then fails with EIO.
  void InjectShortWrite() { short_writes_.fetch_add(1); }
  // The next Append writes nothing and fails with ENOSPC.
  void InjectNoSpace() { no_space_.fetch_add(1); }
  // The next RenameFile fails with EIO, renaming nothing.
  void InjectRenameFailure() { rename_failures_.fetch_add(1); }
  // The next NewWritableFile of a path containing `path_part` ("" for any
  // path) fails with EMFILE, creating nothing: what running out of file
  // descriptors or inodes looks like. (Reopening an existing file,
  // NewAppendableFile, is not affected.)
  void InjectCreateFailure(std::string path_part);
  // How many injected faults have fired.
  int64_t faults_fired() const { return fired_.load(); }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override;
  // Subject to the same append and sync faults as a created file.
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    return base_->NewSequentialFile(path);
  }
  bool FileExists(const std::string& path) override {
    return base_->FileExists(path);
  }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    return base_->GetFileSize(path);
  }
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override {
    return base_->GetChildren(dir);
  }
  absl::Status DeleteFile(const std::string& path) override {
    return base_->DeleteFile(path);
  }
  absl::Status CreateDir(const std::string& dir) override {
    return base_->CreateDir(dir);
  }
  absl::Status DeleteDir(const std::string& dir) override {
    return base_->DeleteDir(dir);
  }
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override;
  absl::Status TruncateFile(const std::string& path, uint64_t size) override {
    return base_->TruncateFile(path, size);
  }
  absl::Status SyncDir(const std::string& dir) override;

 private:
  friend class FaultInjectionFile;
  // Consumes one armed fault from `counter`; true when one fired.
  bool Fire(std::atomic<int64_t>& counter);

  Env* const base_;
  std::mutex create_mu_;
  // One armed create failure per entry: its path_part.
  std::vector<std::string> create_failures_ ABSL_GUARDED_BY(create_mu_);
  std::atomic<int64_t> sync_failures_{0};
  std::atomic<int64_t> short_writes_{0};
  std::atomic<int64_t> no_space_{0};
  std::atomic<int64_t> rename_failures_{0};
  std::atomic<int64_t> fired_{0};
};

}  // namespace peakknn
