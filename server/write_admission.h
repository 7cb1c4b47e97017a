// What a write (an Upsert, a Delete, a batch of an InsertStream) passes
// before it is handed to the core, and what an acknowledged write records.
//
// Admission, in this order: the core is ready; the request names a
// collection; it holds 1 to --max_rows_per_write ids; the collection
// exists; and for rows, the vectors are exactly one vector of the
// collection's dim per id. Failures are the core's status or
// INVALID_ARGUMENT naming the field and the limit. What depends on the
// values (finite, an id twice in a batch, an inserted id that exists) is
// checked by the core, once.
//
// Recording, when the core acknowledges: inserted and upserted rows count
// towards peakknn_inserted_rows_total and GetStats.inserted_rows; every
// write sets the collection's row gauges from its state after the write;
// row writes also refresh the device memory gauge (row mirrors grow as
// rows reach the device).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/metrics.h"
#include "server/request_limits.h"
#include "store/service_core.h"

namespace peakknn::server {

class WriteAdmission {
 public:
  // `core` and `metrics` must outlive this. Every write is acknowledged
  // with `durability` (kDefault: the collection's own).
  WriteAdmission(ServiceCore* core, const RequestLimits& limits,
                 Durability durability, Metrics* metrics);

  // Admits rows for `collection` and hands them to the core
  // (ServedCollection::WriteAsync, whose terms hold for `ids`, `vectors`
  // and `owner`). `done` runs exactly once: on the caller's thread before
  // this returns when the write is refused, otherwise once the core
  // acknowledged it (after the write is recorded) or failed it.
  void WriteRows(std::string_view collection, WriteMode mode,
                 std::span<const uint64_t> ids, std::span<const float> vectors,
                 WriteCallback done,
                 std::shared_ptr<const void> owner = nullptr);
  // The same for a delete; ack.rows counts the rows deleted.
  void DeleteRows(std::string_view collection, std::span<const uint64_t> ids,
                  WriteCallback done);

  // Rows written by acknowledged inserts and upserts since start.
  uint64_t inserted_rows() const {
    return inserted_rows_.load(std::memory_order_relaxed);
  }

 private:
  // The admission steps common to every write, up to opening the
  // collection.
  absl::StatusOr<std::shared_ptr<ServedCollection>> Open(
      std::string_view collection, std::span<const uint64_t> ids) const;
  absl::StatusOr<std::shared_ptr<ServedCollection>> AdmitRows(
      std::string_view collection, std::span<const uint64_t> ids,
      std::span<const float> vectors) const;
  void RecordRows(const ServedCollection& collection, int64_t rows);
  void RecordRowCounts(const ServedCollection& collection);

  ServiceCore* const core_;
  const RequestLimits limits_;
  const WriteOptions options_;
  Metrics* const metrics_;
  std::atomic<uint64_t> inserted_rows_{0};
};

}  // namespace peakknn::server
