#include "router/cluster_view.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace peakknn {

const std::vector<v1::ClusterMember>& ClusterSnapshot::MembersOf(
    int shard) const {
  static const std::vector<v1::ClusterMember> kNone;
  const auto it = members.find(shard);
  return it == members.end() ? kNone : it->second;
}

int64_t ClusterSnapshot::LiveRows(const std::string& collection,
                                  int shard_count) const {
  int64_t total = 0;
  for (int shard = 0; shard < shard_count; ++shard) {
    int64_t most = 0;
    for (const v1::ClusterMember& member : MembersOf(shard)) {
      const auto it = member.live_rows().find(collection);
      if (it != member.live_rows().end()) most = std::max(most, it->second);
    }
    total += most;
  }
  return total;
}

ClusterView::ClusterView(ClusterMetadata& metadata,
                         const ClusterViewOptions& options)
    : metadata_(metadata),
      log_(LogOrStderr(options.log)),
      refresh_log_(absl::Seconds(30), log_),
      snapshot_(std::make_shared<const ClusterSnapshot>()),
      last_error_(absl::UnavailableError("the cluster view has not loaded")) {
  (void)Refresh();
  refresher_ = std::make_unique<PeriodicTask>(options.refresh_interval,
                                              [this] { (void)Refresh(); });
}

ClusterView::~ClusterView() { refresher_.reset(); }

absl::Status ClusterView::Ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (ever_refreshed_) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "the router cannot read the cluster's metadata from NATS yet: ",
      last_error_.message()));
}

std::shared_ptr<const ClusterSnapshot> ClusterView::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

absl::Status ClusterView::Refresh() {
  auto fresh = std::make_shared<ClusterSnapshot>();
  absl::Status status = [&]() -> absl::Status {
    PEAKKNN_ASSIGN_OR_RETURN(std::vector<CollectionRecord> records,
                             metadata_.ListCollections());
    for (CollectionRecord& record : records) {
      std::string name = record.collection.schema().name();
      fresh->collections.emplace(std::move(name), std::move(record));
    }
    PEAKKNN_ASSIGN_OR_RETURN(std::vector<v1::ClusterMember> members,
                             metadata_.ListMembers());
    // ListMembers sorts by (shard, replica).
    for (v1::ClusterMember& member : members) {
      const int shard = static_cast<int>(member.shard());
      fresh->members[shard].push_back(std::move(member));
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    refresh_log_.Log(absl::StrCat("router: cannot refresh the cluster view: ",
                                  status.ToString()));
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = status;
    return status;
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(fresh);
  ever_refreshed_ = true;
  return absl::OkStatus();
}

}  // namespace peakknn
