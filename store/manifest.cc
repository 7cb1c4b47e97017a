#include "store/manifest.h"

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/echo.h"
#include "base/string_view.h"
#include "store/crc32c.h"
#include "store/data_dir.h"

namespace peakknn {
namespace {

// The first line is kMagicPrefix followed by the format version.
constexpr std::string_view kMagicPrefix = "peakknn-manifest ";

absl::StatusOr<Durability> ParseDurability(std::string_view text) {
  if (text == "fsync") return Durability::kFsync;
  if (text == "none") return Durability::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("durability must be fsync or none, got '", AV(text), "'"));
}

// Checks the first line before anything else: a newer version may lay out
// (and checksum) the rest differently.
absl::Status CheckVersion(std::string_view text, std::string_view path) {
  const std::string_view first = text.substr(0, text.find('\n'));
  int version;
  if (!first.starts_with(kMagicPrefix) ||
      !absl::SimpleAtoi(AV(first.substr(kMagicPrefix.size())), &version)) {
    return absl::DataLossError(absl::StrCat(
        "manifest ", AV(path), ": first line is not '", AV(kMagicPrefix),
        "<version>' (not a peakknn MANIFEST, or damaged)"));
  }
  if (version != kManifestFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "manifest ", AV(path), ": format version ", version,
        "; this build reads version ", kManifestFormatVersion,
        " only. Open this data directory with the release that wrote it"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SerializeManifest(const CheckpointManifest& m) {
  std::string text = absl::StrCat(
      AV(kMagicPrefix), kManifestFormatVersion, "\nname ", m.schema.name,
      "\ndim ", m.schema.dim, "\nmetric ", AV(MetricName(m.schema.metric)),
      "\ndtype ", AV(DTypeName(m.schema.dtype)), "\nrecall ",
      absl::StrFormat("%.17g", m.schema.default_recall_target), "\ndurability ",
      AV(DurabilityName(m.default_durability)), "\nsequence ", m.sequence,
      "\ndata ", m.data_file.empty() ? "-" : m.data_file, "\nrows ", m.rows,
      "\ndata_bytes ", m.data_bytes, "\n");
  absl::StrAppend(&text, "crc32c ", absl::Hex(Crc32c(text)), "\n");
  return text;
}

absl::StatusOr<CheckpointManifest> ParseManifest(std::string_view text,
                                                 std::string_view path) {
  if (absl::Status s = CheckVersion(text, path); !s.ok()) return s;
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
  if (m.rows < 0) return bad(absl::StrCat("rows ", m.rows, " is negative"));
  if (field("data") != "-") {
    if (!ParseCheckpointFileName(SV(field("data")))) {
      return bad(absl::StrCat("data ", QuoteInput(SV(field("data"))),
                              " is not a checkpoint file name "
                              "(ckpt-<20 digits>.dat)"));
    }
    m.data_file = std::string(field("data"));
  }
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

}  // namespace peakknn
