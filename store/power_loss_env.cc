#include "store/power_loss_env.h"

#include <algorithm>
#include <cerrno>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/string_view.h"

namespace peakknn {

// A file or a directory. Invariant (files): data and stable agree on their
// first dirty_from bytes, and dirty_from <= stable.size(); dirty_from ==
// stable.size() means the only unsynced change is bytes appended past the
// stable end.
struct PowerLossEnv::Node {
  bool dir = false;
  std::string data;    // file: the current contents
  std::string stable;  // file: what stable storage holds
  size_t dirty_from = 0;
  using Entries = std::map<std::string, std::shared_ptr<Node>>;
  Entries entries;         // dir: current
  Entries stable_entries;  // dir: as of its last SyncDir

  void Changed(size_t from) { dirty_from = std::min(dirty_from, from); }
};

namespace {

using Node = PowerLossEnv::Node;

absl::Status Errno(std::string_view op, std::string_view path,
                   std::string_view what, int err) {
  std::string message =
      absl::StrCat(AV(op), " ", AV(path), ": ", AV(what), " (errno ", err, ")");
  return err == ENOENT ? absl::NotFoundError(message)
                       : absl::InternalError(message);
}

absl::Status NotFound(std::string_view op, std::string_view path) {
  return Errno(op, path, "No such file or directory", ENOENT);
}

// Reboots the subtree under `node`: what stable storage holds becomes the
// current state. Each node once (see "not modelled" in the header).
void Reboot(Node& node, UnsyncedTail tail, std::mt19937_64& rng,
            std::unordered_set<const Node*>& seen) {
  if (node.dir) {
    node.entries = node.stable_entries;
    for (auto& [name, child] : node.entries) {
      if (seen.insert(child.get()).second) Reboot(*child, tail, rng, seen);
    }
    return;
  }
  if (node.dirty_from == node.stable.size() &&
      node.data.size() > node.stable.size() &&
      tail == UnsyncedTail::kRandomPrefix) {
    const size_t unsynced = node.data.size() - node.stable.size();
    const size_t kept = static_cast<size_t>(rng() % (unsynced + 1));
    node.stable.append(node.data, node.stable.size(), kept);
  }
  node.data = node.stable;
  node.dirty_from = node.data.size();
}

}  // namespace

// A file open for writing. Its node outlives renames and deletes, as an
// open file descriptor does.
class PowerLossFile final : public WritableFile {
 public:
  PowerLossFile(PowerLossEnv* env, std::shared_ptr<Node> node, std::string path,
                uint64_t boot)
      : env_(env),
        node_(std::move(node)),
        path_(std::move(path)),
        boot_(boot) {}

  absl::Status Append(std::string_view data) override {
    std::lock_guard lock(env_->mu_);
    if (absl::Status s = Check("append"); !s.ok()) return s;
    node_->data.append(data);
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    std::lock_guard lock(env_->mu_);
    if (absl::Status s = Check("fdatasync"); !s.ok()) return s;
    if (env_->sync_failures_ > 0) {
      --env_->sync_failures_;
      // The write-back failed: the size reached the disk, the data did
      // not, and the pages count as clean from now on.
      Node& n = *node_;
      n.stable.resize(n.dirty_from);
      n.stable.append(n.data.size() - n.dirty_from, '\0');
      n.dirty_from = n.data.size();
      return Errno("fdatasync", path_, "Input/output error", EIO);
    }
    env_->SyncFile(*node_);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t size) override {
    std::lock_guard lock(env_->mu_);
    if (absl::Status s = Check("ftruncate"); !s.ok()) return s;
    node_->Changed(size);
    node_->data.resize(size);
    return absl::OkStatus();
  }
  absl::Status Close() override { return absl::OkStatus(); }
  uint64_t Size() const override {
    std::lock_guard lock(env_->mu_);
    return node_->data.size();
  }
  const std::string& path() const override { return path_; }

 private:
  absl::Status Check(std::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(env_->mu_) {
    if (absl::Status s = env_->CheckHandle(op, path_, boot_); !s.ok()) return s;
    return env_->Mutate(op, path_);
  }

  PowerLossEnv* const env_;
  const std::shared_ptr<Node> node_;
  const std::string path_;
  const uint64_t boot_;
};

class PowerLossReader final : public SequentialFile {
 public:
  PowerLossReader(PowerLossEnv* env, std::shared_ptr<const Node> node,
                  std::string path, uint64_t boot)
      : env_(env),
        node_(std::move(node)),
        path_(std::move(path)),
        boot_(boot) {}

  absl::StatusOr<size_t> Read(size_t n, char* scratch) override {
    std::lock_guard lock(env_->mu_);
    if (absl::Status s = env_->CheckHandle("read", path_, boot_); !s.ok()) {
      return s;
    }
    const std::string& data = node_->data;
    const size_t got = pos_ < data.size() ? std::min(n, data.size() - pos_) : 0;
    std::copy_n(data.data() + pos_, got, scratch);
    pos_ += got;
    return got;
  }

