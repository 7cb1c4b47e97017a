#include "store/checkpoint.h"

#include <bit>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "kernels/layout.h"
#include "store/coding.h"
#include "store/crc32c.h"
#include "store/data_dir.h"

namespace peakknn {
namespace {

// The magic is kMagicPrefix and the format version as one ASCII digit.
constexpr std::string_view kMagicPrefix = "PKNNCKP";
constexpr size_t kMagicBytes = 8;
constexpr size_t kDataHeaderBytes = 28;
// Rows per chunk: a chunk is the unit of CRC checking and of I/O.
constexpr int64_t kChunkRows = 4096;

// Checks the magic before anything else: a newer version may lay out (and
// checksum) the rest differently.
absl::Status CheckMagic(const char* header, const std::string& path) {
  const std::string_view magic(header, kMagicBytes);
  const char digit = magic.back();
  if (!magic.starts_with(kMagicPrefix) || digit < '0' || digit > '9') {
    return absl::DataLossError(absl::StrCat(
        "checkpoint ", path, " offset 0: magic is not '", AV(kMagicPrefix),
        "<version digit>' (not a peakknn checkpoint, or damaged)"));
  }
  if (digit - '0' != kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint ", path, ": format version ", digit - '0',
        "; this build reads version ", kCheckpointFormatVersion,
        " only. Open this data directory with the release that wrote it"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CheckpointManifest> WriteCheckpoint(
    Env* env, const std::string& dir, const CheckpointManifest& manifest,
    const Snapshot& snapshot) {
  CheckpointManifest out = manifest;
  out.data_file = CheckpointFileName(manifest.sequence);
  out.rows = snapshot.live_rows;
  const std::string path = JoinPath(dir, out.data_file);
  const std::string tmp = TempFilePath(path);
  auto file_or = env->NewWritableFile(tmp);
  if (!file_or.ok()) return file_or.status();
  WritableFile& file = **file_or;
  const int dim = manifest.schema.dim;

  std::string buf(kMagicPrefix);
  buf.push_back(static_cast<char>('0' + kCheckpointFormatVersion));
  PutFixed32(&buf, static_cast<uint32_t>(dim));
  PutFixed32(&buf, 0);
  PutFixed64(&buf, static_cast<uint64_t>(out.rows));
  PutFixed32(&buf, Crc32c(0, buf.data(), buf.size()));

  // One chunk at a time: ids then vectors, gathered from the panels.
  std::vector<uint64_t> ids;
  std::vector<float> vectors;
  ids.reserve(kChunkRows);
  vectors.resize(static_cast<size_t>(kChunkRows) * dim);
  int64_t written = 0;
  absl::Status status;
  const auto flush = [&]() {
    const size_t start = buf.size();
    PutFixed32(&buf, 0);  // the CRC, filled in below
    PutFixed32(&buf, static_cast<uint32_t>(ids.size()));
    PutFixed64Array(&buf, ids);
    PutFloatArray(&buf,
                  std::span<const float>(vectors.data(), ids.size() * dim));
    EncodeFixed32(buf.data() + start,
                  Crc32c(0, buf.data() + start + 4, buf.size() - start - 4));
    written += static_cast<int64_t>(ids.size());
    ids.clear();
    status = file.Append(buf);
    buf.clear();
  };
  for (const BlockView& view : snapshot.blocks) {
    const uint64_t* dead = view.dead ? view.dead->data() : nullptr;
    for (int64_t r = 0; r < view.rows && status.ok(); ++r) {
      if (kernels::IsDead(dead, r)) continue;
      view.block->ReadRow(r, vectors.data() + ids.size() * dim);
      ids.push_back(view.block->id(r));
      if (static_cast<int64_t>(ids.size()) == kChunkRows) flush();
    }
  }
  if (status.ok() && (!ids.empty() || !buf.empty())) flush();
  if (status.ok() && written != out.rows) {
    status = absl::InternalError(
        absl::StrCat("checkpoint ", path, ": snapshot claims ", out.rows,
                     " live rows but ", written, " are unmarked"));
  }
  if (status.ok()) status = file.Sync();
  out.data_bytes = file.Size();
  const absl::Status closed = file.Close();
  if (status.ok()) status = closed;
  if (status.ok()) status = env->RenameFile(tmp, path);
  if (!status.ok()) {
    env->DeleteFile(tmp).IgnoreError();  // best effort; report `status`
    return status;
  }
  // The data file's rename becomes durable with the manifest's directory
  // fsync (same directory).
  if (absl::Status s = WriteManifest(env, dir, out); !s.ok()) return s;
  return out;
}

absl::Status ReadCheckpointRows(
    Env* env, const std::string& dir, const CheckpointManifest& manifest,
    const std::function<absl::Status(std::span<const uint64_t>,
                                     std::span<const float>)>& on_rows) {
  if (manifest.data_file.empty()) return absl::OkStatus();
  const std::string path = JoinPath(dir, manifest.data_file);
  const auto bad = [&](uint64_t offset, absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("checkpoint ", path, " offset ", offset, ": ", what));
  };
  auto file_or = env->NewSequentialFile(path);
  if (!file_or.ok()) return file_or.status();
  SequentialFile& file = **file_or;
  const size_t dim = static_cast<size_t>(manifest.schema.dim);
  const auto read_exact = [&](char* into, size_t n) -> absl::StatusOr<bool> {
    auto got = file.Read(n, into);
    if (!got.ok()) return got.status();
    return *got == n;
  };

  char header[kDataHeaderBytes];
  auto ok = read_exact(header, sizeof(header));
  if (!ok.ok()) return ok.status();
  if (!*ok) {
    return bad(0, absl::StrCat("file ends inside the ", kDataHeaderBytes,
                               "-byte header"));
  }
  if (absl::Status s = CheckMagic(header, path); !s.ok()) return s;
  if (DecodeFixed32(header + 24) != Crc32c(0, header, 24)) {
    return bad(0, "header CRC32C mismatch");
  }
  const uint32_t file_dim = DecodeFixed32(header + 8);
  const uint64_t file_rows = DecodeFixed64(header + 16);
  if (file_dim != dim || file_rows != static_cast<uint64_t>(manifest.rows)) {
    return bad(0,
               absl::StrCat("header says dim ", file_dim, " rows ", file_rows,
                            ", manifest dim ", dim, " rows ", manifest.rows));
  }
  // Every row takes its id and vector in the file: a row count the file
  // cannot hold is corruption, caught before it sizes any allocation.
  auto file_bytes = env->GetFileSize(path);
  if (!file_bytes.ok()) return file_bytes.status();
  const uint64_t row_bytes = sizeof(uint64_t) + dim * sizeof(float);
  if (file_rows > (*file_bytes - kDataHeaderBytes) / row_bytes) {
    return bad(0,
               absl::StrCat("header says ", file_rows, " rows of ", row_bytes,
                            " bytes; the file has ", *file_bytes, " bytes"));
  }
  uint64_t offset = kDataHeaderBytes;
  int64_t rows = 0;
  std::vector<uint64_t> ids;
  std::vector<float> vectors;
  while (rows < manifest.rows) {
    char head[8];
    ok = read_exact(head, sizeof(head));
    if (!ok.ok()) return ok.status();
    if (!*ok) return bad(offset, "file ends inside a chunk header");
    const uint32_t count = DecodeFixed32(head + 4);
    if (count == 0 || count > manifest.rows - rows) {
      return bad(offset, absl::StrCat("chunk of ", count, " rows with ",
                                      manifest.rows - rows, " left"));
    }
    // The chunk's ids and vectors are read straight into their arrays, whose
    // bytes are the encoded values on a little-endian host: one copy from
    // the file (what the CRC needs), none to decode. The rows then go from
    // `vectors` into panels.
    ids.resize(count);
    vectors.resize(size_t{count} * dim);
    char* const id_bytes = reinterpret_cast<char*>(ids.data());
    char* const vector_bytes = reinterpret_cast<char*>(vectors.data());
    const size_t id_size = size_t{count} * sizeof(uint64_t);
    const size_t vector_size = vectors.size() * sizeof(float);
    for (const auto& [into, n] :
         {std::pair{id_bytes, id_size}, std::pair{vector_bytes, vector_size}}) {
      ok = read_exact(into, n);
      if (!ok.ok()) return ok.status();
      if (!*ok) return bad(offset, "file ends inside a chunk");
    }
    uint32_t crc = Crc32c(0, head + 4, 4);
    crc = Crc32c(crc, id_bytes, id_size);
    if (Crc32c(crc, vector_bytes, vector_size) != DecodeFixed32(head)) {
      return bad(offset, "CRC32C mismatch");
    }
    if constexpr (std::endian::native == std::endian::big) {
      // Decoded in place: the element-wise decode reads each element's
      // bytes before it writes the element.
      DecodeFixed64Array(id_bytes, ids);
      DecodeFloatArray(vector_bytes, vectors);
    }
    if (absl::Status s = on_rows(ids, vectors); !s.ok()) return s;
    rows += count;
    offset += sizeof(head) + id_size + vector_size;
  }
  return absl::OkStatus();
}

absl::Status DeleteStaleCheckpointFiles(Env* env, const std::string& dir,
                                        const CheckpointManifest& manifest) {
  auto names = env->GetChildren(dir);
  if (!names.ok()) return names.status();
  absl::Status first;
  for (const std::string& name : *names) {
    const bool stale = IsCheckpointFileName(name) && name != manifest.data_file;
    if (stale || IsTempFilePath(name)) {
      first.Update(env->DeleteFile(JoinPath(dir, name)));
    }
  }
  return first;
}

}  // namespace peakknn
