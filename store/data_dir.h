// The layout of a data directory and of the collection directories in it:
// every name the store gives a file or directory is made and recognised
// here.
//
//   <data_dir>/<name>/           a collection: a directory with a MANIFEST
//   <data_dir>/<name>.creating   a create in progress, or one interrupted
//   <data_dir>/<name>.dropping   a drop in progress, or one interrupted
//   <data_dir>/<anything else>   not the store's; left alone
//
//   <collection>/MANIFEST                the current checkpoint
//                                        (store/manifest.h)
//   <collection>/ckpt-<sequence>.dat     checkpoint rows, sequence in 20
//                                        digits (store/checkpoint.h)
//   <collection>/wal-<number>.log        log segments, number in at least
//                                        8 digits (store/wal_format.h)
//   <collection>/<file>.tmp              a file being written (TempFilePath,
//                                        store/env.h)
//
// A collection directory is created as <name>.creating and renamed into
// place, and dropped by renaming it to <name>.dropping first, so a crash
// never leaves a half-made or half-deleted collection under its own name;
// recovery removes the leftovers (store/collection_manager.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "store/env.h"

namespace peakknn {

inline constexpr char kManifestName[] = "MANIFEST";

// "ckpt-00000000000000000042.dat" for sequence 42.
std::string CheckpointFileName(uint64_t sequence);
bool IsCheckpointFileName(std::string_view name);
// The sequence of a name CheckpointFileName makes, exactly (20 digits); nullopt
// for any other name. A MANIFEST naming anything else (a path, "../x") is
// corrupt.
std::optional<uint64_t> ParseCheckpointFileName(std::string_view name);

// "wal-00000042.log" <-> 42.
std::string WalSegmentName(uint64_t number);
std::optional<uint64_t> ParseWalSegmentName(std::string_view name);

// What an entry of a data directory is.
enum class DataDirEntry {
  kCollection,   // a directory holding a MANIFEST
  kInterrupted,  // <name>.creating / <name>.dropping
  kOther,
};
DataDirEntry ClassifyDataDirEntry(Env* env, const std::string& data_dir,
                                  std::string_view name);

// Where collection directory `dir` is assembled before its rename into
// place.
std::string CreatingDir(std::string_view dir);

// Deletes collection directory `dir` so that a crash part way leaves either
// the whole collection or a <dir>.dropping leftover: renames it, fsyncs the
// parent, then deletes its files and it (RemoveFlatDir).
absl::Status DropCollectionDir(Env* env, const std::string& dir);

// Deletes every file of `dir` (which holds no subdirectories), then `dir`.
absl::Status RemoveFlatDir(Env* env, const std::string& dir);

// "dir/name".
std::string JoinPath(std::string_view dir, std::string_view name);
// The directory holding `path`: "a/b" -> "a", "/b" -> "/", "b" -> ".".
std::string ParentDir(std::string_view path);

}  // namespace peakknn
