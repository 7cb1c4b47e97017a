// What a --listen address exposes: whether only this machine can connect.
#pragma once

#include "absl/strings/string_view.h"

namespace peakknn::server {

// True for addresses only local clients can reach: a host of localhost,
// 127.0.0.0/8, ::1 (or ::ffff:127.x.y.z), with or without gRPC's "ipv4:" /
// "ipv6:" prefix, and "unix:" sockets. Anything else (0.0.0.0, [::], a
// name, a routable address) is reachable from the network.
bool IsLocalOnly(absl::string_view listen);

}  // namespace peakknn::server
