#include "router/replica_core.h"

#include <utility>

#include "base/status_macros.h"
#include "base/string_view.h"

namespace peakknn {
namespace {

// A local collection with its writes refused.
class ReadOnlyCollection final : public ServedCollection {
 public:
  explicit ReadOnlyCollection(std::shared_ptr<ServedCollection> local)
      : local_(std::move(local)) {}

  const CollectionSchema& schema() const override { return local_->schema(); }
  absl::StatusOr<SearchResults> Search(
      std::span<const float> queries,
      const SearchParams& params) const override {
    return local_->Search(queries, params);
  }
  void WriteAsync(WriteMode, std::span<const uint64_t>, std::span<const float>,
                  const WriteOptions&, WriteCallback done,
                  std::shared_ptr<const void>) override {
    done(ReplicaWriteError());
  }
  void DeleteAsync(std::span<const uint64_t>, const WriteOptions&,
                   WriteCallback done) override {
    done(ReplicaWriteError());
  }
  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::span<const uint64_t> ids) const override {
    return local_->Get(ids);
  }
  RowCounts row_counts() const override { return local_->row_counts(); }

 private:
  const std::shared_ptr<ServedCollection> local_;
};

}  // namespace

absl::Status ReplicaWriteError() {
  return absl::FailedPreconditionError(
      "this server is a shard replica: write through the router");
}

absl::Status ReplicaCore::CreateCollection(const CollectionSchema&,
                                           Durability) {
  return ReplicaWriteError();
}

absl::Status ReplicaCore::DropCollection(std::string_view) {
  return ReplicaWriteError();
}

absl::StatusOr<std::shared_ptr<ServedCollection>> ReplicaCore::OpenCollection(
    std::string_view name) const {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<ServedCollection> local,
                           local_->OpenCollection(name));
  std::lock_guard lock(mu_);
  Wrapped& wrapped = wrapped_[AV(name)];
  std::shared_ptr<ServedCollection> wrapper = wrapped.wrapper.lock();
  if (wrapper == nullptr || wrapped.local != local.get()) {
    wrapped.local = local.get();
    wrapper = std::make_shared<ReadOnlyCollection>(std::move(local));
    wrapped.wrapper = wrapper;
  }
  return wrapper;
}

}  // namespace peakknn
