// Fuzz target: the MANIFEST (store/manifest.h ParseManifest, ReadManifest
// through recovery). The input is a MANIFEST's text; one that parses must
// survive a serialize/parse round trip unchanged, and is then recovered
// from (it names no data file that exists, so recovery stops after the
// MANIFEST and the checkpoint's first steps).
//
// Input layout: byte 0 is flags, the rest the text.
//   bit 0  replace the text from its last "crc32c " on (or append) with the
//          right CRC line, so mutations reach the field parsing
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_format.h"
#include "store/crc32c.h"
#include "store/data_dir.h"
#include "tests/fuzz/fuzz_env.h"

namespace peakknn::fuzz {
namespace {

void FixCrc(std::string& text) {
  const size_t at = text.rfind("crc32c ");
  if (at != std::string::npos) text.resize(at);
  text += absl::StrFormat("crc32c %08x\n", Crc32c(text));
}

}  // namespace

void FuzzOne(uint8_t flags, std::string_view body) {
  std::string text(body);
  if ((flags & 1) != 0) FixCrc(text);
  absl::StatusOr<CheckpointManifest> parsed = ParseManifest(text, "MANIFEST");
  if (!parsed.ok()) return;
  const std::string serialized = SerializeManifest(*parsed);
  absl::StatusOr<CheckpointManifest> again =
      ParseManifest(serialized, "MANIFEST");
  if (!again.ok() || SerializeManifest(*again) != serialized) {
    std::fprintf(stderr, "manifest round trip changed:\n%s\n", text.c_str());
    std::abort();
  }
  const std::string& dir = FreshScratchDir();
  WriteFile(JoinPath(dir, kManifestName), text);
  RecoverAndUse(dir, false);
}

}  // namespace peakknn::fuzz