 private:
  PowerLossEnv* const env_;
  const std::shared_ptr<const Node> node_;
  const std::string path_;
  const uint64_t boot_;
  size_t pos_ = 0;
};

PowerLossEnv::PowerLossEnv(uint64_t seed)
    : root_(std::make_shared<Node>()), rng_(seed) {
  root_->dir = true;
}

PowerLossEnv::~PowerLossEnv() = default;

void PowerLossEnv::SimulatePowerLoss(UnsyncedTail tail) {
  std::lock_guard lock(mu_);
  LosePowerLocked(tail);
}

void PowerLossEnv::ArmPowerLoss(int64_t operations, UnsyncedTail tail) {
  std::lock_guard lock(mu_);
  operations_left_ = std::max<int64_t>(operations, 1);
  armed_tail_ = tail;
}

bool PowerLossEnv::powered() const {
  std::lock_guard lock(mu_);
  return powered_;
}

void PowerLossEnv::LosePowerLocked(UnsyncedTail tail) {
  if (!powered_) return;
  powered_ = false;
  operations_left_ = -1;
  // Nothing changes while the power is off, so the reboot may as well
  // compute the stable state now.
  std::unordered_set<const Node*> seen;
  Reboot(*root_, tail, rng_, seen);
}

void PowerLossEnv::PowerOn() {
  std::lock_guard lock(mu_);
  if (powered_) return;
  powered_ = true;
  ++boot_;
}

void PowerLossEnv::InjectSyncFailure() {
  std::lock_guard lock(mu_);
  ++sync_failures_;
}

absl::Status PowerLossEnv::CheckPower(std::string_view op,
                                      const std::string& path) const {
  if (powered_) return absl::OkStatus();
  return Errno(op, path, "Input/output error, power lost", EIO);
}

absl::Status PowerLossEnv::Mutate(std::string_view op,
                                  const std::string& path) {
  if (operations_left_ > 0 && --operations_left_ == 0) {
    LosePowerLocked(armed_tail_);
  }
  return CheckPower(op, path);
}

absl::Status PowerLossEnv::CheckHandle(std::string_view op,
                                       const std::string& path,
                                       uint64_t boot) const {
  if (boot != boot_) {
    return Errno(op, path, "Input/output error, opened before a power loss",
                 EIO);
  }
  return CheckPower(op, path);
}

void PowerLossEnv::SyncFile(Node& file) {
  file.stable.resize(file.dirty_from);
  file.stable.append(file.data, file.dirty_from);
  file.dirty_from = file.data.size();
}

absl::StatusOr<std::shared_ptr<Node>> PowerLossEnv::Find(
    const std::string& path) const {
  std::shared_ptr<Node> node = root_;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (!node->dir) return NotFound("lookup", path);
    auto it = node->entries.find(std::string(part));
    if (it == node->entries.end()) return NotFound("lookup", path);
    node = it->second;
  }
  return node;
}

absl::StatusOr<std::pair<std::shared_ptr<Node>, std::string>>
PowerLossEnv::FindParent(const std::string& path) const {
  const size_t slash = path.find_last_of('/');
  const std::string name =
      slash == std::string::npos ? path : path.substr(slash + 1);
  if (path.empty() || path[0] != '/' || name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("PowerLossEnv: not an absolute file path: ", path));
  }
  auto parent = Find(path.substr(0, slash));
  if (!parent.ok()) return parent.status();
  if (!(*parent)->dir) return NotFound("lookup", path);
  return std::pair{*std::move(parent), name};
}

absl::StatusOr<std::shared_ptr<Node>> PowerLossEnv::MakeEntry(
    std::string_view op, const std::string& path, bool dir) {
  if (absl::Status s = Mutate(op, path); !s.ok()) return s;
  auto where = FindParent(path);
  if (!where.ok()) return where.status();
  auto& [parent, name] = *where;
  std::shared_ptr<Node>& node = parent->entries[name];
  if (node == nullptr) {
    node = std::make_shared<Node>();
    node->dir = dir;
  } else if (node->dir != dir) {
    return node->dir ? Errno(op, path, "Is a directory", EISDIR)
                     : Errno(op, path, "File exists", EEXIST);
  }
  return node;
}

absl::StatusOr<std::unique_ptr<WritableFile>> PowerLossEnv::NewWritableFile(
    const std::string& path) {
  std::lock_guard lock(mu_);
  auto node = MakeEntry("create", path, /*dir=*/false);
  if (!node.ok()) return node.status();
  // O_TRUNC: an existing file starts over.
  (*node)->Changed(0);
  (*node)->data.clear();
  return std::make_unique<PowerLossFile>(this, *std::move(node), path, boot_);
}

absl::StatusOr<std::shared_ptr<Node>> PowerLossEnv::FindFile(
    std::string_view op, const std::string& path) const {
  if (absl::Status s = CheckPower(op, path); !s.ok()) return s;
  auto node = Find(path);
  if (!node.ok()) return NotFound(op, path);
  if ((*node)->dir) return Errno(op, path, "Is a directory", EISDIR);
  return node;
}

