// libFuzzer's entry point for every target (and what replay_main.cc calls):
// the first byte selects the target's options, the rest is its input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  peakknn::fuzz::FuzzOne(
      data[0],
      std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  return 0;
}
