#include "router/routed_collection.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/vector_checks.h"
#include "router/cluster_layout.h"
#include "router/nats/publish.h"
#include "router/nats/stream.h"
#include "router/shard_hash.h"
#include "router/shard_write_batch.h"
#include "router/sharded_search.h"

namespace peakknn {
namespace {

// A message id no other write of any router shares: the process id and a
// random tag (a restarted router, or one on another host, picks another)
// and a per-process counter.
std::string NextWriteId() {
  static const std::string prefix = [] {
    std::random_device random;
    const uint64_t tag = (static_cast<uint64_t>(random()) << 32) | random();
    return absl::StrCat("r", getpid(), "-", absl::Hex(tag), "-");
  }();
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(prefix, counter.fetch_add(1, std::memory_order_relaxed));
}

// The ids (and rows) of a batch that belong to each shard, in batch order.
struct ShardPart {
  std::vector<uint64_t> ids;
  std::vector<float> vectors;
};

std::map<int, ShardPart> SplitByShard(std::span<const uint64_t> ids,
                                      std::span<const float> vectors, int dim,
                                      int shard_count) {
  std::map<int, ShardPart> parts;
  for (size_t i = 0; i < ids.size(); ++i) {
    ShardPart& part = parts[ShardForId(ids[i], shard_count)];
    part.ids.push_back(ids[i]);
    if (!vectors.empty()) {
      const auto row = vectors.begin() + static_cast<ptrdiff_t>(i) * dim;
      part.vectors.insert(part.vectors.end(), row, row + dim);
    }
  }
  return parts;
}

}  // namespace

RoutedCollection::RoutedCollection(const RouterContext& context,
                                   CollectionSchema schema,
                                   CollectionRecord record)
    : context_(context),
      schema_(std::move(schema)),
      record_(std::move(record)),
      shard_count_(static_cast<int>(record_.collection.shard_count())) {}

absl::StatusOr<std::vector<uint64_t>> RoutedCollection::ReadFloors(
    const ReadConsistency& consistency) const {
  std::vector<uint64_t> floors(shard_count_, 0);
  if (!consistency.after.empty()) {
    if (consistency.after.size() != static_cast<size_t>(shard_count_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "after: a token of ", consistency.after.size(),
          " shard sequences, but collection ", schema_.name, " has ",
          shard_count_, " shards (a token of another collection?)"));
    }
    floors = consistency.after;
  }
  if (consistency.strong) {
    for (int shard = 0; shard < shard_count_; ++shard) {
      PEAKKNN_ASSIGN_OR_RETURN(
          nats::StreamInfo stream,
          nats::GetStreamInfo(*context_.conn,
                              ShardStreamName(schema_.name, shard)));
      floors[shard] = std::max(floors[shard], stream.state.last_sequence);
    }
  }
  return floors;
}

std::vector<ShardTargets> RoutedCollection::Targets(
    const std::vector<uint64_t>& floors) const {
  const std::shared_ptr<const ClusterSnapshot> snapshot =
      context_.view->Snapshot();
  const uint64_t turn = rotation_.fetch_add(1, std::memory_order_relaxed);
  std::vector<ShardTargets> targets(shard_count_);
  for (int shard = 0; shard < shard_count_; ++shard) {
    targets[shard].shard = shard;
    std::vector<ShardTarget>& list = targets[shard].replicas;
    for (const v1::ClusterMember& member : snapshot->MembersOf(shard)) {
      // Members that have not created the collection yet cannot answer.
      const auto it = member.applied_sequence().find(schema_.name);
      if (it == member.applied_sequence().end()) continue;
      list.push_back({member.replica(), member.address(), it->second});
    }
    if (!list.empty()) {
      std::rotate(list.begin(), list.begin() + (turn % list.size()),
                  list.end());
      // Those known to be far enough first (they will not wait).
      std::stable_partition(list.begin(), list.end(),
                            [floor = floors[shard]](const ShardTarget& t) {
                              return t.applied >= floor;
                            });
    }
  }
  return targets;
}

