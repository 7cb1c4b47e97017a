// Write-ahead log format: framing, the records the store logs, and a segment
// reader that tells a torn tail from corruption in the middle of the log.
//
// A collection's log is a sequence of segment files "wal-NNNNNNNN.log"
// (store/data_dir.h; increasing numbers) holding records back to back,
// little-endian (store/coding.h):
//
//   offset  0  u32 crc     CRC32C of bytes [4, 17 + length): the rest of the
//                          header and the payload, so a bad length is caught
//          4  u32 length   payload bytes
//          8  u8  type     WalRecordType
//          9  u64 sequence the collection's write sequence number (> 0,
//                          strictly increasing through the log)
//         17  payload
//
// Payloads:
//   kWrite:  u8 mode (0 insert, 1 upsert), u32 count, u32 dim,
//            u64 ids[count], f32 vectors[count][dim] (as the client sent them)
//   kDelete: u32 count, u64 ids[count]
//
// Records are logical (ids and vectors), so compaction and block layout never
// touch the log.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/collection.h"
#include "store/env.h"

namespace peakknn {

enum class WalRecordType : uint8_t { kWrite = 1, kDelete = 2 };

inline constexpr size_t kWalHeaderBytes = 17;
// Largest payload a reader accepts; a length above it is corruption.
inline constexpr uint32_t kMaxWalPayloadBytes = 1u << 30;

// Appends one framed kWrite / kDelete record to *out.
void AppendWalWrite(uint64_t sequence, WriteMode mode,
                    std::span<const uint64_t> ids,
                    std::span<const float> vectors, int dim, std::string* out);
void AppendWalDelete(uint64_t sequence, std::span<const uint64_t> ids,
                     std::string* out);

struct WalRecord {
  WalRecordType type = WalRecordType::kWrite;
  uint64_t sequence = 0;
  std::string_view payload;
  uint64_t offset = 0;  // of the record's header in its segment
};

// A decoded payload. Vectors are copied out so they are aligned.
struct WalBatch {
  WalRecordType type = WalRecordType::kWrite;
  WriteMode mode = WriteMode::kInsert;  // kWrite only
  int dim = 0;                          // kWrite only
  std::vector<uint64_t> ids;
  std::vector<float> vectors;  // kWrite only, [ids.size()][dim]
};
// Fails (DATA_LOSS) when the payload's sizes do not add up.
absl::StatusOr<WalBatch> DecodeWalRecord(const WalRecord& record);

// How a segment ends.
enum class WalTail {
  kClean,    // the last record ends exactly at end of file
  kTorn,     // a partial record (or a zero-filled remainder) ends the file:
             // what a crash in the middle of an append leaves
  kCorrupt,  // a bad record with more data after it
};

struct WalSegmentScan {
  uint64_t file_bytes = 0;
  uint64_t valid_bytes = 0;  // end of the last good record
  int64_t records = 0;
  WalTail tail = WalTail::kClean;
  std::string problem;  // kTorn / kCorrupt: what is wrong at valid_bytes
};

// Reads every record of a segment in order, calling on_record for each good
// one until the first bad one (or an error from on_record, which is
// returned). The caller decides what a torn or corrupt end means.
absl::StatusOr<WalSegmentScan> ScanWalSegment(
    Env* env, const std::string& path,
    const std::function<absl::Status(const WalRecord&)>& on_record);

}  // namespace peakknn
