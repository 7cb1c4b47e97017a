#include "engine/cuda/device_mirror.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device_scan.h"
#include "kernels/layout.h"

namespace peakknn::cuda {
namespace {

using kernels::kPanelRows;
using kernels::cuda::CudaStatus;

// A panel is `groups` runs of 16 lanes x 4 bytes: f32 [d][lane], bf16
// [d/2][lane][2]. One lane of one group is 4 bytes in both.
constexpr int64_t kLaneBytes = 4;
constexpr int64_t kGroupBytes = kPanelRows * kLaneBytes;
// Staging must hold a panel of the largest dim.
constexpr int64_t kMinStagingBytes = int64_t{kMaxDim} * kGroupBytes;

int64_t PanelGroups(const RowBlock& block) {
  return block.dtype() == DType::kF32 ? kernels::PaddedDimF32(block.dim())
                                      : kernels::PaddedDimBf16(block.dim()) / 2;
}

kernels::RowType RowTypeOf(DType dtype) {
  return dtype == DType::kF32 ? kernels::RowType::kF32
                              : kernels::RowType::kBf16;
}

}  // namespace

DeviceMirror::DeviceMirror(int64_t limit_bytes, int64_t staging_bytes)
    : limit_bytes_(limit_bytes),
      staging_bytes_(std::max(staging_bytes, kMinStagingBytes)) {}

absl::Status DeviceMirror::Init() {
  std::lock_guard lock(mu_);
  if (absl::Status s = stream_.Create(); !s.ok()) return s;
  return staging_.Reserve(staging_bytes_, "the row upload staging buffer");
}

int64_t DeviceMirror::bytes_in_use() const {
  return bytes_in_use_.load(std::memory_order_relaxed);
}

void DeviceMirror::DropFreedBlocks() {
  absl::erase_if(entries_, [this](const auto& item) {
    if (!item.second->owner.expired()) return false;
    bytes_in_use_ -= item.second->rows.bytes() + item.second->bias.bytes();
    if (item.second->dead != nullptr) {
      bytes_in_use_ -= item.second->dead->bytes();
    }
    return true;
  });
}

absl::StatusOr<DeviceMirror::Entry*> DeviceMirror::FindOrCreate(
    const BlockView& view) {
  const RowBlock& block = *view.block;
  auto it = entries_.find(&block);
  if (it != entries_.end()) return it->second.get();

  const int64_t row_bytes = PanelGroups(block) * kGroupBytes / kPanelRows;
  const int64_t rows_bytes = block.capacity() * row_bytes;
  const int64_t bias_bytes = block.capacity() * int64_t{sizeof(float)};
  if (bytes_in_use_ + rows_bytes + bias_bytes > limit_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the CUDA backend cannot mirror the block at slot ", block.slot_base(),
        " (", block.capacity(), " rows x ", block.dim(), " ",
        std::string(DTypeName(block.dtype())), " = ", rows_bytes + bias_bytes,
        " bytes): ", bytes_in_use_.load(), " of its ", limit_bytes_,
        " bytes of device memory are in use"));
  }
  auto entry = std::make_unique<Entry>();
  entry->owner = view.block;
  const std::string what =
      absl::StrCat("the block at slot ", block.slot_base());
  absl::StatusOr<DeviceBuffer> rows =
      DeviceBuffer::Allocate(rows_bytes, absl::StrCat("rows of ", what));
  if (!rows.ok()) return rows.status();
  absl::StatusOr<DeviceBuffer> bias =
      DeviceBuffer::Allocate(bias_bytes, absl::StrCat("bias of ", what));
  if (!bias.ok()) return bias.status();
  entry->rows = *std::move(rows);
  entry->bias = *std::move(bias);
  bytes_in_use_ += rows_bytes + bias_bytes;
  Entry* raw = entry.get();
  entries_.emplace(&block, std::move(entry));
  return raw;
}

absl::Status DeviceMirror::Stage(const void* src, void* dst, int64_t bytes) {
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  for (int64_t done = 0; done < bytes;) {
    const int64_t piece = std::min(bytes - done, staging_.bytes());
    std::memcpy(staging_.data(), from + done, static_cast<size_t>(piece));
    if (absl::Status s =
            CudaStatus(cudaMemcpyAsync(to + done, staging_.data(),
                                       static_cast<size_t>(piece),
                                       cudaMemcpyHostToDevice, stream_.get()),
                       "uploading rows");
        !s.ok()) {
      return s;
    }
    // The staging buffer is refilled next: wait for this copy.
    if (absl::Status s = stream_.Synchronize("uploading rows"); !s.ok()) {
      return s;
    }
    done += piece;
  }
  return absl::OkStatus();
}

