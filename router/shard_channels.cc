#include "router/shard_channels.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace peakknn {

ShardChannels::ShardChannels(ShardChannelOptions options)
    : options_(std::move(options)) {}

std::shared_ptr<v1::VectorSearch::Stub> ShardChannels::Stub(
    const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<v1::VectorSearch::Stub>& stub = stubs_[address];
  if (stub == nullptr) {
    grpc::ChannelArguments args;
    // Answers of a search over many queries can be large; the replicas
    // enforce their own --max_message_bytes.
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    stub = v1::VectorSearch::NewStub(grpc::CreateCustomChannel(
        address,
        options_.credentials != nullptr ? options_.credentials
                                        : grpc::InsecureChannelCredentials(),
        args));
  }
  return stub;
}

std::unique_ptr<grpc::ClientContext> ShardChannels::NewContext(
    absl::Time deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(deadline));
  if (!options_.token.empty()) {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", options_.token));
  }
  return context;
}

}  // namespace peakknn
