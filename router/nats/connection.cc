#include "router/nats/connection.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/nats/nats_status.h"

namespace peakknn::nats {
namespace {

struct OptionsDeleter {
  void operator()(natsOptions* options) const { natsOptions_Destroy(options); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<NatsConnection>> NatsConnection::Connect(
    const ConnectOptions& options) {
  const std::string servers = absl::StrJoin(options.servers, ",");
  if (options.servers.empty()) {
    return absl::InvalidArgumentError("connect to NATS: no server URLs given");
  }
  natsOptions* raw_options = nullptr;
  if (natsStatus s = natsOptions_Create(&raw_options); s != NATS_OK) {
    return NatsError(s, "create NATS connection options");
  }
  std::unique_ptr<natsOptions, OptionsDeleter> nats_options(raw_options);
  std::vector<const char*> urls;
  for (const std::string& url : options.servers) urls.push_back(url.c_str());
  natsStatus s = natsOptions_SetServers(raw_options, urls.data(),
                                        static_cast<int>(urls.size()));
  if (s == NATS_OK)
    s = natsOptions_SetNoRandomize(raw_options, !options.randomize);
  if (s == NATS_OK && !options.name.empty()) {
    s = natsOptions_SetName(raw_options, options.name.c_str());
  }
  if (s == NATS_OK) {
    s = natsOptions_SetTimeout(
        raw_options, absl::ToInt64Milliseconds(options.connect_timeout));
  }
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(raw_options, true);
  if (s == NATS_OK) {
    s = natsOptions_SetMaxReconnect(raw_options,
                                    options.max_reconnect_attempts);
  }
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectWait(
        raw_options, absl::ToInt64Milliseconds(options.reconnect_wait));
  }
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectBufSize(raw_options,
                                        options.reconnect_buffer_bytes);
  }
  if (s != NATS_OK) {
    return NatsError(s,
                     absl::StrCat("set NATS connection options for ", servers));
  }

  natsConnection* conn = nullptr;
  s = natsConnection_Connect(&conn, raw_options);
  if (s != NATS_OK) {
    return NatsError(s, absl::StrCat("connect to NATS at ", servers));
  }
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = absl::ToInt64Milliseconds(options.jetstream_timeout);
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, conn, &js_options);
  if (s != NATS_OK) {
    absl::Status error =
        NatsError(s, absl::StrCat("open JetStream context on ", servers));
    natsConnection_Destroy(conn);
    return error;
  }
  return std::unique_ptr<NatsConnection>(
      new NatsConnection(conn, js, options.jetstream_timeout));
}

NatsConnection::~NatsConnection() {
  jsCtx_Destroy(js_);
  natsConnection_Destroy(conn_);
}

int64_t NatsConnection::MaxPayload() const {
  return natsConnection_GetMaxPayload(conn_);
}

std::string NatsConnection::ConnectedUrl() const {
  char url[256] = {};
  if (natsConnection_GetConnectedUrl(conn_, url, sizeof(url)) != NATS_OK) {
    return "";
  }
  return url;
}

jsOptions NatsConnection::RequestOptions() const {
  jsOptions options;
  jsOptions_Init(&options);
  options.Wait = absl::ToInt64Milliseconds(jetstream_timeout_);
  return options;
}

}  // namespace peakknn::nats
