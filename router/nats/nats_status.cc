#include "router/nats/nats_status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace peakknn::nats {
namespace {

absl::StatusCode CodeFor(natsStatus status, jsErrCode js_code) {
  switch (js_code) {
    case JSStreamNotFoundErr:
    case JSConsumerNotFoundErr:
    case JSNoMessageFoundErr:
      return absl::StatusCode::kNotFound;
    case JSStreamNameExistErr:
    case JSConsumerNameExistErr:
      return absl::StatusCode::kAlreadyExists;
    case JSStreamWrongLastSequenceErr:
    case JSStreamWrongLastMsgIDErr:
      return absl::StatusCode::kAborted;
    case JSClusterNotAvailErr:
    case JSClusterNotLeaderErr:
    case JSClusterNoPeersErr:
    case JSClusterIncompleteErr:
      return absl::StatusCode::kUnavailable;
    case JSStreamInvalidConfig:
    case JSBadRequestErr:
    case JSStreamSubjectOverlapErr:
    case JSStreamReplicasNotSupportedErr:
    case JSStreamMessageExceedsMaximumErr:
      return absl::StatusCode::kInvalidArgument;
    case JSStreamNotMatchErr:
      return absl::StatusCode::kFailedPrecondition;
    case JSInsufficientResourcesErr:
    case JSStorageResourcesExceededErr:
    case JSMemoryResourcesExceededErr:
    case JSAccountResourcesExceededErr:
    case JSStreamLimitsErr:
    case JSMaximumStreamsLimitErr:
    case JSMaximumConsumersLimitErr:
      return absl::StatusCode::kResourceExhausted;
    default:
      break;
  }
  switch (status) {
    case NATS_TIMEOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case NATS_NOT_FOUND:
      return absl::StatusCode::kNotFound;
    case NATS_IO_ERROR:
    case NATS_CONNECTION_CLOSED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_DRAINING:
      return absl::StatusCode::kUnavailable;
    case NATS_ADDRESS_MISSING:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_ARG:
    case NATS_INVALID_TIMEOUT:
    case NATS_MAX_PAYLOAD:
      return absl::StatusCode::kInvalidArgument;
    case NATS_NO_MEMORY:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_SLOW_CONSUMER:
      return absl::StatusCode::kResourceExhausted;
    case NATS_ILLEGAL_STATE:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status NatsError(natsStatus status, std::string_view what,
                       jsErrCode js_code) {
  const std::string status_text = natsStatus_GetText(status);
  std::string message = absl::StrCat(AV(what), ": ", status_text);
  natsStatus last_status = NATS_OK;
  const char* last_text = nats_GetLastError(&last_status);
  // The last error text often just repeats the status text.
  if (last_text != nullptr && *last_text != '\0' && status_text != last_text) {
    absl::StrAppend(&message, " (", last_text, ")");
  }
  if (js_code != 0) {
    absl::StrAppend(&message, " [JetStream error ", static_cast<int>(js_code),
                    "]");
  }
  return absl::Status(CodeFor(status, js_code), message);
}

bool IsTransient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace peakknn::nats