absl::StatusOr<SearchResults> RoutedCollection::Search(
    std::span<const float> queries, const SearchParams& params,
    const ReadConsistency& consistency) const {
  PEAKKNN_ASSIGN_OR_RETURN(const std::vector<uint64_t> floors,
                           ReadFloors(consistency));
  const int64_t num_queries =
      static_cast<int64_t>(queries.size()) / schema_.dim;
  const int64_t planned_rows =
      context_.view->Snapshot()->LiveRows(schema_.name, shard_count_);
  const double target = params.recall_target == 0
                            ? schema_.default_recall_target
                            : params.recall_target;
  ShardedSearchPlan plan;
  if (params.bins > 0) {
    // The caller's bins for the whole collection, shared like a plan's.
    plan.bins_per_shard = (params.bins + shard_count_ - 1) / shard_count_;
  } else {
    PEAKKNN_ASSIGN_OR_RETURN(
        plan, PlanShardedSearch(planned_rows, params.k, target, shard_count_));
  }

  // Every shard gets the same request, but for the position it must have
  // applied (one request per shard only then).
  v1::SearchRequest request;
  request.set_collection(schema_.name);
  request.mutable_queries()->Add(queries.begin(), queries.end());
  request.set_k(static_cast<uint32_t>(params.k));
  if (plan.exact) {
    request.set_recall_target(1.0);
  } else {
    request.set_bins(plan.bins_per_shard);
  }
  std::vector<v1::SearchRequest> requests;
  if (std::any_of(floors.begin(), floors.end(),
                  [](uint64_t f) { return f > 0; })) {
    requests.assign(shard_count_, request);
    for (int shard = 0; shard < shard_count_; ++shard) {
      requests[shard].set_min_applied_sequence(floors[shard]);
    }
  } else {
    requests.push_back(std::move(request));
  }
  std::vector<v1::SearchResponse> responses(shard_count_);
  PEAKKNN_RETURN_IF_ERROR(FanOut(
      *context_.channels, Targets(floors),
      [&](v1::VectorSearch::Stub& stub, grpc::ClientContext* rpc, int shard,
          std::function<void(grpc::Status)> done) {
        responses[shard].Clear();
        stub.async()->Search(rpc, &requests[requests.size() == 1 ? 0 : shard],
                             &responses[shard], std::move(done));
      },
      context_.fan_out));

  std::vector<ShardAnswer> answers(shard_count_);
  SearchResults results;
  results.num_queries = num_queries;
  results.k = params.k;
  results.exact = true;
  for (int shard = 0; shard < shard_count_; ++shard) {
    const v1::SearchResponse& response = responses[shard];
    if (response.results_size() != num_queries) {
      return absl::InternalError(absl::StrCat("shard ", shard, " answered ",
                                              response.results_size(),
                                              " queries, not ", num_queries));
    }
    ShardAnswer& answer = answers[shard];
    answer.k = params.k;
    answer.ids.assign(num_queries * params.k, 0);
    answer.distances.assign(num_queries * params.k, 0);
    answer.counts.resize(num_queries);
    for (int64_t q = 0; q < num_queries; ++q) {
      const v1::QueryResult& result = response.results(static_cast<int>(q));
      const int count = std::min<int>(result.ids_size(), params.k);
      if (result.distances_size() != result.ids_size()) {
        return absl::InternalError(
            absl::StrCat("shard ", shard, " query ", q, ": ", result.ids_size(),
                         " ids but ", result.distances_size(), " distances"));
      }
      std::copy_n(result.ids().begin(), count,
                  answer.ids.begin() + q * params.k);
      std::copy_n(result.distances().begin(), count,
                  answer.distances.begin() + q * params.k);
      answer.counts[q] = count;
    }
    results.live_rows += response.live_rows();
    results.exact = results.exact && response.exact();
  }
  PEAKKNN_ASSIGN_OR_RETURN(
      ShardAnswer merged,
      MergeShardAnswers(schema_.metric, answers, num_queries, params.k));
  results.rows_scanned = results.live_rows;
  results.ids = std::move(merged.ids);
  results.distances = std::move(merged.distances);
  results.counts = std::move(merged.counts);
  // Every shard exact: the merge is exact. Otherwise the shards' bins
  // together, over all the rows searched (a shard that ran exact because
  // its share reached its rows only raises the recall above this).
  results.bins =
      results.exact ? results.live_rows : plan.bins_per_shard * shard_count_;
  return results;
}

int64_t RoutedCollection::RowsPerMessage() const {
  // A row costs its floats and its id (protobuf: 8 bytes fixed64 each,
  // packed); 4 KiB of the payload are left for the message's framing and
  // the stream's headers. At least one row (a row over the payload limit
  // fails with Publish's INVALID_ARGUMENT naming the limit).
  const int64_t payload = context_.conn->MaxPayload();
  const int64_t row_bytes = int64_t{4} * schema_.dim + 8;
  return std::max<int64_t>(1, (payload - 4096) / row_bytes);
}

