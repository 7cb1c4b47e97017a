#include "router/nats/pull_consumer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "router/nats/nats_status.h"
#include "router/nats/stream.h"

namespace peakknn::nats {
namespace {

struct ConsumerInfoDeleter {
  void operator()(jsConsumerInfo* info) const { jsConsumerInfo_Destroy(info); }
};
struct MetaDataDeleter {
  void operator()(jsMsgMetaData* meta) const { jsMsgMetaData_Destroy(meta); }
};

}  // namespace

std::string_view ConsumedMessage::data() const {
  return std::string_view(
      natsMsg_GetData(msg_.get()),
      static_cast<size_t>(natsMsg_GetDataLength(msg_.get())));
}

absl::StatusOr<std::unique_ptr<PullConsumer>> PullConsumer::Open(
    NatsConnection& conn, const PullConsumerConfig& config,
    uint64_t start_sequence) {
  std::unique_ptr<PullConsumer> consumer(new PullConsumer(conn, config));
  if (start_sequence == kResumeFromAckFloor) {
    jsOptions options = conn.RequestOptions();
    jsConsumerInfo* raw = nullptr;
    jsErrCode js_code = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_GetConsumerInfo(&raw, conn.jetstream(), config.stream.c_str(),
                           config.durable.c_str(), &options, &js_code);
    std::unique_ptr<jsConsumerInfo, ConsumerInfoDeleter> info(raw);
    if (s == NATS_OK) {
      start_sequence = info->AckFloor.Stream + 1;
    } else if (absl::Status error = NatsError(
                   s, absl::StrCat("get ", consumer->Describe()), js_code);
               absl::IsNotFound(error)) {
      start_sequence = 1;
    } else {
      return error;
    }
  }
  if (absl::Status s = consumer->PositionAt(start_sequence); !s.ok()) {
    return s;
  }
  return consumer;
}

PullConsumer::~PullConsumer() { natsSubscription_Destroy(subscription_); }

std::string PullConsumer::Describe() const {
  return absl::StrCat("consumer ", config_.durable, " on stream ",
                      config_.stream);
}

absl::Status PullConsumer::PositionAt(uint64_t sequence) {
  absl::StatusOr<StreamInfo> info = GetStreamInfo(conn_, config_.stream);
  if (!info.ok()) return info.status();
  const StreamState& state = info->state;
  if (sequence < state.first_sequence) {
    return absl::OutOfRangeError(absl::StrCat(
        Describe(), ": sequence ", sequence,
        " aged out of the stream, which holds ", state.first_sequence, "..",
        state.last_sequence, "; bootstrap from a peer"));
  }
  if (sequence > state.last_sequence + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        Describe(), ": sequence ", sequence,
        " is past the stream's last sequence ", state.last_sequence,
        " + 1 (was the stream deleted and created again?)"));
  }
  natsSubscription_Destroy(subscription_);
  subscription_ = nullptr;

  // A consumer's start cannot be changed: delete it, create it afresh.
  jsOptions options = conn_.RequestOptions();
  jsErrCode js_code = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteConsumer(conn_.jetstream(), config_.stream.c_str(),
                                   config_.durable.c_str(), &options, &js_code);
  if (s != NATS_OK) {
    absl::Status error =
        NatsError(s, absl::StrCat("delete ", Describe()), js_code);
    if (!absl::IsNotFound(error)) return error;
  }
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = config_.durable.c_str();
  cc.FilterSubject = config_.subject.c_str();
  cc.DeliverPolicy = js_DeliverByStartSequence;
  cc.OptStartSeq = sequence;
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = absl::ToInt64Nanoseconds(config_.ack_wait);
  cc.MaxAckPending = config_.max_ack_pending;
  js_code = static_cast<jsErrCode>(0);
  s = js_AddConsumer(nullptr, conn_.jetstream(), config_.stream.c_str(), &cc,
                     &options, &js_code);
  if (s != NATS_OK) {
    return NatsError(
        s, absl::StrCat("create ", Describe(), " at sequence ", sequence),
        js_code);
  }
  jsSubOptions sub_options;
  jsSubOptions_Init(&sub_options);
  sub_options.Stream = config_.stream.c_str();
  sub_options.Consumer = config_.durable.c_str();
  js_code = static_cast<jsErrCode>(0);
  s = js_PullSubscribe(&subscription_, conn_.jetstream(),
                       config_.subject.c_str(), config_.durable.c_str(),
                       &options, &sub_options, &js_code);
  if (s != NATS_OK) {
    subscription_ = nullptr;
    return NatsError(s, absl::StrCat("subscribe to ", Describe()), js_code);
  }
  next_sequence_ = sequence;
  reposition_ = false;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ConsumedMessage>> PullConsumer::Fetch(
    int max_messages, absl::Duration timeout) {
  if (reposition_) {
    if (absl::Status s = PositionAt(next_sequence_); !s.ok()) return s;
  }
  natsMsgList list = {};
  jsErrCode js_code = static_cast<jsErrCode>(0);
  const natsStatus s = natsSubscription_Fetch(
      &list, subscription_, std::max(max_messages, 1),
      std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)), &js_code);
  std::vector<ConsumedMessage> out;
  if (s == NATS_TIMEOUT) return out;
  if (s != NATS_OK) {
    return NatsError(s, absl::StrCat("fetch from ", Describe()), js_code);
  }
  bool gap = false;
  for (int i = 0; i < list.Count; ++i) {
    natsMsg* msg = std::exchange(list.Msgs[i], nullptr);
    jsMsgMetaData* raw_meta = nullptr;
    if (natsStatus ms = natsMsg_GetMetaData(&raw_meta, msg); ms != NATS_OK) {
      natsMsg_Destroy(msg);
      natsMsgList_Destroy(&list);
      return NatsError(
          ms, absl::StrCat("read metadata of a message from ", Describe()));
    }
    const uint64_t sequence =
        std::unique_ptr<jsMsgMetaData, MetaDataDeleter>(raw_meta)
            ->Sequence.Stream;
    ConsumedMessage message(msg, sequence);
    if (gap || sequence > next_sequence_) {
      gap = true;  // dropped unacked: the re-created consumer sends it again
    } else if (sequence < next_sequence_) {
      // Delivered again after its ack wait: already returned once.
      natsMsg_Ack(msg, nullptr);
    } else {
      out.push_back(std::move(message));
      ++next_sequence_;
    }
  }
  natsMsgList_Destroy(&list);
  if (gap) {
    // Either retention dropped next_sequence_ (PositionAt says so) or a
    // delivery was lost in flight (it will come again).
    reposition_ = true;
    if (out.empty()) {
      if (absl::Status ps = PositionAt(next_sequence_); !ps.ok()) return ps;
    }
  }
  return out;
}

absl::Status PullConsumer::Ack(std::span<const ConsumedMessage> messages) {
  jsOptions options = conn_.RequestOptions();
  for (size_t i = 0; i < messages.size(); ++i) {
    natsMsg* msg = messages[i].msg_.get();
    jsErrCode js_code = static_cast<jsErrCode>(0);
    const natsStatus s = i + 1 < messages.size()
                             ? natsMsg_Ack(msg, &options)
                             : natsMsg_AckSync(msg, &options, &js_code);
    if (s != NATS_OK) {
      return NatsError(s,
                       absl::StrCat("ack sequence ", messages[i].sequence(),
                                    " to ", Describe()),
                       js_code);
    }
  }
  return absl::OkStatus();
}

}  // namespace peakknn::nats
