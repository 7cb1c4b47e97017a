#include "store/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/string_view.h"
#include "kernels/layout.h"
#include "store/coding.h"
#include "store/crc32c.h"

namespace peakknn {
namespace {

constexpr char kManifestMagic[] = "peakknn-manifest 1";
constexpr char kDataMagic[8] = {'P', 'K', 'N', 'N', 'C', 'K', 'P', '1'};
constexpr size_t kDataHeaderBytes = 28;
// Rows per chunk: a chunk is the unit of CRC checking and of I/O.
constexpr int64_t kChunkRows = 4096;

std::string DataFileName(uint64_t sequence) {
  char name[48];
  std::snprintf(name, sizeof(name), "ckpt-%020llu.dat",
                static_cast<unsigned long long>(sequence));
  return name;
}

absl::StatusOr<Durability> ParseDurability(std::string_view text) {
  if (text == "fsync") return Durability::kFsync;
  if (text == "none") return Durability::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("durability must be fsync or none, got '", AV(text), "'"));
}

}  // namespace

std::string SerializeManifest(const CheckpointManifest& m) {
  std::string text = absl::StrCat(
      kManifestMagic, "\nname ", m.schema.name, "\ndim ", m.schema.dim,
      "\nmetric ", AV(MetricName(m.schema.metric)), "\ndtype ",
      AV(DTypeName(m.schema.dtype)), "\nrecall ",
      absl::StrFormat("%.17g", m.schema.default_recall_target), "\ndurability ",
      AV(DurabilityName(m.default_durability)), "\nsequence ", m.sequence,
      "\ndata ", m.data_file.empty() ? "-" : m.data_file, "\nrows ", m.rows,
      "\ndata_bytes ", m.data_bytes, "\n");
  absl::StrAppend(&text, "crc32c ", absl::Hex(Crc32c(text)), "\n");
  return text;
}

absl::StatusOr<CheckpointManifest> ParseManifest(std::string_view text,
                                                 std::string_view path) {
  const auto bad = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("manifest ", AV(path), ": ", what));
  };
  const size_t crc_at = text.rfind("crc32c ");
  if (crc_at == std::string_view::npos) return bad("no crc32c line");
  uint32_t want;
  std::string_view crc_text = text.substr(crc_at + 7);
  if (!crc_text.empty() && crc_text.back() == '\n') crc_text.remove_suffix(1);
  if (!absl::SimpleHexAtoi(AV(crc_text), &want)) {
    return bad(absl::StrCat("unreadable crc32c '", AV(crc_text), "'"));
  }
  const std::string_view body = text.substr(0, crc_at);
  if (Crc32c(body) != want) return bad("CRC32C mismatch");
  std::vector<absl::string_view> lines =
      absl::StrSplit(AV(body), '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kManifestMagic) {
    return bad(absl::StrCat("first line is not '", kManifestMagic, "'"));
  }
  absl::flat_hash_map<absl::string_view, absl::string_view> fields;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t space = lines[i].find(' ');
    if (space == absl::string_view::npos) {
      return bad(absl::StrCat("line '", lines[i], "' has no value"));
    }
    fields[lines[i].substr(0, space)] = lines[i].substr(space + 1);
  }
  const auto field = [&](absl::string_view key) -> absl::string_view {
    auto it = fields.find(key);
    return it == fields.end() ? absl::string_view() : it->second;
  };
  CheckpointManifest m;
  m.schema.name = std::string(field("name"));
  auto metric = ParseMetric(SV(field("metric")));
  auto dtype = ParseDType(SV(field("dtype")));
  auto durability = ParseDurability(SV(field("durability")));
  if (!metric.ok()) return bad(metric.status().message());
  if (!dtype.ok()) return bad(dtype.status().message());
  if (!durability.ok()) return bad(durability.status().message());
  m.schema.metric = *metric;
  m.schema.dtype = *dtype;
  m.default_durability = *durability;
  if (!absl::SimpleAtoi(field("dim"), &m.schema.dim) ||
      !absl::SimpleAtod(field("recall"), &m.schema.default_recall_target) ||
      !absl::SimpleAtoi(field("sequence"), &m.sequence) ||
      !absl::SimpleAtoi(field("rows"), &m.rows) ||
      !absl::SimpleAtoi(field("data_bytes"), &m.data_bytes) ||
      field("data").empty()) {
    return bad(
        "missing or unreadable dim, recall, sequence, rows, data or "
        "data_bytes");
  }
  if (field("data") != "-") m.data_file = std::string(field("data"));
  if (absl::Status s = ValidateSchema(m.schema); !s.ok()) {
    return bad(s.message());
  }
  return m;
}

