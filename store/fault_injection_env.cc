#include "store/fault_injection_env.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace peakknn {

class FaultInjectionFile final : public WritableFile {
 public:
  FaultInjectionFile(FaultInjectionEnv* env, std::unique_ptr<WritableFile> base)
      : env_(env), base_(std::move(base)) {}

  absl::Status Append(std::string_view data) override {
    if (env_->Fire(env_->no_space_)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "append ", path(), ": No space left on device (errno 28, injected)"));
    }
    if (env_->Fire(env_->short_writes_)) {
      const absl::Status prefix =
          base_->Append(data.substr(0, data.size() / 2));
      if (!prefix.ok()) return prefix;
      return absl::InternalError(
          absl::StrCat("append ", path(), ": short write, ", data.size() / 2,
                       " of ", data.size(), " bytes (injected EIO)"));
    }
    return base_->Append(data);
  }
  absl::Status Sync() override {
    if (env_->Fire(env_->sync_failures_)) {
      return absl::InternalError(absl::StrCat(
          "fdatasync ", path(), ": Input/output error (errno 5, injected)"));
    }
    return base_->Sync();
  }
  absl::Status Truncate(uint64_t size) override {
    return base_->Truncate(size);
  }
  absl::Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectionEnv* const env_;
  const std::unique_ptr<WritableFile> base_;
};

bool FaultInjectionEnv::Fire(std::atomic<int64_t>& counter) {
  int64_t armed = counter.load();
  while (armed > 0) {
    if (counter.compare_exchange_weak(armed, armed - 1)) {
      fired_.fetch_add(1);
      return true;
    }
  }
  return false;
}

void FaultInjectionEnv::InjectCreateFailure(std::string path_part) {
  std::lock_guard lock(create_mu_);
  create_failures_.push_back(std::move(path_part));
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewWritableFile(const std::string& path) {
  {
    std::lock_guard lock(create_mu_);
    const auto armed = std::find_if(
        create_failures_.begin(), create_failures_.end(),
        [&](const std::string& part) { return path.find(part) != path.npos; });
    if (armed != create_failures_.end()) {
      create_failures_.erase(armed);
      fired_.fetch_add(1);
      return absl::InternalError(absl::StrCat(
          "create ", path, ": Too many open files (errno 24, injected)"));
    }
  }
  auto file = base_->NewWritableFile(path);
  if (!file.ok()) return file.status();
  return std::make_unique<FaultInjectionFile>(this, *std::move(file));
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewAppendableFile(const std::string& path) {
  auto file = base_->NewAppendableFile(path);
  if (!file.ok()) return file.status();
  return std::make_unique<FaultInjectionFile>(this, *std::move(file));
}

absl::Status FaultInjectionEnv::RenameFile(const std::string& from,
                                           const std::string& to) {
  if (Fire(rename_failures_)) {
    return absl::InternalError(absl::StrCat("rename to ", to, " from ", from,
                                            ": Input/output error (injected)"));
  }
  return base_->RenameFile(from, to);
}

absl::Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  if (Fire(sync_failures_)) {
    return absl::InternalError(absl::StrCat(
        "fsync directory ", dir, ": Input/output error (errno 5, injected)"));
  }
  return base_->SyncDir(dir);
}

}  // namespace peakknn
