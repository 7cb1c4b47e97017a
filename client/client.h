// peakknn C++ client: a synchronous API over peakknn.v1.VectorSearch, plus
// batching helpers (InsertAll streams rows with a window of unacked
// batches; SearchAll splits many queries into requests).
//
// Errors are absl::Status with the server's code and message; when the
// server cannot be reached the message names the target. Thread-safe: one
// Client may be shared by many threads (gRPC channels multiplex).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "peakknn/v1/vector_search.grpc.pb.h"

namespace peakknn::client {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";
  // Sent as "authorization: Bearer <token>" with every call when not
  // empty (servers started with --auth_tokens_file need one). Without TLS
  // it crosses the network in plaintext.
  std::string token;
  // TLS: on when `tls` is set or any tls_* option is. tls_ca_file: PEM
  // roots that sign the server's certificate ("" = the system's roots).
  // tls_cert_file and tls_key_file (both or neither): a client
  // certificate for mutual TLS. tls_server_name: the name to expect in the
  // server's certificate when it is not the target's host.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;
  // How long Connect waits for the server, and each unary call's deadline.
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration call_timeout = absl::Seconds(60);
  int64_t max_message_bytes = 64 << 20;
};

struct InsertOptions {
  int64_t batch_rows = 1024;  // rows per stream message
  int64_t window = 8;         // batches sent but not yet acked
  bool upsert = false;
};

struct InsertSummary {
  int64_t rows = 0;
  int64_t batches = 0;
  uint64_t last_sequence = 0;
};

// A token for a read that must see the writes of both `a` and `b` (tokens
// from write acknowledgements, or merges of them): the larger sequence at
// each position. Pass it as SearchRequest.after with CONSISTENCY_SESSION.
v1::ConsistencyToken MergeTokens(const v1::ConsistencyToken& a,
                                 const v1::ConsistencyToken& b);

// Called after each ack with the rows acknowledged so far and the total.
using ProgressFn = std::function<void(int64_t acked_rows, int64_t total_rows)>;

// Results of many queries, query-major like the engine's: query q's
// results are ids[q] / distances[q], best first.
struct SearchAllResult {
  std::vector<std::vector<uint64_t>> ids;
  std::vector<std::vector<float>> distances;
  double expected_recall = 1.0;  // the smallest over the requests
  int64_t bins = 0;              // of the last request
  bool exact = false;            // every request was exact
};

class Client {
 public:
  // Connects and waits until the channel is ready; UNAVAILABLE (naming the
  // target) when no server answers within options.connect_timeout (also
  // when the TLS handshake fails), INVALID_ARGUMENT naming the option when
  // a TLS file cannot be read or the token is not sendable.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);

  const std::string& target() const { return options_.target; }
  // What this client was connected with (to open more connections alike).
  const ClientOptions& options() const { return options_; }
  // For calls the methods below do not cover; give each call's context
  // the token with Authenticate.
  v1::VectorSearch::Stub& stub() { return *stub_; }
  void Authenticate(grpc::ClientContext* ctx) const;

  absl::StatusOr<v1::CollectionInfo> CreateCollection(
      const v1::CollectionSchema& schema);
  absl::Status DropCollection(absl::string_view name);
  absl::StatusOr<std::vector<v1::CollectionInfo>> ListCollections();
  absl::StatusOr<v1::CollectionInfo> DescribeCollection(absl::string_view name);

  // One request: `queries` holds whole vectors of the collection's dim.
  // recall_target 0: collection default; 1: exact.
  absl::StatusOr<v1::SearchResponse> Search(absl::string_view collection,
                                            std::span<const float> queries,
                                            int64_t k,
                                            double recall_target = 0);
  // Many queries of dimension `dim`, sent `per_request` at a time.
  absl::StatusOr<SearchAllResult> SearchAll(absl::string_view collection,
                                            std::span<const float> queries,
                                            int64_t dim, int64_t k,
                                            double recall_target = 0,
                                            int64_t per_request = 256);

  absl::StatusOr<v1::UpsertResponse> Upsert(absl::string_view collection,
                                            std::span<const uint64_t> ids,
                                            std::span<const float> vectors);
  absl::StatusOr<v1::DeleteResponse> Delete(absl::string_view collection,
                                            std::span<const uint64_t> ids);
  absl::StatusOr<v1::GetResponse> Get(absl::string_view collection,
                                      std::span<const uint64_t> ids);
  absl::StatusOr<v1::PlanRecallResponse> PlanRecall(
      const v1::PlanRecallRequest& request);
  absl::StatusOr<v1::GetStatsResponse> GetStats();

  // Streams every row through one InsertStream, options.batch_rows per
  // message, keeping at most options.window batches unacked. Stops at the
  // first batch the server rejects and returns its error, naming the rows
  // of that batch (earlier batches stay written).
  absl::StatusOr<InsertSummary> InsertAll(absl::string_view collection,
                                          std::span<const uint64_t> ids,
                                          std::span<const float> vectors,
                                          const InsertOptions& options = {},
                                          const ProgressFn& progress = {});

 private:
  Client(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel);
  // A context carrying the call deadline and the token.
  std::unique_ptr<grpc::ClientContext> Context() const;
  // The server's status, or for UNAVAILABLE one that names the target.
  absl::Status Convert(const grpc::Status& status,
                       absl::string_view method) const;

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VectorSearch::Stub> stub_;
};

}  // namespace peakknn::client
