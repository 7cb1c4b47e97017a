// Helpers the fuzz targets share: a scratch directory for readers that take
// a path, and recovery of a collection directory built from fuzz input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "store/manifest.h"
#include "store/recovery.h"

namespace peakknn::fuzz {

// A directory of this process's own (created on first use under $TMPDIR,
// else /dev/shm when it exists, else /tmp), emptied by each call: one
// directory reused for every input keeps the file system out of the
// execution rate. Aborts when it cannot be made (no input can run then).
const std::string& FreshScratchDir();

// Writes `bytes` to `path`, replacing it; aborts on failure (the scratch
// directory is ours, so that is the machine's problem, not the input's).
void WriteFile(const std::string& path, std::string_view bytes);

// What each target defines: one input, split by fuzz_entry.cc into its
// first byte (`lead`: the target's flags or selector, see its header
// comment) and the rest (`body`). Empty inputs are not passed on.
void FuzzOne(uint8_t lead, std::string_view body);

// A schema for fuzzed store files: metric and dtype from the low three bits
// of `selector` (l2/ip/cosine x f32/bf16), the given dim.
CollectionSchema FuzzSchema(uint8_t selector, int dim);

// Recovers the collection directory `dir` (no log output), then reads every
// row back and searches one query, so what replay built is used too.
// Recovery may fail on fuzzed files; it must not crash.
void RecoverAndUse(const std::string& dir, bool truncate_corrupt_wal);

}  // namespace peakknn::fuzz