absl::StatusOr<WriteAck> RoutedCollection::Publish(
    v1::ShardWriteBatch::Mode mode, std::span<const uint64_t> ids,
    std::span<const float> vectors) {
  const std::string write_id = NextWriteId();
  WriteAck ack{.sequence = 0,
               .durability = Durability::kNone,
               .rows = static_cast<int64_t>(ids.size()),
               .shard_sequences = std::vector<uint64_t>(shard_count_, 0)};
  const int64_t per_message = RowsPerMessage();
  const int64_t floats_per_row = vectors.empty() ? 0 : schema_.dim;
  for (const auto& [shard, part] :
       SplitByShard(ids, vectors, schema_.dim, shard_count_)) {
    // A part larger than one NATS message goes as several, in order.
    for (size_t first = 0, chunk = 0; first < part.ids.size();
         first += per_message, ++chunk) {
      const size_t count =
          std::min<size_t>(per_message, part.ids.size() - first);
      absl::StatusOr<nats::PublishAck> published = nats::Publish(
          *context_.conn, ShardSubject(schema_.name, shard),
          absl::StrCat(write_id, "-", shard, "-", chunk),
          EncodeShardWriteBatch(
              mode, std::span(part.ids).subspan(first, count),
              std::span(part.vectors)
                  .subspan(first * floats_per_row, count * floats_per_row)),
          {.expected_stream = ShardStreamName(schema_.name, shard),
           .timeout = context_.publish_timeout});
      if (!published.ok()) {
        // Earlier parts may be stored: a batch is atomic within one
        // message only. Retrying the whole batch is safe for upserts and
        // deletes (they are idempotent).
        return absl::Status(
            published.status().code(),
            absl::StrCat("collection ", schema_.name, " shard ", shard,
                         ": the write was not acknowledged by its stream "
                         "(parts sent before may be stored; retry the "
                         "batch): ",
                         published.status().message()));
      }
      ack.sequence = std::max(ack.sequence, published->sequence);
      ack.shard_sequences[shard] = published->sequence;
    }
  }
  return ack;
}

void RoutedCollection::WriteAsync(WriteMode mode, std::span<const uint64_t> ids,
                                  std::span<const float> vectors,
                                  const WriteOptions& /*options*/,
                                  WriteCallback done,
                                  std::shared_ptr<const void> /*owner*/) {
  if (absl::Status s = CheckWriteBatch(schema_, ids, vectors); !s.ok()) {
    done(s);
    return;
  }
  // Replicas apply inserts as upserts (see the header).
  done(Publish(mode == WriteMode::kInsert ? v1::ShardWriteBatch::MODE_INSERT
                                          : v1::ShardWriteBatch::MODE_UPSERT,
               ids, vectors));
}

void RoutedCollection::DeleteAsync(std::span<const uint64_t> ids,
                                   const WriteOptions& /*options*/,
                                   WriteCallback done) {
  done(Publish(v1::ShardWriteBatch::MODE_DELETE, ids, {}));
}

absl::StatusOr<std::vector<std::optional<std::vector<float>>>>
RoutedCollection::Get(std::span<const uint64_t> ids,
                      const ReadConsistency& consistency) const {
  PEAKKNN_ASSIGN_OR_RETURN(const std::vector<uint64_t> floors,
                           ReadFloors(consistency));
  // Only the shards owning some of the ids are asked; `positions` maps
  // each one's answers back to the request's order.
  std::vector<std::vector<size_t>> positions(shard_count_);
  for (size_t i = 0; i < ids.size(); ++i) {
    positions[ShardForId(ids[i], shard_count_)].push_back(i);
  }
  const std::vector<ShardTargets> all_targets = Targets(floors);
  std::vector<int> asked;  // shard of each fan-out slot
  std::vector<ShardTargets> targets;
  std::vector<v1::GetRequest> requests;
  for (int shard = 0; shard < shard_count_; ++shard) {
    if (positions[shard].empty()) continue;
    asked.push_back(shard);
    targets.push_back(all_targets[shard]);
    v1::GetRequest& request = requests.emplace_back();
    request.set_collection(schema_.name);
    request.set_min_applied_sequence(floors[shard]);
    for (size_t i : positions[shard]) request.add_ids(ids[i]);
  }
  std::vector<v1::GetResponse> responses(asked.size());
  PEAKKNN_RETURN_IF_ERROR(FanOut(
      *context_.channels, targets,
      [&](v1::VectorSearch::Stub& stub, grpc::ClientContext* rpc, int slot,
          std::function<void(grpc::Status)> done) {
        responses[slot].Clear();
        stub.async()->Get(rpc, &requests[slot], &responses[slot],
                          std::move(done));
      },
      context_.fan_out));

  std::vector<std::optional<std::vector<float>>> vectors(ids.size());
  for (size_t slot = 0; slot < asked.size(); ++slot) {
    const std::vector<size_t>& slots = positions[asked[slot]];
    const v1::GetResponse& response = responses[slot];
    if (response.vectors_size() != static_cast<int>(slots.size())) {
      return absl::InternalError(
          absl::StrCat("shard ", asked[slot], " answered ",
                       response.vectors_size(), " ids, not ", slots.size()));
    }
    for (int i = 0; i < response.vectors_size(); ++i) {
      const v1::StoredVector& stored = response.vectors(i);
      if (!stored.found()) continue;
      vectors[slots[i]].emplace(stored.values().begin(), stored.values().end());
    }
  }
  return vectors;
}

RowCounts RoutedCollection::row_counts() const {
  const int64_t live =
      context_.view->Snapshot()->LiveRows(schema_.name, shard_count_);
  return {.rows = live, .live_rows = live, .shards = shard_count_};
}

}  // namespace peakknn
