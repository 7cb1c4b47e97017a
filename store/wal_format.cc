#include "store/wal_format.h"

#include "absl/strings/str_cat.h"
#include "store/coding.h"
#include "store/crc32c.h"

namespace peakknn {
namespace {

// Byte offsets of the header fields.
constexpr size_t kCrcAt = 0, kLengthAt = 4, kTypeAt = 8, kSequenceAt = 9;

// Reserves a header in *out, returns its offset; FinishRecord fills it in.
size_t StartRecord(WalRecordType type, uint64_t sequence, std::string* out) {
  const size_t start = out->size();
  out->resize(start + kWalHeaderBytes);
  char* h = out->data() + start;
  h[kTypeAt] = static_cast<char>(type);
  EncodeFixed64(h + kSequenceAt, sequence);
  return start;
}

void FinishRecord(size_t start, std::string* out) {
  char* h = out->data() + start;
  const size_t bytes = out->size() - start;
  EncodeFixed32(h + kLengthAt, static_cast<uint32_t>(bytes - kWalHeaderBytes));
  EncodeFixed32(h + kCrcAt, WalRecordCrc(h, bytes));
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

WalRecordHeader DecodeWalRecordHeader(const char* header) {
  WalRecordHeader h;
  h.crc = DecodeFixed32(header + kCrcAt);
  h.length = DecodeFixed32(header + kLengthAt);
  h.type = static_cast<uint8_t>(header[kTypeAt]);
  h.sequence = DecodeFixed64(header + kSequenceAt);
  return h;
}

uint32_t WalRecordCrc(const char* record, size_t bytes) {
  return Crc32c(0, record + kLengthAt, bytes - kLengthAt);
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
  if (record.type == WalRecordType::kWrite) {
    constexpr size_t kFixed = 9;  // mode, count, dim
    if (p.size() < kFixed) return bad("write payload shorter than its header");
    const uint8_t mode = static_cast<uint8_t>(p[0]);
    if (mode > 1) return bad(absl::StrCat("unknown write mode ", mode));
    batch.mode = mode == 0 ? WriteMode::kInsert : WriteMode::kUpsert;
    const uint32_t count = DecodeFixed32(p.data() + 1);
    const uint32_t dim = DecodeFixed32(p.data() + 5);
    // Bounded by the payload first, so the product below cannot wrap (a
    // wrapped size could match a short payload) and dim fits an int.
    if (count > p.size() / 8 || dim > p.size() / 4) {
      return bad(absl::StrCat("write of ", count, " x ", dim,
                              " does not fit its ", p.size(),
                              " payload bytes"));
    }
    batch.dim = static_cast<int>(dim);
    const uint64_t want =
        kFixed + uint64_t{count} * 8 + uint64_t{count} * uint64_t{dim} * 4;
    if (want != p.size()) {
      return bad(absl::StrCat("write of ", count, " x ", dim, " needs ", want,
                              " payload bytes, has ", p.size()));
    }
    batch.ids.resize(count);
    DecodeFixed64Array(p.data() + kFixed, batch.ids);
    batch.vectors.resize(static_cast<size_t>(count) * batch.dim);
    DecodeFloatArray(p.data() + kFixed + size_t{count} * 8, batch.vectors);
  } else if (record.type == WalRecordType::kDelete) {
    constexpr size_t kFixed = 4;  // count
    if (p.size() < kFixed) return bad("delete payload shorter than its header");
    const uint32_t count = DecodeFixed32(p.data());
    if (kFixed + uint64_t{count} * 8 != p.size()) {
      return bad(absl::StrCat("delete of ", count, " ids needs ",
                              kFixed + uint64_t{count} * 8,
                              " payload bytes, has ", p.size()));
    }
    batch.ids.resize(count);
    DecodeFixed64Array(p.data() + kFixed, batch.ids);
  } else {
    return bad(
        absl::StrCat("unknown record type ", static_cast<int>(record.type)));
  }
  return batch;
}

}  // namespace peakknn
