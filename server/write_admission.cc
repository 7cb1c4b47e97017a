#include "server/write_admission.h"

#include <utility>

#include "base/status_macros.h"
#include "base/string_view.h"

namespace peakknn::server {

WriteAdmission::WriteAdmission(ServiceCore* core, const RequestLimits& limits,
                               Durability durability, Metrics* metrics)
    : core_(core), limits_(limits), options_{durability}, metrics_(metrics) {}

absl::StatusOr<std::shared_ptr<ServedCollection>> WriteAdmission::Open(
    std::string_view collection, std::span<const uint64_t> ids) const {
  PEAKKNN_RETURN_IF_ERROR(core_->Ready());
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", AV(collection)));
  PEAKKNN_RETURN_IF_ERROR(
      limits_.CheckIds("ids", static_cast<int64_t>(ids.size())));
  return core_->OpenCollection(collection);
}

absl::StatusOr<std::shared_ptr<ServedCollection>> WriteAdmission::AdmitRows(
    std::string_view collection, std::span<const uint64_t> ids,
    std::span<const float> vectors) const {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<ServedCollection> handle,
                           Open(collection, ids));
  PEAKKNN_RETURN_IF_ERROR(
      limits_.CheckVectors("vectors", vectors, handle->schema().dim,
                           static_cast<int64_t>(ids.size()),
                           limits_.max_rows_per_write, "--max_rows_per_write"));
  return handle;
}

void WriteAdmission::WriteRows(std::string_view collection, WriteMode mode,
                               std::span<const uint64_t> ids,
                               std::span<const float> vectors,
                               WriteCallback done,
                               std::shared_ptr<const void> owner) {
  absl::StatusOr<std::shared_ptr<ServedCollection>> handle =
      AdmitRows(collection, ids, vectors);
  if (!handle.ok()) {
    done(handle.status());
    return;
  }
  ServedCollection& target = **handle;
  target.WriteAsync(
      mode, ids, vectors, options_,
      [this, handle = *std::move(handle),
       done = std::move(done)](absl::StatusOr<WriteAck> ack) {
        if (ack.ok()) RecordRows(*handle, ack->rows);
        done(std::move(ack));
      },
      std::move(owner));
}

void WriteAdmission::DeleteRows(std::string_view collection,
                                std::span<const uint64_t> ids,
                                WriteCallback done) {
  absl::StatusOr<std::shared_ptr<ServedCollection>> handle =
      Open(collection, ids);
  if (!handle.ok()) {
    done(handle.status());
    return;
  }
  ServedCollection& target = **handle;
  target.DeleteAsync(ids, options_,
                     [this, handle = *std::move(handle),
                      done = std::move(done)](absl::StatusOr<WriteAck> ack) {
                       if (ack.ok()) RecordRowCounts(*handle);
                       done(std::move(ack));
                     });
}

void WriteAdmission::RecordRows(const ServedCollection& collection,
                                int64_t rows) {
  metrics_->AddInsertedRows(collection.schema().name, rows);
  RecordRowCounts(collection);
  metrics_->RefreshBackendDeviceMemory();
  inserted_rows_.fetch_add(static_cast<uint64_t>(rows),
                           std::memory_order_relaxed);
}

void WriteAdmission::RecordRowCounts(const ServedCollection& collection) {
  const RowCounts counts = collection.row_counts();
  metrics_->SetCollectionRows(collection.schema().name, counts.rows,
                              counts.live_rows);
}

}  // namespace peakknn::server
