// An in-memory Env for tests that models what a power cut leaves on disk
// (after LevelDB's fault_injection_test and SQLite's crash VFS): every file
// has its current contents and the contents stable storage holds, every
// directory its current entries and the entries stable storage holds.
// SimulatePowerLoss (or an armed ArmPowerLoss) cuts the power: from then on
// every operation fails with EIO, open files included, until PowerOn
// replaces the current state with the stable one, as a reboot would.
//
// What is modelled (the POSIX minimum, so stricter than ext4's journal):
// - File data: WritableFile::Sync (fdatasync) makes the file's contents
//   and size stable. Nothing else does. At a power loss a file whose only
//   unsynced change is bytes appended past its stable end keeps a prefix
//   of them: none in UnsyncedTail::kDropped (LevelDB's model: every file
//   cut to its synced length), a random prefix, cut at any byte, in
//   kRandomPrefix (background writeback ran part way; this is what leaves
//   torn records). A file with any other unsynced change (a truncation,
//   TruncateFile, a rewrite from the start after NewWritableFile of an
//   existing path) goes back to its stable contents: the change is undone.
// - Directory entries: SyncDir(dir) makes dir's current entries (names and
//   the files or directories they name) stable; nothing else does. So a
//   file or directory created in a directory that was not synced after
//   the create disappears (with everything in it); a delete not followed
//   by a SyncDir is undone (the file comes back with its stable contents);
//   a rename not followed by a SyncDir of the target's directory is undone
//   (the old name names the file again, the new name names whatever it
//   named before, or nothing). A file's data and its directory entry are
//   independent, as on POSIX: a synced file in an unsynced directory is
//   lost, and a synced entry for an unsynced file shows its stable
//   contents (empty if it never synced).
// - A failed fsync (InjectSyncFailure) behaves as Linux does after a failed
//   writeback ("fsyncgate"): the file's unsynced bytes are dropped from the
//   page cache's write-back queue, so stable storage holds zeros where they
//   were (the size reached the disk, the data did not), and a later Sync
//   that succeeds does not write them. Reads in this boot still see them.
//
// Not modelled: a rename across two directories is stable per directory
// (each side's own SyncDir), where a journal commits both at once (the
// store renames within one directory only); sector-level tearing or
// garbage inside synced data; metadata other than names and sizes; reads
// failing after the power loss for anything but EIO; hard links.
//
// Paths are absolute ('/'-separated); "/" exists and is stable. Thread-safe:
// one mutex serialises every operation, so the power loss falls between two
// operations, never inside one.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "store/env.h"

namespace peakknn {

// What a power loss does with bytes appended to a file since its last
// sync; see PowerLossEnv.
enum class UnsyncedTail { kDropped, kRandomPrefix };

class PowerLossEnv final : public Env {
 public:
  // `seed` drives the random prefixes of kRandomPrefix.
  explicit PowerLossEnv(uint64_t seed);
  ~PowerLossEnv() override;

  // The power goes off now.
  void SimulatePowerLoss(UnsyncedTail tail);
  // The power goes off just before the `operations`-th state-changing
  // operation from now (create, append, sync, truncate, delete, rename,
  // mkdir, SyncDir), which fails: a cut between any two of them.
  void ArmPowerLoss(int64_t operations, UnsyncedTail tail);
  bool powered() const;
  // Reboots: current state := stable state; files opened before the loss
  // keep failing. A no-op while powered.
  void PowerOn();
  // The next WritableFile::Sync fails with EIO, dropping the file's
  // unsynced bytes (see above).
  void InjectSyncFailure();

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override;
  bool FileExists(const std::string& path) override;
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override;
  absl::Status DeleteFile(const std::string& path) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::Status DeleteDir(const std::string& dir) override;
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override;
  absl::Status TruncateFile(const std::string& path, uint64_t size) override;
  absl::Status SyncDir(const std::string& dir) override;

  struct Node;

 private:
  friend class PowerLossFile;
  friend class PowerLossReader;

  // OK while powered; otherwise EIO for `op` on `path`.
  absl::Status CheckPower(std::string_view op, const std::string& path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CheckPower for a state-changing operation: counts it towards an armed
  // power loss, which it may trigger.
  absl::Status Mutate(std::string_view op, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LosePowerLocked(UnsyncedTail tail) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The node `path` names, or NOT_FOUND.
  absl::StatusOr<std::shared_ptr<Node>> Find(const std::string& path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The directory holding `path` and the last component's name.
  absl::StatusOr<std::pair<std::shared_ptr<Node>, std::string>> FindParent(
      const std::string& path) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The file `path` names, for `op`: powered, present, not a directory.
  absl::StatusOr<std::shared_ptr<Node>> FindFile(std::string_view op,
                                                 const std::string& path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The file (dir false) or directory `path` names, created if missing:
  // NewWritableFile and CreateDir.
  absl::StatusOr<std::shared_ptr<Node>> MakeEntry(std::string_view op,
                                                  const std::string& path,
                                                  bool dir)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DeleteFile (dir false) and DeleteDir (dir true, which must be empty).
  absl::Status RemoveEntry(std::string_view op, const std::string& path,
                           bool dir);
  // A handle's check: powered, and opened in this boot.
  absl::Status CheckHandle(std::string_view op, const std::string& path,
                           uint64_t boot) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SyncFile(Node& file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable std::mutex mu_;
  std::shared_ptr<Node> root_ ABSL_GUARDED_BY(mu_);
  bool powered_ ABSL_GUARDED_BY(mu_) = true;
  // Handles remember the boot they were opened in; older ones fail.
  uint64_t boot_ ABSL_GUARDED_BY(mu_) = 0;
  // State-changing operations left before an armed power loss; -1: none.
  int64_t operations_left_ ABSL_GUARDED_BY(mu_) = -1;
  UnsyncedTail armed_tail_ ABSL_GUARDED_BY(mu_) = UnsyncedTail::kDropped;
  int64_t sync_failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace peakknn