absl::StatusOr<std::unique_ptr<WritableFile>> PowerLossEnv::NewAppendableFile(
    const std::string& path) {
  std::lock_guard lock(mu_);
  auto node = FindFile("open for append", path);
  if (!node.ok()) return node.status();
  return std::make_unique<PowerLossFile>(this, *std::move(node), path, boot_);
}

absl::StatusOr<std::unique_ptr<SequentialFile>> PowerLossEnv::NewSequentialFile(
    const std::string& path) {
  std::lock_guard lock(mu_);
  auto node = FindFile("open", path);
  if (!node.ok()) return node.status();
  return std::make_unique<PowerLossReader>(this, *std::move(node), path, boot_);
}

bool PowerLossEnv::FileExists(const std::string& path) {
  std::lock_guard lock(mu_);
  return powered_ && Find(path).ok();
}

absl::StatusOr<uint64_t> PowerLossEnv::GetFileSize(const std::string& path) {
  std::lock_guard lock(mu_);
  auto node = FindFile("stat", path);
  if (!node.ok()) return node.status();
  return (*node)->data.size();
}

absl::StatusOr<std::vector<std::string>> PowerLossEnv::GetChildren(
    const std::string& dir) {
  std::lock_guard lock(mu_);
  if (absl::Status s = CheckPower("opendir", dir); !s.ok()) return s;
  auto node = Find(dir);
  if (!node.ok()) return NotFound("opendir", dir);
  if (!(*node)->dir) return Errno("opendir", dir, "Not a directory", ENOTDIR);
  std::vector<std::string> names;
  for (const auto& [name, child] : (*node)->entries) names.push_back(name);
  return names;
}

absl::Status PowerLossEnv::DeleteFile(const std::string& path) {
  return RemoveEntry("unlink", path, /*dir=*/false);
}

absl::Status PowerLossEnv::CreateDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  return MakeEntry("mkdir", dir, /*dir=*/true).status();
}

absl::Status PowerLossEnv::DeleteDir(const std::string& dir) {
  return RemoveEntry("rmdir", dir, /*dir=*/true);
}

absl::Status PowerLossEnv::RemoveEntry(std::string_view op,
                                       const std::string& path, bool dir) {
  std::lock_guard lock(mu_);
  if (absl::Status s = Mutate(op, path); !s.ok()) return s;
  auto where = FindParent(path);
  if (!where.ok()) return where.status();
  auto& [parent, name] = *where;
  auto it = parent->entries.find(name);
  if (it == parent->entries.end()) return NotFound(op, path);
  if (it->second->dir != dir) {
    return dir ? Errno(op, path, "Not a directory", ENOTDIR)
               : Errno(op, path, "Is a directory", EISDIR);
  }
  if (dir && !it->second->entries.empty()) {
    return Errno(op, path, "Directory not empty", ENOTEMPTY);
  }
  parent->entries.erase(it);
  return absl::OkStatus();
}

absl::Status PowerLossEnv::RenameFile(const std::string& from,
                                      const std::string& to) {
  std::lock_guard lock(mu_);
  const std::string op = absl::StrCat("rename to ", to, " from");
  if (absl::Status s = Mutate(op, from); !s.ok()) return s;
  auto source = FindParent(from);
  if (!source.ok()) return source.status();
  auto target = FindParent(to);
  if (!target.ok()) return target.status();
  auto& [from_dir, from_name] = *source;
  auto& [to_dir, to_name] = *target;
  auto it = from_dir->entries.find(from_name);
  if (it == from_dir->entries.end()) return NotFound(op, from);
  std::shared_ptr<Node> node = it->second;
  if (auto old = to_dir->entries.find(to_name); old != to_dir->entries.end()) {
    if (old->second == node) return absl::OkStatus();
    if (old->second->dir != node->dir ||
        (old->second->dir && !old->second->entries.empty())) {
      return Errno(op, from, "cannot replace the target", EISDIR);
    }
  }
  from_dir->entries.erase(it);
  to_dir->entries[to_name] = std::move(node);
  return absl::OkStatus();
}

absl::Status PowerLossEnv::TruncateFile(const std::string& path,
                                        uint64_t size) {
  std::lock_guard lock(mu_);
  if (absl::Status s = Mutate("truncate", path); !s.ok()) return s;
  auto node = Find(path);
  if (!node.ok()) return NotFound("truncate", path);
  if ((*node)->dir) return Errno("truncate", path, "Is a directory", EISDIR);
  Node& file = **node;
  file.Changed(std::min<size_t>(size, file.data.size()));
  file.data.resize(size);
  return absl::OkStatus();
}

absl::Status PowerLossEnv::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (absl::Status s = Mutate("fsync directory", dir); !s.ok()) return s;
  auto node = Find(dir);
  if (!node.ok()) return NotFound("open directory", dir);
  if (!(*node)->dir)
    return Errno("fsync directory", dir, "Not a directory", ENOTDIR);
  (*node)->stable_entries = (*node)->entries;
  return absl::OkStatus();
}

}  // namespace peakknn
