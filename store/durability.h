// When a write is acknowledged relative to the disk.
#pragma once

#include <cstdint>
#include <string_view>

namespace peakknn {

enum class Durability : int32_t {
  // Per write: the collection's default. Per collection: the store's default.
  kDefault = 0,
  // Acknowledged after the WAL record is fsynced: survives power loss.
  kFsync = 1,
  // Acknowledged after the WAL record is written to the OS but before any
  // fsync: survives a process crash, not a power loss. For bulk loads.
  kNone = 2,
};

inline std::string_view DurabilityName(Durability d) {
  switch (d) {
    case Durability::kFsync:
      return "fsync";
    case Durability::kNone:
      return "none";
    case Durability::kDefault:
      break;
  }
  return "default";
}

}  // namespace peakknn
