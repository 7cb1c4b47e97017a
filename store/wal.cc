#include "store/wal.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "store/coding.h"
#include "store/crc32c.h"

namespace peakknn {
namespace {

// Reserves a header in *out, returns its offset; FinishRecord fills it in.
size_t StartRecord(WalRecordType type, uint64_t sequence, std::string* out) {
  const size_t start = out->size();
  out->resize(start + kWalHeaderBytes);
  char* h = out->data() + start;
  h[8] = static_cast<char>(type);
  EncodeFixed64(h + 9, sequence);
  return start;
}

void FinishRecord(size_t start, std::string* out) {
  char* h = out->data() + start;
  EncodeFixed32(h + 4,
                static_cast<uint32_t>(out->size() - start - kWalHeaderBytes));
  EncodeFixed32(h, Crc32c(0, h + 4, out->size() - start - 4));
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

}  // namespace

void AppendWalWrite(uint64_t sequence, WriteMode mode,
                    std::span<const uint64_t> ids,
                    std::span<const float> vectors, int dim, std::string* out) {
  const size_t start = StartRecord(WalRecordType::kWrite, sequence, out);
  out->reserve(out->size() + 9 + ids.size_bytes() + vectors.size_bytes());
  PutFixed8(out, mode == WriteMode::kInsert ? 0 : 1);
  PutFixed32(out, static_cast<uint32_t>(ids.size()));
  PutFixed32(out, static_cast<uint32_t>(dim));
  PutFixed64Array(out, ids);
  PutFloatArray(out, vectors);
  FinishRecord(start, out);
}

void AppendWalDelete(uint64_t sequence, std::span<const uint64_t> ids,
                     std::string* out) {
  const size_t start = StartRecord(WalRecordType::kDelete, sequence, out);
  PutFixed32(out, static_cast<uint32_t>(ids.size()));
  PutFixed64Array(out, ids);
  FinishRecord(start, out);
}

absl::StatusOr<WalBatch> DecodeWalRecord(const WalRecord& record) {
  const std::string_view p = record.payload;
  const auto bad = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("WAL record at offset ",
                                            record.offset, " (sequence ",
                                            record.sequence, "): ", what));
  };
  WalBatch batch;
  batch.type = record.type;
  size_t pos = 0;
  if (record.type == WalRecordType::kWrite) {
    if (p.size() < 9) return bad("write payload shorter than its header");
    const uint8_t mode = static_cast<uint8_t>(p[0]);
    if (mode > 1) return bad(absl::StrCat("unknown write mode ", mode));
    batch.mode = mode == 0 ? WriteMode::kInsert : WriteMode::kUpsert;
    const uint32_t count = DecodeFixed32(p.data() + 1);
    batch.dim = static_cast<int>(DecodeFixed32(p.data() + 5));
    pos = 9;
    const uint64_t want =
        pos + uint64_t{count} * 8 +
        uint64_t{count} * static_cast<uint64_t>(batch.dim) * 4;
    if (want != p.size()) {
      return bad(absl::StrCat("write of ", count, " x ", batch.dim, " needs ",
                              want, " payload bytes, has ", p.size()));
    }
    batch.ids.resize(count);
    DecodeFixed64Array(p.data() + pos, batch.ids);
    pos += count * 8ull;
    batch.vectors.resize(static_cast<size_t>(count) * batch.dim);
    DecodeFloatArray(p.data() + pos, batch.vectors);
  } else if (record.type == WalRecordType::kDelete) {
    if (p.size() < 4) return bad("delete payload shorter than its header");
    const uint32_t count = DecodeFixed32(p.data());
    if (4 + uint64_t{count} * 8 != p.size()) {
      return bad(absl::StrCat("delete of ", count, " ids needs ",
                              4 + uint64_t{count} * 8, " payload bytes, has ",
                              p.size()));
    }
    batch.ids.resize(count);
    DecodeFixed64Array(p.data() + 4, batch.ids);
  } else {
    return bad(
        absl::StrCat("unknown record type ", static_cast<int>(record.type)));
  }
  return batch;
}

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
      const uint32_t length = DecodeFixed32(rest.data() + 4);
      const uint8_t type = static_cast<uint8_t>(rest[8]);
      const uint64_t total = kWalHeaderBytes + uint64_t{length};
      if (length > kMaxWalPayloadBytes) {
        problem = absl::StrCat("record length ", length, " exceeds the limit ",
                               kMaxWalPayloadBytes);
      } else if (total > rest.size()) {
        problem = absl::StrCat("partial record (", rest.size(), " of ", total,
                               " bytes)");
        reaches_end = true;
      } else if (DecodeFixed32(rest.data()) !=
                 Crc32c(0, rest.data() + 4, total - 4)) {
        problem = absl::StrCat("CRC32C mismatch in a ", total, "-byte record");
        reaches_end = total == rest.size();
      } else if (type != static_cast<uint8_t>(WalRecordType::kWrite) &&
                 type != static_cast<uint8_t>(WalRecordType::kDelete)) {
        problem = absl::StrCat("unknown record type ", type);
      } else {
        WalRecord record;
        record.type = static_cast<WalRecordType>(type);
        record.sequence = DecodeFixed64(rest.data() + 9);
        record.payload = rest.substr(kWalHeaderBytes, length);
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
