#include "router/nats/kv_bucket.h"

#include <algorithm>
#include <climits>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "router/nats/nats_status.h"
#include "router/nats/publish.h"
#include "router/nats/stream.h"

namespace peakknn::nats {
namespace {

// Key of the bucket's first message: a delete marker, so readers never see
// it (see WriteIf).
constexpr char kFirstMessageKey[] = "_peakknn_first";

struct MsgDeleter {
  void operator()(natsMsg* msg) const { natsMsg_Destroy(msg); }
};
struct EntryDeleter {
  void operator()(kvEntry* entry) const { kvEntry_Destroy(entry); }
};
using EntryPtr = std::unique_ptr<kvEntry, EntryDeleter>;

KvEntry FromNats(kvEntry* entry) {
  KvEntry out;
  out.key = kvEntry_Key(entry);
  out.revision = kvEntry_Revision(entry);
  out.created = absl::FromUnixNanos(kvEntry_Created(entry));
  // A purge (all history removed) reads as a delete to our callers.
  out.op = kvEntry_Operation(entry) == kvOp_Put ? KvEntry::Op::kPut
                                                : KvEntry::Op::kDelete;
  if (out.op == KvEntry::Op::kPut) {
    out.value.assign(static_cast<const char*>(kvEntry_Value(entry)),
                     static_cast<size_t>(kvEntry_ValueLen(entry)));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KvBucket>> KvBucket::CreateOrBind(
    NatsConnection& conn, const KvBucketConfig& config) {
  kvConfig c;
  kvConfig_Init(&c);
  c.Bucket = config.name.c_str();
  c.Replicas = config.replicas;
  c.History = static_cast<uint8_t>(config.history);
  c.TTL = absl::ToInt64Nanoseconds(config.ttl);
  c.MaxBytes = config.max_bytes;
  c.StorageType = js_FileStorage;
  kvStore* kv = nullptr;
  if (natsStatus s = js_CreateKeyValue(&kv, conn.jetstream(), &c);
      s != NATS_OK) {
    return NatsError(
        s, absl::StrCat("create or bind KeyValue bucket ", config.name));
  }
  return std::unique_ptr<KvBucket>(new KvBucket(conn, kv, config.name));
}

// The bucket's stream and subjects are NATS's KeyValue layout (ADR-8):
// stream KV_<bucket>, subject $KV.<bucket>.<key>.
KvBucket::KvBucket(NatsConnection& conn, kvStore* kv, std::string name)
    : conn_(conn),
      kv_(kv),
      name_(std::move(name)),
      stream_(absl::StrCat("KV_", name_)),
      subject_prefix_(absl::StrCat("$KV.", name_, ".")) {}

KvBucket::~KvBucket() { kvStore_Destroy(kv_); }

std::string KvBucket::Describe(std::string_view key) const {
  return absl::StrCat("key ", AV(key), " in bucket ", name_);
}

absl::Status KvBucket::CheckKey(std::string_view key) const {
  const bool valid =
      !key.empty() && key.front() != '.' && key.back() != '.' &&
      key.find("..") == std::string_view::npos &&
      std::all_of(key.begin(), key.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
               c == '/' || c == '_' || c == '=' || c == '.';
      });
  if (valid) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      Describe(key), ": not a key (1+ of [-/_=.A-Za-z0-9], no empty token)"));
}

absl::StatusOr<KvEntry> KvBucket::Get(std::string_view key) {
  const std::string what = absl::StrCat("get ", Describe(key));
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  const std::string subject = absl::StrCat(subject_prefix_, AV(key));
  jsOptions options = conn_.RequestOptions();
  natsMsg* raw = nullptr;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  if (natsStatus s = js_GetLastMsg(&raw, conn_.jetstream(), stream_.c_str(),
                                   subject.c_str(), &options, &js_code);
      s != NATS_OK) {
    return NatsError(s, what, js_code);
  }
  std::unique_ptr<natsMsg, MsgDeleter> msg(raw);
  const char* op = nullptr;
  if (natsMsgHeader_Get(msg.get(), "KV-Operation", &op) == NATS_OK) {
    return absl::NotFoundError(absl::StrCat(what, ": deleted (", op, ")"));
  }
  KvEntry entry;
  entry.key = std::string(key);
  entry.value.assign(natsMsg_GetData(msg.get()),
                     static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
  entry.revision = natsMsg_GetSequence(msg.get());
  entry.created = absl::FromUnixNanos(natsMsg_GetTime(msg.get()));
  return entry;
}

absl::StatusOr<uint64_t> KvBucket::Put(std::string_view key,
                                       std::string_view value) {
  const std::string what = absl::StrCat("put ", Describe(key));
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (value.size() > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": value of ", value.size(), " bytes"));
  }
  const std::string k(key);
  uint64_t revision = 0;
  if (natsStatus s = kvStore_Put(&revision, kv_, k.c_str(), value.data(),
                                 static_cast<int>(value.size()));
      s != NATS_OK) {
    return NatsError(s, what);
  }
  return revision;
}

absl::StatusOr<uint64_t> KvBucket::Create(std::string_view key,
                                          std::string_view value) {
  return WriteIf(key, value, std::nullopt);
}

absl::StatusOr<uint64_t> KvBucket::Update(std::string_view key,
                                          std::string_view value,
                                          uint64_t expected_revision) {
  return WriteIf(key, value, expected_revision);
}

