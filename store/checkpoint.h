// Checkpoints: a collection's live rows at a WAL sequence number, written so
// that a crash at any moment leaves either the old or the new checkpoint.
// The MANIFEST (store/manifest.h) names the current one; the names of the
// files are in store/data_dir.h.
//
// Data file, little-endian (store/coding.h):
//   header: 8-byte magic "PKNNCKP" + the format version as one ASCII digit
//           ("PKNNCKP1"), u32 dim, u32 zero, u64 rows, u32 CRC32C of the
//           previous 24 bytes
//   chunks: u32 CRC32C of the rest of the chunk, u32 count, u64 ids[count],
//           f32 vectors[count][dim]: stored values as Collection::Get returns
//           them (normalised under COSINE, bf16-rounded for bf16), so a
//           restore reproduces every stored bit.
// Only live rows are written: a restore is also a compaction.
//
// Format version: kCheckpointFormatVersion, in the magic. A data file of
// another version is refused with FAILED_PRECONDITION naming the file, the
// version found and the one this build reads; a file whose magic is not
// "PKNNCKP<digit>" is DATA_LOSS.
//
// Install protocol: data to TempFilePath(<file>), fsync, rename, then the
// same for MANIFEST, then fsync of the directory. Only after that may older
// data files and the WAL segments the checkpoint covers be deleted.
// Cost: O(live rows * dim) bytes written per checkpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/snapshot.h"
#include "store/env.h"
#include "store/manifest.h"

namespace peakknn {

inline constexpr int kCheckpointFormatVersion = 1;

// Writes the live rows of `snapshot` as the checkpoint at
// `manifest.sequence`, installs it and returns the installed manifest (with
// data_file, rows and data_bytes filled in). On error nothing visible
// changed: the previous checkpoint stays current.
absl::StatusOr<CheckpointManifest> WriteCheckpoint(
    Env* env, const std::string& dir, const CheckpointManifest& manifest,
    const Snapshot& snapshot);

// Streams the rows of a checkpoint in chunks: ids and row-major vectors.
// Verifies the version, every CRC and the row count; fails with DATA_LOSS
// naming the file and offset.
absl::Status ReadCheckpointRows(
    Env* env, const std::string& dir, const CheckpointManifest& manifest,
    const std::function<absl::Status(std::span<const uint64_t>,
                                     std::span<const float>)>& on_rows);

// Deletes data files in `dir` other than `manifest.data_file`, and stray
// temporary files. Best effort: returns the first error.
absl::Status DeleteStaleCheckpointFiles(Env* env, const std::string& dir,
                                        const CheckpointManifest& manifest);

}  // namespace peakknn
