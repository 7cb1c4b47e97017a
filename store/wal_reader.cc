#include "store/wal_reader.h"

#include <algorithm>
#include <memory>
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

// The bytes of a segment from some position on, read through one buffer
// that is reused as the scan moves forward. buffer_ holds the file bytes
// [start_, start_ + buffer_.size()).
class SegmentWindow {
 public:
  SegmentWindow(SequentialFile* file, uint64_t file_bytes)
      : file_(file), file_bytes_(file_bytes) {}

  // At least min(n, bytes left) bytes starting at `pos` (>= every earlier
  // pos); valid until the next call.
  absl::StatusOr<std::string_view> Peek(uint64_t pos, uint64_t n) {
    n = std::min(n, file_bytes_ - pos);
    if (pos > start_) {  // drop what the scan has passed
      const size_t passed =
          static_cast<size_t>(std::min<uint64_t>(pos - start_, buffer_.size()));
      buffer_.erase(0, passed);
      start_ += passed;
    }
    while (start_ + buffer_.size() < pos + n) {
      const size_t have = buffer_.size();
      // A chunk at a time, but never past the end of the file: a small
      // segment does not pay for zeroing a whole chunk. (pos + n <=
      // file_bytes_, so `want` > 0.)
      const size_t want = static_cast<size_t>(std::min(
          std::max<uint64_t>(pos + n - start_ - have, kWalReadChunkBytes),
          file_bytes_ - start_ - have));
      buffer_.resize(have + want);
      absl::StatusOr<size_t> got = file_->Read(want, buffer_.data() + have);
      if (!got.ok()) return got.status();
      buffer_.resize(have + *got);
      if (*got == 0) {
        return absl::DataLossError(absl::StrCat(
            "the segment ends at byte ", start_ + have, " although it had ",
            file_bytes_, " bytes when the scan began"));
      }
    }
    return std::string_view(buffer_).substr(pos - start_, n);
  }

 private:
  SequentialFile* const file_;
  const uint64_t file_bytes_;
  uint64_t start_ = 0;
  std::string buffer_;
};

}  // namespace

absl::StatusOr<WalSegmentScan> ScanWalSegment(
    Env* env, const std::string& path,
    const std::function<absl::Status(const WalRecord&)>& on_record) {
  absl::StatusOr<uint64_t> size = env->GetFileSize(path);
  if (!size.ok()) return size.status();
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  SegmentWindow window(file->get(), *size);
  WalSegmentScan scan;
  scan.file_bytes = *size;
  uint64_t pos = 0;
  while (pos < scan.file_bytes) {
    const uint64_t left = scan.file_bytes - pos;
    std::string problem;
    bool reaches_end = false;  // the bad record runs to (or past) EOF
    if (left < kWalHeaderBytes) {
      problem = absl::StrCat("partial record header (", left, " of ",
                             kWalHeaderBytes, " bytes)");
      reaches_end = true;
    } else {
      absl::StatusOr<std::string_view> head = window.Peek(pos, kWalHeaderBytes);
      if (!head.ok()) return head.status();
      const WalRecordHeader header = DecodeWalRecordHeader(head->data());
      const uint64_t total = kWalHeaderBytes + uint64_t{header.length};
      absl::StatusOr<std::string_view> bytes;
      if (header.length > kMaxWalPayloadBytes) {
        problem = absl::StrCat("record length ", header.length,
                               " exceeds the limit ", kMaxWalPayloadBytes);
      } else if (total > left) {
        problem =
            absl::StrCat("partial record (", left, " of ", total, " bytes)");
        reaches_end = true;
      } else if (bytes = window.Peek(pos, total); !bytes.ok()) {
        return bytes.status();
      } else if (header.crc != WalRecordCrc(bytes->data(), total)) {
        problem = absl::StrCat("CRC32C mismatch in a ", total, "-byte record");
        reaches_end = total == left;
      } else if (!KnownType(header.type)) {
        problem = absl::StrCat("unknown record type ", header.type);
      } else {
        WalRecord record;
        record.type = static_cast<WalRecordType>(header.type);
        record.sequence = header.sequence;
        record.payload = bytes->substr(kWalHeaderBytes, header.length);
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
    bool zero_tail = false;
    if (!reaches_end) {
      absl::StatusOr<std::string_view> rest = window.Peek(pos, left);
      if (!rest.ok()) return rest.status();
      zero_tail = AllZero(*rest);
    }
    scan.tail = reaches_end || zero_tail ? WalTail::kTorn : WalTail::kCorrupt;
    scan.problem = std::move(problem);
    return scan;
  }
  return scan;
}

}  // namespace peakknn