absl::StatusOr<uint64_t> KvBucket::WriteIf(
    std::string_view key, std::string_view value,
    std::optional<uint64_t> expected_revision) {
  const std::string what =
      expected_revision.has_value()
          ? absl::StrCat("update ", Describe(key), " at revision ",
                         *expected_revision)
          : absl::StrCat("create ", Describe(key));
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  const std::string subject = absl::StrCat(subject_prefix_, AV(key));
  // One id for every attempt of this write: an attempt whose ack was lost
  // and that a retry finds stored is answered as a duplicate.
  std::random_device random;
  const std::string write_id =
      absl::StrCat("kv-", absl::Hex(uint64_t{random()} << 32 | random()),
                   absl::Hex(uint64_t{random()} << 32 | random()));
  const absl::Time deadline = absl::Now() + conn_.jetstream_timeout();
  for (;;) {
    absl::StatusOr<StreamInfo> info = GetStreamInfo(conn_, stream_);
    if (!info.ok()) return info.status();
    const uint64_t last = info->state.last_sequence;
    if (last == 0) {
      // "Expect last sequence 0" cannot be said: give the empty bucket a
      // first message (a delete marker, invisible to readers) and re-read.
      if (natsStatus s = kvStore_Delete(kv_, kFirstMessageKey); s != NATS_OK) {
        return NatsError(s, absl::StrCat(what, ": write the first message"));
      }
      continue;
    }
    absl::StatusOr<KvEntry> current = Get(key);
    if (!current.ok() && !absl::IsNotFound(current.status())) {
      return current.status();
    }
    if (!expected_revision.has_value() && current.ok()) {
      return absl::AlreadyExistsError(
          absl::StrCat(what, ": exists at revision ", current->revision));
    }
    if (expected_revision.has_value() &&
        (!current.ok() || current->revision != *expected_revision)) {
      return absl::AbortedError(absl::StrCat(
          what, ": found ",
          current.ok() ? absl::StrCat("revision ", current->revision)
                       : std::string("no value"),
          " (written concurrently)"));
    }
    absl::StatusOr<PublishAck> ack = Publish(conn_, subject, write_id, value,
                                             {.expected_stream = stream_,
                                              .timeout = deadline - absl::Now(),
                                              .expected_last_sequence = last});
    if (ack.ok()) return ack->sequence;
    // ABORTED: another key of the bucket was written since `last`.
    if (!absl::IsAborted(ack.status()) || absl::Now() >= deadline) {
      return absl::Status(ack.status().code(),
                          absl::StrCat(what, ": ", ack.status().message()));
    }
  }
}

absl::Status KvBucket::Delete(std::string_view key) {
  const std::string k(key);
  if (natsStatus s = kvStore_Delete(kv_, k.c_str()); s != NATS_OK) {
    return NatsError(s, absl::StrCat("delete ", Describe(key)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> KvBucket::Keys() {
  // libnats lists keys through an ordered consumer and stops once it has
  // received as many messages as the consumer said were pending when it
  // was created. A message that leaves the stream in between (a key
  // expiring by TTL, an older revision replaced by a concurrent Put) is
  // counted but never delivered, and the listing then waits out its whole
  // timeout. So each attempt gets a third of the JetStream timeout, and a
  // timed-out attempt is repeated with a new consumer.
  constexpr int kAttempts = 3;
  kvWatchOptions options;
  kvWatchOptions_Init(&options);
  options.Timeout = std::max<int64_t>(
      1, absl::ToInt64Milliseconds(conn_.jetstream_timeout()) / kAttempts);
  natsStatus s = NATS_TIMEOUT;
  kvKeysList list = {};
  for (int attempt = 0; attempt < kAttempts && s == NATS_TIMEOUT; ++attempt) {
    s = kvStore_Keys(&list, kv_, &options);
  }
  std::vector<std::string> keys;
  if (s == NATS_NOT_FOUND) return keys;  // the bucket is empty
  if (s != NATS_OK) {
    return NatsError(s, absl::StrCat("list the keys of bucket ", name_));
  }
  for (int i = 0; i < list.Count; ++i) keys.emplace_back(list.Keys[i]);
  kvKeysList_Destroy(&list);
  return keys;
}

absl::StatusOr<std::unique_ptr<KvWatcher>> KvBucket::Watch(
    std::string_view pattern) {
  const std::string p(pattern);
  const std::string what = absl::StrCat("watch ", p, " in bucket ", name_);
  kvWatcher* watcher = nullptr;
  if (natsStatus s = kvStore_Watch(&watcher, kv_, p.c_str(), nullptr);
      s != NATS_OK) {
    return NatsError(s, what);
  }
  return std::unique_ptr<KvWatcher>(new KvWatcher(watcher, what));
}

KvWatcher::~KvWatcher() { kvWatcher_Destroy(watcher_); }

absl::StatusOr<std::optional<KvEntry>> KvWatcher::Next(absl::Duration timeout) {
  kvEntry* raw = nullptr;
  const natsStatus s = kvWatcher_Next(
      &raw, watcher_, std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)));
  if (s == NATS_TIMEOUT) return std::nullopt;
  if (s == NATS_ILLEGAL_STATE) {
    return absl::CancelledError(absl::StrCat(description_, ": stopped"));
  }
  if (s != NATS_OK) return NatsError(s, description_);
  if (raw == nullptr) {  // the marker after the initial values
    caught_up_ = true;
    return std::nullopt;
  }
  EntryPtr entry(raw);
  return FromNats(entry.get());
}

void KvWatcher::Stop() { kvWatcher_Stop(watcher_); }

}  // namespace peakknn::nats
