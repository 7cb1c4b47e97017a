// Fuzz target: WAL record decoding and replay (store/wal_reader.h,
// store/wal_format.h, store/recovery.h). The input becomes the log of a
// collection directory with an empty checkpoint, which is recovered as the
// server recovers at start-up, then searched.
//
// Input layout: byte 0 is flags, the rest the segment's bytes.
//   bit 0     recompute every record's CRC32C before writing, so mutations
//             reach the payload decoder and replay instead of stopping at
//             a CRC mismatch (random bytes never carry a valid CRC)
//   bit 1     RecoveryOptions::truncate_corrupt_wal
//   bits 2-4  the schema's metric and dtype (FuzzSchema); dim is 4
//   bit 5     split the bytes in two segments at the middle, so a torn or
//             corrupt record can sit in a segment that is not the last
#include <cstddef>
#include <cstdint>
#include <string>

#include "store/coding.h"
#include "store/data_dir.h"
#include "store/wal_format.h"
#include "tests/fuzz/fuzz_env.h"

namespace peakknn::fuzz {
namespace {

constexpr int kDim = 4;
// Records at or below it are skipped by replay (a checkpoint covers them).
constexpr uint64_t kManifestSequence = 2;

// Sets the CRC of each record whose framing fits in `log`, front to back,
// stopping at the first record that runs past the end.
void FixRecordCrcs(std::string& log) {
  size_t offset = 0;
  while (log.size() - offset >= kWalHeaderBytes) {
    const size_t length = DecodeFixed32(log.data() + offset + 4);
    if (length > log.size() - offset - kWalHeaderBytes) return;
    const size_t bytes = kWalHeaderBytes + length;
    EncodeFixed32(log.data() + offset,
                  WalRecordCrc(log.data() + offset, bytes));
    offset += bytes;
  }
}

}  // namespace

void FuzzOne(uint8_t flags, std::string_view body) {
  std::string log(body);
  if ((flags & 1) != 0) FixRecordCrcs(log);
  const std::string& dir = FreshScratchDir();
  CheckpointManifest manifest;
  manifest.schema = FuzzSchema(static_cast<uint8_t>(flags >> 2), kDim);
  manifest.sequence = kManifestSequence;
  WriteFile(JoinPath(dir, kManifestName), SerializeManifest(manifest));
  if ((flags & 32) != 0) {
    const size_t half = log.size() / 2;
    WriteFile(JoinPath(dir, WalSegmentName(1)), log.substr(0, half));
    WriteFile(JoinPath(dir, WalSegmentName(2)), log.substr(half));
  } else {
    WriteFile(JoinPath(dir, WalSegmentName(1)), log);
  }
  RecoverAndUse(dir, (flags & 2) != 0);
}

}  // namespace peakknn::fuzz
