#include "store/wal.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "store/crc32c.h"

namespace peakknn {
namespace {

template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}

template <typename T>
T Get(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

// Reserves a header in *out, returns its offset; FinishRecord fills it in.
size_t StartRecord(WalRecordType type, uint64_t sequence, std::string* out) {
  const size_t start = out->size();
  out->resize(start + kWalHeaderBytes);
  char* h = out->data() + start;
  h[8] = static_cast<char>(type);
  std::memcpy(h + 9, &sequence, sizeof(sequence));
  return start;
}

void FinishRecord(size_t start, std::string* out) {
  char* h = out->data() + start;
  const uint32_t length =
      static_cast<uint32_t>(out->size() - start - kWalHeaderBytes);
  std::memcpy(h + 4, &length, sizeof(length));
  const uint32_t crc = Crc32c(0, h + 4, out->size() - start - 4);
  std::memcpy(h, &crc, sizeof(crc));
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
  Put<uint8_t>(out, mode == WriteMode::kInsert ? 0 : 1);
  Put<uint32_t>(out, static_cast<uint32_t>(ids.size()));
  Put<uint32_t>(out, static_cast<uint32_t>(dim));
  out->append(reinterpret_cast<const char*>(ids.data()), ids.size_bytes());
  out->append(reinterpret_cast<const char*>(vectors.data()),
              vectors.size_bytes());
  FinishRecord(start, out);
}

void AppendWalDelete(uint64_t sequence, std::span<const uint64_t> ids,
                     std::string* out) {
  const size_t start = StartRecord(WalRecordType::kDelete, sequence, out);
  Put<uint32_t>(out, static_cast<uint32_t>(ids.size()));
  out->append(reinterpret_cast<const char*>(ids.data()), ids.size_bytes());
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
    const uint8_t mode = Get<uint8_t>(p.data());
    if (mode > 1) return bad(absl::StrCat("unknown write mode ", mode));
    batch.mode = mode == 0 ? WriteMode::kInsert : WriteMode::kUpsert;
    const uint32_t count = Get<uint32_t>(p.data() + 1);
    batch.dim = static_cast<int>(Get<uint32_t>(p.data() + 5));
    pos = 9;
    const uint64_t want =
        pos + uint64_t{count} * 8 +
        uint64_t{count} * static_cast<uint64_t>(batch.dim) * 4;
    if (want != p.size()) {
      return bad(absl::StrCat("write of ", count, " x ", batch.dim, " needs ",
                              want, " payload bytes, has ", p.size()));
    }
    batch.ids.resize(count);
    std::memcpy(batch.ids.data(), p.data() + pos, count * 8ull);
    pos += count * 8ull;
    batch.vectors.resize(static_cast<size_t>(count) * batch.dim);
    std::memcpy(batch.vectors.data(), p.data() + pos, batch.vectors.size() * 4);
  } else if (record.type == WalRecordType::kDelete) {
    if (p.size() < 4) return bad("delete payload shorter than its header");
    const uint32_t count = Get<uint32_t>(p.data());
    if (4 + uint64_t{count} * 8 != p.size()) {
      return bad(absl::StrCat("delete of ", count, " ids needs ",
                              4 + uint64_t{count} * 8, " payload bytes, has ",
                              p.size()));
    }
    batch.ids.resize(count);
    std::memcpy(batch.ids.data(), p.data() + 4, count * 8ull);
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
      const uint32_t length = Get<uint32_t>(rest.data() + 4);
      const uint8_t type = static_cast<uint8_t>(rest[8]);
      const uint64_t total = kWalHeaderBytes + uint64_t{length};
      if (length > kMaxWalPayloadBytes) {
        problem = absl::StrCat("record length ", length, " exceeds the limit ",
                               kMaxWalPayloadBytes);
      } else if (total > rest.size()) {
        problem = absl::StrCat("partial record (", rest.size(), " of ", total,
                               " bytes)");
        reaches_end = true;
      } else if (Get<uint32_t>(rest.data()) !=
                 Crc32c(0, rest.data() + 4, total - 4)) {
        problem = absl::StrCat("CRC32C mismatch in a ", total, "-byte record");
        reaches_end = total == rest.size();
      } else if (type != static_cast<uint8_t>(WalRecordType::kWrite) &&
                 type != static_cast<uint8_t>(WalRecordType::kDelete)) {
        problem = absl::StrCat("unknown record type ", type);
      } else {
        WalRecord record;
        record.type = static_cast<WalRecordType>(type);
        record.sequence = Get<uint64_t>(rest.data() + 9);
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

std::string WalSegmentName(uint64_t file_number) {
  char name[32];
  std::snprintf(name, sizeof(name), "wal-%08llu.log",
                static_cast<unsigned long long>(file_number));
  return name;
}

std::optional<uint64_t> ParseWalSegmentName(std::string_view name) {
  constexpr std::string_view kPrefix = "wal-", kSuffix = ".log";
  if (name.size() <= kPrefix.size() + kSuffix.size() ||
      name.substr(0, kPrefix.size()) != kPrefix ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  uint64_t number;
  if (!absl::SimpleAtoi(
          AV(name.substr(kPrefix.size(),
                         name.size() - kPrefix.size() - kSuffix.size())),
          &number)) {
    return std::nullopt;
  }
  return number;
}

}  // namespace peakknn
