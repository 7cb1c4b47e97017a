#include "store/wal_reader.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace peakknn {
namespace {

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

bool KnownType(uint8_t type) {
  return type == static_cast<uint8_t>(WalRecordType::kWrite) ||
         type == static_cast<uint8_t>(WalRecordType::kDelete);
}

}  // namespace

absl::StatusOr<WalSegmentScan> ScanWalSegment(
    Env* env, const std::string& path,
    const std::function<absl::Status(const WalRecord&)>& on_record) {
  auto data = ReadFileToString(env, path);
  if (!data.ok()) return data.status();
  const std::string_view file = *data;
  WalSegmentScan scan;
  scan.file_bytes = file.size();
  size_t pos = 0;
  while (pos < file.size()) {
    const std::string_view rest = file.substr(pos);
    std::string problem;
    bool reaches_end = false;  // the bad record runs to (or past) EOF
    if (rest.size() < kWalHeaderBytes) {
      problem = absl::StrCat("partial record header (", rest.size(), " of ",
                             kWalHeaderBytes, " bytes)");
      reaches_end = true;
    } else {
      const WalRecordHeader header = DecodeWalRecordHeader(rest.data());
      const uint64_t total = kWalHeaderBytes + uint64_t{header.length};
      if (header.length > kMaxWalPayloadBytes) {
        problem = absl::StrCat("record length ", header.length,
                               " exceeds the limit ", kMaxWalPayloadBytes);
      } else if (total > rest.size()) {
        problem = absl::StrCat("partial record (", rest.size(), " of ", total,
                               " bytes)");
        reaches_end = true;
      } else if (header.crc != WalRecordCrc(rest.data(), total)) {
        problem = absl::StrCat("CRC32C mismatch in a ", total, "-byte record");
        reaches_end = total == rest.size();
      } else if (!KnownType(header.type)) {
        problem = absl::StrCat("unknown record type ", header.type);
      } else {
        WalRecord record;
        record.type = static_cast<WalRecordType>(header.type);
        record.sequence = header.sequence;
        record.payload = rest.substr(kWalHeaderBytes, header.length);
        record.offset = pos;
        if (absl::Status s = on_record(record); !s.ok()) return s;
        ++scan.records;
        pos += total;
        scan.valid_bytes = pos;
        continue;
      }
    }
    // A crash mid-append leaves a partial last record, or (file systems that
    // extend the size before the data lands) a zero-filled remainder.
    scan.tail =
        reaches_end || AllZero(rest) ? WalTail::kTorn : WalTail::kCorrupt;
    scan.problem = std::move(problem);
    return scan;
  }
  return scan;
}

}  // namespace peakknn
