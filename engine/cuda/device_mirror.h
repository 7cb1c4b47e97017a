// Device copies of row blocks: what the CUDA kernels scan.
//
// One Entry per RowBlock (keyed by address, validated by a weak_ptr so a
// freed block's entry is dropped and its memory returned). Each entry holds,
// in device memory and at the block's full capacity (allocated once: blocks
// are the large chunks storage grows by):
//   rows  panel layout, f32 or bf16, exactly as on the host;
//   bias  one float per row;
//   dead  the tombstone bitmap of the last snapshot synced, versioned: a
//         changed host bitmap gets a new device copy and scans in flight keep
//         the one they started with (shared_ptr), just as host snapshots do.
// Sync uploads only rows past what is already on the device, and of a panel
// only the lanes of published rows (the writer may be filling the others),
// through a pinned staging buffer on the mirror's own stream.
//
// Thread-safety: Sync serialises on a mutex; the views it returns stay valid
// while the caller holds the snapshot (its blocks cannot be freed) and the
// returned SyncedSnapshot (its tombstone copies).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/cuda/device_buffer.h"
#include "engine/snapshot.h"
#include "kernels/cuda/device_types.h"

namespace peakknn::cuda {

// The device view of one snapshot.
struct SyncedSnapshot {
  std::vector<kernels::cuda::DeviceRows> blocks;          // snapshot order
  std::vector<std::shared_ptr<const DeviceBuffer>> dead;  // kept alive
};

class DeviceMirror {
 public:
  // limit_bytes: device memory all mirrored blocks may use together.
  DeviceMirror(int64_t limit_bytes, int64_t staging_bytes);

  absl::Status Init();

  // Uploads what `snapshot` has that the device lacks and returns its view.
  // RESOURCE_EXHAUSTED (with sizes) when a block does not fit.
  absl::StatusOr<SyncedSnapshot> Sync(const Snapshot& snapshot);

  // Device bytes held by mirrored blocks. Lock-free: the server reads it
  // after every search batch and acknowledged write.
  int64_t bytes_in_use() const;

 private:
  struct Entry {
    std::weak_ptr<RowBlock> owner;
    DeviceBuffer rows;
    DeviceBuffer bias;
    int64_t uploaded_rows = 0;
    // The host bitmap the device copy was made from; identity = version
    // (published bitmaps are copied on write, never changed).
    std::shared_ptr<const TombstoneBitmap> dead_source;
    std::shared_ptr<const DeviceBuffer> dead;
  };

  absl::StatusOr<Entry*> FindOrCreate(const BlockView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UploadRows(const RowBlock& block, int64_t begin, int64_t end,
                          Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UploadDead(const BlockView& view, Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies `bytes` from host `src` to device `dst` through the staging
  // buffer, waiting for the copies before returning.
  absl::Status Stage(const void* src, void* dst, int64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropFreedBlocks() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t limit_bytes_;
  const int64_t staging_bytes_;
  mutable std::mutex mu_;
  Stream stream_;
  PinnedBuffer staging_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const RowBlock*, std::unique_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  // Changed only under mu_; read without it, so a metrics read never waits
  // behind an upload.
  std::atomic<int64_t> bytes_in_use_{0};
};

}  // namespace peakknn::cuda
