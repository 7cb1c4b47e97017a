#include "server/insert_stream_registry.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace peakknn::server {

InsertStreamRegistry::InsertStreamRegistry(const Options& options)
    : options_(options) {
  if (options_.idle_timeout > absl::ZeroDuration()) {
    sweeper_ = std::make_unique<PeriodicTask>(
        std::min(options_.idle_timeout / 4, absl::Seconds(1)),
        [this] { Sweep(); });
  }
}

InsertStreamRegistry::~InsertStreamRegistry() {
  if (sweeper_ != nullptr) sweeper_->Stop();
}

absl::Status InsertStreamRegistry::Add(Stream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int64_t>(streams_.size()) >= options_.max_streams) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "InsertStream: ", streams_.size(),
        " streams are open, the server's limit (--max_insert_streams=",
        options_.max_streams,
        "); close one or send batches on a stream already open"));
  }
  streams_.insert(stream);
  return absl::OkStatus();
}

void InsertStreamRegistry::Remove(Stream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(stream);
}

int64_t InsertStreamRegistry::open_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(streams_.size());
}

void InsertStreamRegistry::Sweep() {
  const absl::Time cutoff = absl::Now() - options_.idle_timeout;
  std::vector<Stream*> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Stream* stream : streams_) {
      if (stream->ClaimIdleClose(cutoff)) idle.push_back(stream);
    }
  }
  // Outside the lock: finishing may end the call at once, and its OnDone
  // calls Remove.
  const absl::Status status = absl::UnavailableError(absl::StrCat(
      "InsertStream: idle for more than ",
      absl::FormatDuration(options_.idle_timeout),
      " (--insert_stream_idle_s) with every batch acknowledged; closed by "
      "the server, open a new stream to write more"));
  for (Stream* stream : idle) stream->FinishIdle(status);
}

}  // namespace peakknn::server
