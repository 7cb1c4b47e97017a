// Write-ahead log format: the framing of a record and the records the store
// logs. Reading a segment is store/wal_reader.h, writing one
// store/wal_writer.h.
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
//
// Format version: segments carry no header (0.1.0 wrote none, and its logs
// must keep opening), so their version is the collection directory's, named
// by the first line of its MANIFEST (kManifestFormatVersion,
// store/manifest.h). This layout is that version's; changing it bumps it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/collection.h"

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

// The fields of a record header; `header` holds kWalHeaderBytes bytes.
struct WalRecordHeader {
  uint32_t crc = 0;
  uint32_t length = 0;
  uint8_t type = 0;  // not checked: any byte
  uint64_t sequence = 0;
};
WalRecordHeader DecodeWalRecordHeader(const char* header);
// The CRC32C a record's header must hold: over the `bytes` bytes of the
// record (header and payload) at `record`, less the CRC field itself.
uint32_t WalRecordCrc(const char* record, size_t bytes);

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

}  // namespace peakknn
