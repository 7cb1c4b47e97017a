#include "router/nats/stream.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "router/nats/nats_status.h"

namespace peakknn::nats {
namespace {

struct StreamInfoDeleter {
  void operator()(jsStreamInfo* info) const { jsStreamInfo_Destroy(info); }
};
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, StreamInfoDeleter>;

// Durations travel as nanoseconds; zero means "no limit".
int64_t Nanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

StreamInfo FromNats(const jsStreamInfo& info) {
  StreamInfo out;
  const jsStreamConfig& c = *info.Config;
  out.config.name = c.Name;
  for (int i = 0; i < c.SubjectsLen; ++i) {
    out.config.subjects.emplace_back(c.Subjects[i]);
  }
  out.config.replicas = static_cast<int>(c.Replicas);
  out.config.max_bytes = c.MaxBytes;
  out.config.max_age = absl::Nanoseconds(c.MaxAge);
  out.config.duplicate_window = absl::Nanoseconds(c.Duplicates);
  out.config.max_message_bytes = c.MaxMsgSize;
  out.state.first_sequence = info.State.FirstSeq;
  out.state.last_sequence = info.State.LastSeq;
  out.state.messages = info.State.Msgs;
  out.state.bytes = info.State.Bytes;
  if (info.Cluster != nullptr && info.Cluster->Leader != nullptr) {
    out.leader = info.Cluster->Leader;
  }
  return out;
}

}  // namespace

absl::StatusOr<StreamInfo> CreateOrUpdateStream(NatsConnection& conn,
                                                const StreamConfig& config) {
  std::vector<const char*> subjects;
  for (const std::string& subject : config.subjects) {
    subjects.push_back(subject.c_str());
  }
  jsStreamConfig c;
  jsStreamConfig_Init(&c);
  c.Name = config.name.c_str();
  c.Subjects = subjects.data();
  c.SubjectsLen = static_cast<int>(subjects.size());
  c.Retention = js_LimitsPolicy;
  c.Discard = js_DiscardOld;
  c.Storage = js_FileStorage;
  c.Replicas = config.replicas;
  c.MaxBytes = config.max_bytes;
  c.MaxAge = Nanos(config.max_age);
  c.Duplicates = Nanos(config.duplicate_window);
  c.MaxMsgSize = config.max_message_bytes;

  jsOptions options = conn.RequestOptions();
  jsStreamInfo* raw = nullptr;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&raw, conn.jetstream(), &c, &options, &js_code);
  if (s != NATS_OK && js_code == JSStreamNameExistErr) {
    // It exists with another configuration: bring it to this one.
    js_code = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&raw, conn.jetstream(), &c, &options, &js_code);
  }
  if (s != NATS_OK) {
    return NatsError(s, absl::StrCat("create or update stream ", config.name),
                     js_code);
  }
  StreamInfoPtr info(raw);
  return FromNats(*info);
}

absl::StatusOr<StreamInfo> GetStreamInfo(NatsConnection& conn,
                                         std::string_view name) {
  const std::string stream(name);
  jsOptions options = conn.RequestOptions();
  jsStreamInfo* raw = nullptr;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&raw, conn.jetstream(), stream.c_str(),
                                        &options, &js_code);
  if (s != NATS_OK) {
    return NatsError(s, absl::StrCat("get info of stream ", stream), js_code);
  }
  StreamInfoPtr info(raw);
  return FromNats(*info);
}

absl::Status DeleteStream(NatsConnection& conn, std::string_view name) {
  const std::string stream(name);
  jsOptions options = conn.RequestOptions();
  jsErrCode js_code = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_DeleteStream(conn.jetstream(), stream.c_str(), &options, &js_code);
  if (s != NATS_OK) {
    return NatsError(s, absl::StrCat("delete stream ", stream), js_code);
  }
  return absl::OkStatus();
}

}  // namespace peakknn::nats