absl::Status WriteManifest(Env* env, const std::string& dir,
                           const CheckpointManifest& manifest) {
  return WriteFileAtomically(env, dir, JoinPath(dir, kManifestName),
                             SerializeManifest(manifest));
}

absl::StatusOr<CheckpointManifest> ReadManifest(Env* env,
                                                const std::string& dir) {
  const std::string path = JoinPath(dir, kManifestName);
  auto text = ReadFileToString(env, path);
  if (!text.ok()) return text.status();
  return ParseManifest(*text, path);
}

absl::StatusOr<CheckpointManifest> WriteCheckpoint(
    Env* env, const std::string& dir, const CheckpointManifest& manifest,
    const Snapshot& snapshot) {
  CheckpointManifest out = manifest;
  out.data_file = DataFileName(manifest.sequence);
  out.rows = snapshot.live_rows;
  const std::string path = JoinPath(dir, out.data_file);
  const std::string tmp = path + ".tmp";
  auto file_or = env->NewWritableFile(tmp);
  if (!file_or.ok()) return file_or.status();
  WritableFile& file = **file_or;
  const int dim = manifest.schema.dim;

  std::string buf;
  buf.append(kDataMagic, sizeof(kDataMagic));
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
  if (!*ok || std::memcmp(header, kDataMagic, sizeof(kDataMagic)) != 0 ||
      DecodeFixed32(header + 24) != Crc32c(0, header, 24)) {
    return bad(0, "bad header (magic or CRC32C)");
  }
  const uint32_t file_dim = DecodeFixed32(header + 8);
  const uint64_t file_rows = DecodeFixed64(header + 16);
  if (file_dim != dim || file_rows != static_cast<uint64_t>(manifest.rows)) {
    return bad(0,
               absl::StrCat("header says dim ", file_dim, " rows ", file_rows,
                            ", manifest dim ", dim, " rows ", manifest.rows));
  }
  uint64_t offset = kDataHeaderBytes;
  int64_t rows = 0;
  std::string chunk;
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
    const size_t id_bytes = size_t{count} * sizeof(uint64_t);
    const size_t bytes = id_bytes + size_t{count} * dim * sizeof(float);
    chunk.resize(bytes);
    ok = read_exact(chunk.data(), bytes);
    if (!ok.ok()) return ok.status();
    if (!*ok) return bad(offset, "file ends inside a chunk");
    if (Crc32c(Crc32c(0, head + 4, 4), chunk.data(), bytes) !=
        DecodeFixed32(head)) {
      return bad(offset, "CRC32C mismatch");
    }
    ids.resize(count);
    vectors.resize(size_t{count} * dim);
    DecodeFixed64Array(chunk.data(), ids);
    DecodeFloatArray(chunk.data() + id_bytes, vectors);
    if (absl::Status s = on_rows(ids, vectors); !s.ok()) return s;
    rows += count;
    offset += sizeof(head) + bytes;
  }
  return absl::OkStatus();
}

absl::Status DeleteStaleCheckpointFiles(Env* env, const std::string& dir,
                                        const CheckpointManifest& manifest) {
  auto names = env->GetChildren(dir);
  if (!names.ok()) return names.status();
  absl::Status first;
  for (const std::string& name : *names) {
    const bool data = name.starts_with("ckpt-") && name != manifest.data_file;
    const bool tmp = name.ends_with(".tmp");
    if (data || tmp) first.Update(env->DeleteFile(JoinPath(dir, name)));
  }
  return first;
}

}  // namespace peakknn
