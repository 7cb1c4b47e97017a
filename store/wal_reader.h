// Reading a WAL segment (store/wal_format.h) front to back, telling a torn
// tail (what a crash in the middle of an append leaves) from corruption in
// the middle of the log. What either means is recovery's decision
// (store/recovery.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/env.h"
#include "store/wal_format.h"

namespace peakknn {

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
// returned). A record's payload is valid only during its call. Reads the
// file front to back through one reused buffer of about the largest record
// (at least kWalReadChunkBytes), not the whole segment: fresh memory is
// what recovery pays for most on a VM, and a segment is up to tens of MB.
// Only a bad record makes it read the rest of the file (to tell a
// zero-filled tail from corruption).
inline constexpr size_t kWalReadChunkBytes = size_t{1} << 20;
absl::StatusOr<WalSegmentScan> ScanWalSegment(
    Env* env, const std::string& path,
    const std::function<absl::Status(const WalRecord&)>& on_record);

}  // namespace peakknn
