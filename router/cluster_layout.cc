#include "router/cluster_layout.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace peakknn {

bool IsNameToken(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           c == '-';
  });
}

std::string CollectionKey(std::string_view collection) {
  return absl::StrCat("collections.", AV(collection));
}

std::string MemberKey(int shard, std::string_view replica) {
  return absl::StrCat("members.", shard, ".", AV(replica));
}

std::string ShardStreamName(std::string_view collection, int shard) {
  return absl::StrCat("peakknn_", AV(collection), "_", shard);
}

std::string ShardSubject(std::string_view collection, int shard) {
  return absl::StrCat("peakknn.writes.", AV(collection), ".", shard);
}

nats::StreamConfig ShardStreamConfig(std::string_view collection, int shard,
                                     const ShardStreamSettings& settings) {
  return nats::StreamConfig{
      .name = ShardStreamName(collection, shard),
      .subjects = {ShardSubject(collection, shard)},
      .replicas = settings.replicas,
      .max_bytes = settings.max_bytes,
      .max_age = settings.max_age,
      .duplicate_window = settings.duplicate_window,
  };
}

}  // namespace peakknn