absl::Status DeviceMirror::UploadRows(const RowBlock& block, int64_t begin,
                                      int64_t end, Entry& entry) {
  const int64_t groups = PanelGroups(block);
  const int64_t panel_bytes = groups * kGroupBytes;
  const char* host = static_cast<const char*>(block.panels());
  char* device = entry.rows.as<char>();

  // Copies lanes [l0, l1) of panel p: only those rows are published.
  auto upload_lanes = [&](int64_t p, int64_t l0, int64_t l1) -> absl::Status {
    char* stage = staging_.as<char>();
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t offset =
          p * panel_bytes + g * kGroupBytes + l0 * kLaneBytes;
      std::memcpy(stage + g * kGroupBytes, host + offset,
                  static_cast<size_t>((l1 - l0) * kLaneBytes));
    }
    if (absl::Status s = CudaStatus(
            cudaMemcpy2DAsync(device + p * panel_bytes + l0 * kLaneBytes,
                              kGroupBytes, stage, kGroupBytes,
                              static_cast<size_t>((l1 - l0) * kLaneBytes),
                              static_cast<size_t>(groups),
                              cudaMemcpyHostToDevice, stream_.get()),
            "uploading a partial panel");
        !s.ok()) {
      return s;
    }
    return stream_.Synchronize("uploading a partial panel");
  };

  int64_t row = begin;
  if (row % kPanelRows != 0) {  // finish the panel a previous sync started
    const int64_t p = row / kPanelRows;
    const int64_t stop = std::min(end, (p + 1) * kPanelRows);
    if (absl::Status s =
            upload_lanes(p, row % kPanelRows, stop - p * kPanelRows);
        !s.ok()) {
      return s;
    }
    row = stop;
  }
  const int64_t full_end = end / kPanelRows * kPanelRows;
  if (row < full_end) {  // whole panels in one contiguous copy
    const int64_t offset = row / kPanelRows * panel_bytes;
    if (absl::Status s = Stage(host + offset, device + offset,
                               (full_end - row) / kPanelRows * panel_bytes);
        !s.ok()) {
      return s;
    }
    row = full_end;
  }
  if (row < end) {  // the published lanes of the last panel
    if (absl::Status s = upload_lanes(row / kPanelRows, 0, end - row);
        !s.ok()) {
      return s;
    }
  }
  return Stage(block.bias() + begin, entry.bias.as<float>() + begin,
               (end - begin) * int64_t{sizeof(float)});
}

absl::Status DeviceMirror::UploadDead(const BlockView& view, Entry& entry) {
  if (view.dead == entry.dead_source && entry.dead != nullptr) {
    return absl::OkStatus();
  }
  // Covers the whole capacity so later rows read as live until tombstoned.
  const int64_t words = (view.block->capacity() + 63) / 64;
  const int64_t bytes = words * int64_t{sizeof(uint64_t)};
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(
      bytes, absl::StrCat("tombstones of the block at slot ",
                          view.block->slot_base()));
  if (!buffer.ok()) return buffer.status();
  std::vector<uint64_t> bits(static_cast<size_t>(words), 0);
  if (view.dead != nullptr) {
    std::copy_n(view.dead->begin(),
                std::min<size_t>(view.dead->size(), bits.size()), bits.begin());
  }
  if (absl::Status s = Stage(bits.data(), buffer->data(), bytes); !s.ok()) {
    return s;
  }
  if (entry.dead != nullptr) bytes_in_use_ -= entry.dead->bytes();
  bytes_in_use_ += bytes;
  entry.dead = std::make_shared<const DeviceBuffer>(*std::move(buffer));
  entry.dead_source = view.dead;
  return absl::OkStatus();
}

absl::StatusOr<SyncedSnapshot> DeviceMirror::Sync(const Snapshot& snapshot) {
  std::lock_guard lock(mu_);
  DropFreedBlocks();
  SyncedSnapshot synced;
  synced.blocks.reserve(snapshot.blocks.size());
  for (const BlockView& view : snapshot.blocks) {
    absl::StatusOr<Entry*> found = FindOrCreate(view);
    if (!found.ok()) return found.status();
    Entry& entry = **found;
    if (view.rows > entry.uploaded_rows) {
      if (absl::Status s =
              UploadRows(*view.block, entry.uploaded_rows, view.rows, entry);
          !s.ok()) {
        return s;
      }
      entry.uploaded_rows = view.rows;
    }
    if (absl::Status s = UploadDead(view, entry); !s.ok()) return s;

    kernels::cuda::DeviceRows rows;
    rows.panels = entry.rows.data();
    rows.type = RowTypeOf(view.block->dtype());
    rows.dim = view.block->dim();
    rows.bias = entry.bias.as<const float>();
    rows.dead = entry.dead->as<const uint64_t>();
    rows.rows = view.rows;
    rows.slot_base = view.block->slot_base();
    synced.blocks.push_back(rows);
    synced.dead.push_back(entry.dead);
  }
  return synced;
}

}  // namespace peakknn::cuda
