// The MANIFEST of a collection directory: the schema, the default
// durability and the current checkpoint. Text, one "key value" per line,
// the last line a CRC32C of everything before it:
//
//   peakknn-manifest 1
//   name <collection>
//   dim <int>
//   metric l2|ip|cosine
//   dtype f32|bf16
//   recall <default recall target, %.17g>
//   durability fsync|none
//   sequence <every write up to it is in the data file>
//   data <ckpt-<sequence>.dat, or - for none>
//   rows <rows in the data file>
//   data_bytes <its size>
//   crc32c <hex>
//
// Format version: the number on the first line, kManifestFormatVersion. It
// versions the collection directory: the MANIFEST's text and the WAL record
// layout (store/wal_format.h, whose segments carry no header of their own).
// A change to either bumps it; the checkpoint data file has its own version
// (store/checkpoint.h). A MANIFEST of another version is refused with
// FAILED_PRECONDITION naming the file, the version found and the one this
// build reads: the data is not damaged, the build is too old (or too new,
// for a version no longer read).
//
// Written atomically (store/env.h WriteFileAtomically): a crash leaves the
// old or the new MANIFEST.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/schema.h"
#include "store/durability.h"
#include "store/env.h"

namespace peakknn {

inline constexpr int kManifestFormatVersion = 1;

struct CheckpointManifest {
  CollectionSchema schema;
  Durability default_durability = Durability::kFsync;
  // Every write with a sequence <= this is in the data file; replay starts
  // after it.
  uint64_t sequence = 0;
  std::string data_file;  // empty: no rows
  int64_t rows = 0;
  uint64_t data_bytes = 0;
};

// Text form of a manifest (version kManifestFormatVersion) and back. Parse
// fails with FAILED_PRECONDITION on another format version and with
// DATA_LOSS on a bad CRC or field, naming `path` and what is wrong.
std::string SerializeManifest(const CheckpointManifest& manifest);
absl::StatusOr<CheckpointManifest> ParseManifest(std::string_view text,
                                                 std::string_view path);

// Atomically replaces dir/MANIFEST.
absl::Status WriteManifest(Env* env, const std::string& dir,
                           const CheckpointManifest& manifest);
absl::StatusOr<CheckpointManifest> ReadManifest(Env* env,
                                                const std::string& dir);

}  // namespace peakknn
