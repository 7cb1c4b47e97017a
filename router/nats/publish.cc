#include "router/nats/publish.h"

#include <algorithm>
#include <climits>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "router/nats/nats_status.h"

namespace peakknn::nats {
namespace {

// One attempt waits at most this long for its ack. An ack lost with a dying
// server never comes; another attempt (to the server the client reconnected
// to) is cheaper than waiting out the whole budget.
constexpr absl::Duration kAttemptTimeout = absl::Seconds(2);
// Pause before retrying after a transient error, so that a client that lost
// its server does not spin while it reconnects.
constexpr absl::Duration kRetryPause = absl::Milliseconds(50);

struct PubAckDeleter {
  void operator()(jsPubAck* ack) const { jsPubAck_Destroy(ack); }
};

}  // namespace

absl::StatusOr<PublishAck> Publish(NatsConnection& conn,
                                   std::string_view subject,
                                   std::string_view msg_id,
                                   std::string_view payload,
                                   const PublishOptions& options) {
  const std::string subject_str(subject);
  const std::string id(msg_id);
  const std::string what = absl::StrCat("publish to subject ", subject_str,
                                        " (message id ", id, ")");
  if (id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty message id"));
  }
  if (payload.size() > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": payload of ", payload.size(), " bytes"));
  }
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Status last_error;
  for (int attempt = 1;; ++attempt) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::Status(
          last_error.code(),
          absl::StrCat(attempt - 1, " attempts in ",
                       absl::FormatDuration(options.timeout),
                       " unacknowledged; last: ", last_error.message()));
    }
    jsPubOptions pub_options;
    jsPubOptions_Init(&pub_options);
    pub_options.MsgId = id.c_str();
    pub_options.MaxWait = std::max<int64_t>(
        1, absl::ToInt64Milliseconds(std::min(left, kAttemptTimeout)));
    pub_options.ExpectLastSeq = options.expected_last_sequence;
    if (!options.expected_stream.empty()) {
      pub_options.ExpectStream = options.expected_stream.c_str();
    }
    jsPubAck* raw = nullptr;
    jsErrCode js_code = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_Publish(&raw, conn.jetstream(), subject_str.c_str(), payload.data(),
                   static_cast<int>(payload.size()), &pub_options, &js_code);
    if (s == NATS_OK) {
      std::unique_ptr<jsPubAck, PubAckDeleter> ack(raw);
      return PublishAck{.sequence = ack->Sequence, .duplicate = ack->Duplicate};
    }
    last_error = NatsError(s, what, js_code);
    if (!IsTransient(last_error)) return last_error;
    absl::SleepFor(std::min(kRetryPause, deadline - absl::Now()));
  }
}

}  // namespace peakknn::nats
