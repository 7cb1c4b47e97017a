// The main() the fuzz targets link with in the normal build (gcc, no
// libFuzzer): runs LLVMFuzzerTestOneInput once over every file in the
// directories (or single files) named on the command line, so ctest replays
// each target's seed corpus and every past crash. A crash, a sanitizer
// report or an abort fails the test. A path that does not exist is skipped
// (a target with no past crashes has no regressions directory); returns 1
// when no input was found at all, so an empty or misspelt corpus does not
// pass silently.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replay %s (%zu bytes)\n", path.c_str(), bytes.size());
  // A copy in its own allocation, so ASan sees reads past the input's end.
  const std::vector<uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.data(), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    if (!std::filesystem::exists(arg)) continue;
    if (!std::filesystem::is_directory(arg)) {
      RunFile(arg);
      ++inputs;
      continue;
    }
    for (const auto& entry : std::filesystem::directory_iterator(arg)) {
      if (!entry.is_regular_file() || entry.path().filename() == "README.md") {
        continue;
      }
      RunFile(entry.path());
      ++inputs;
    }
  }
  std::fprintf(stderr, "replayed %d inputs\n", inputs);
  return inputs > 0 ? 0 : 1;
}
