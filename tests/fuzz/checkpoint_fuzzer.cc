// Fuzz target: checkpoint loading (store/checkpoint.h ReadCheckpointRows and
// recovery's restore of its rows). The input becomes the checkpoint data
// file of a collection directory whose MANIFEST names it, which is
// recovered and searched.
//
// Input layout: byte 0 is flags, the rest the data file's bytes.
//   bit 0     recompute the header's and every chunk's CRC32C before
//             writing, so mutations reach the row decoding and the restore
//   bits 2-4  the schema's metric and dtype (FuzzSchema)
// The MANIFEST agrees with the data file as the writer would have made it:
// dim and rows from its header (dim 4, rows 0 when the header is short or
// its dim is outside 1..kMaxDim) and data_bytes its size, so the input
// is read past the MANIFEST cross-checks.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/schema.h"
#include "store/coding.h"
#include "store/crc32c.h"
#include "store/data_dir.h"
#include "tests/fuzz/fuzz_env.h"

namespace peakknn::fuzz {
namespace {

// store/checkpoint.h: the data file's header and chunk header sizes.
constexpr size_t kHeaderBytes = 28;
constexpr size_t kChunkHeaderBytes = 8;
constexpr uint64_t kSequence = 5;

// Sets the header CRC, then each chunk's whose rows fit in `file`.
void FixCrcs(std::string& file, size_t dim) {
  if (file.size() < kHeaderBytes) return;
  EncodeFixed32(file.data() + 24, Crc32c(0, file.data(), 24));
  const size_t row_bytes = sizeof(uint64_t) + dim * sizeof(float);
  size_t offset = kHeaderBytes;
  while (file.size() - offset >= kChunkHeaderBytes) {
    char* const chunk = file.data() + offset;
    const size_t count = DecodeFixed32(chunk + 4);
    const size_t left = file.size() - offset - kChunkHeaderBytes;
    if (count > left / row_bytes) return;
    const size_t bytes = kChunkHeaderBytes + count * row_bytes;
    EncodeFixed32(chunk, Crc32c(0, chunk + 4, bytes - 4));
    offset += bytes;
  }
}

}  // namespace

void FuzzOne(uint8_t flags, std::string_view body) {
  std::string file(body);
  CheckpointManifest manifest;
  manifest.schema = FuzzSchema(static_cast<uint8_t>(flags >> 2), 4);
  if (file.size() >= kHeaderBytes) {
    const uint32_t dim = DecodeFixed32(file.data() + 8);
    if (dim >= 1 && dim <= static_cast<uint32_t>(kMaxDim)) {
      manifest.schema.dim = static_cast<int>(dim);
    }
    manifest.rows = static_cast<int64_t>(DecodeFixed64(file.data() + 16));
  }
  if ((flags & 1) != 0) {
    FixCrcs(file, static_cast<size_t>(manifest.schema.dim));
  }
  manifest.sequence = kSequence;
  manifest.data_file = CheckpointFileName(kSequence);
  manifest.data_bytes = file.size();

  const std::string& dir = FreshScratchDir();
  WriteFile(JoinPath(dir, kManifestName), SerializeManifest(manifest));
  WriteFile(JoinPath(dir, manifest.data_file), file);
  RecoverAndUse(dir, false);
}

}  // namespace peakknn::fuzz
