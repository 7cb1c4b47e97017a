#include "server/insert_stream.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/echo.h"
#include "server/convert.h"
#include "server/request_pool.h"

namespace peakknn::server {
namespace {

// One InsertStream call (insert_stream.h says what it does).
//
// State lives under mu_; Step() decides the next gRPC operations under the
// lock and starts them after releasing it. Invariants: at most one read and
// one write outstanding (gRPC's rule); received_ and request_ are only
// touched by the read in progress, and each batch is parsed into its own
// request (from pool_) that the core then holds until its acknowledgement (it
// logs and applies the vectors in place, no copy); one thread at a time
// submits, in stream order (SubmitInOrder); Finish is called once, only when no
// read, no write, no submitter and no core callback (in_flight_) is
// outstanding, so OnDone may delete this. The registry may close an idle
// stream (ClaimIdleClose, then FinishIdle): then finished_ is set while a
// read is pending, and a message that read brings is dropped unread.
class InsertStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public InsertStreamRegistry::Stream {
 public:
  // Batches admitted but not yet acked, and their payload bytes (ids and
  // vectors): bounds a stream's memory (the core holds each batch's request
  // until it is acked) while deep enough that admission overlaps the fsync of
  // the previous group. The byte bound may be passed by one batch (a batch's
  // size is known once it is read).
  static constexpr size_t kMaxPipelined = 64;
  static constexpr int64_t kMaxPipelinedBytes = int64_t{64} << 20;

  InsertStreamReactor(const absl::Status& authorized,
                      const InsertStreamServices& services)
      : admission_(services.admission),
        metrics_(services.metrics),
        streams_(services.streams),
        budget_(services.budget) {
    const absl::Status admitted =
        authorized.ok() ? streams_->Add(this) : authorized;
    if (!admitted.ok()) {
      finished_ = true;
      code_ = admitted.code();
      Finish(ToGrpcStatus(admitted));
      return;
    }
    registered_ = true;
    reading_ = true;
    StartRead(&received_);
  }

  void OnReadDone(bool ok) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (finished_) {  // closed as idle while this read was pending
        reading_ = false;
        return;
      }
      last_read_ = absl::Now();
      if (!ok) {  // the client half-closed (or went away)
        reading_ = false;
        reads_done_ = true;
        Step(lock);
        return;
      }
    }
    // A message that does not fit the in-flight budget or does not parse
    // is acked with its error, like any failed batch, and the stream goes
    // on. The reservation (wire bytes and the parsed request) lasts until
    // the batch's ack is sent.
    absl::StatusOr<InflightBytes> held = budget_->Reserve(
        2 * static_cast<int64_t>(received_.Length()), "InsertStream batch");
    const absl::Status parsed =
        held.ok() ? ParseMessage(received_, request_.get()) : held.status();
    received_.Clear();
    bool submitter = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      Slot* slot = &slots_.emplace_back();
      if (parsed.ok()) {
        slot->held = *std::move(held);
        slot->ack.set_batch_tag(request_->batch_tag());
        slot->bytes = static_cast<int64_t>(request_->ids_size()) * 8 +
                      static_cast<int64_t>(request_->vectors_size()) * 4;
        pipelined_bytes_ += slot->bytes;
        ++in_flight_;
        unsubmitted_.push_back({slot, std::move(request_)});
        request_ = pool_->Get();
        submitter = !submitting_;
        submitting_ = true;
      } else {
        request_->Clear();
        SetOutcome(slot, parsed);
      }
      reading_ = false;
      Step(lock);  // the next read starts now, before this batch is submitted
    }
    if (submitter) SubmitInOrder();
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) client_gone_ = true;
    Step(lock);
  }

  void OnDone() override {
    if (registered_) streams_->Remove(this);
    metrics_->ObserveRpc("InsertStream", code_, absl::Now() - start_);
    delete this;
  }

  bool ClaimIdleClose(absl::Time cutoff) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || client_gone_ || writing_ || submitting_ ||
        in_flight_ > 0 || !slots_.empty() || last_read_ >= cutoff) {
      return false;
    }
    finished_ = true;
    return true;
  }

  void FinishIdle(const absl::Status& status) override {
    code_ = status.code();
    Finish(ToGrpcStatus(status));
  }

 private:
  struct Slot {
    v1::InsertAck ack;
    InflightBytes held;  // released when the slot is (its ack is sent)
    int64_t bytes = 0;   // payload, counted in pipelined_bytes_
    bool ready = false;  // outcome known
  };
  struct Unsubmitted {
    Slot* slot;
    std::shared_ptr<v1::InsertRequest> request;
  };

  // Hands read batches to the core in stream order. The next read starts
  // before a batch is submitted (so the transport keeps receiving while
  // this thread validates and logs), and its OnReadDone may run on another
  // thread meanwhile: whichever thread finds no submitter running becomes
  // it and drains unsubmitted_; the others only queue.
  void SubmitInOrder() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!unsubmitted_.empty()) {
      Unsubmitted next = std::move(unsubmitted_.front());
      unsubmitted_.pop_front();
      lock.unlock();
      Submit(next.slot, std::move(next.request));
      lock.lock();
    }
    submitting_ = false;
    Step(lock);  // may Finish: nothing touches the reactor after this
  }

  // Admits `request` and hands it to the core (which reads it in place
  // until the batch is done); Complete(slot) runs exactly once, here or on
  // the core's acknowledging thread. Called by the submitter only.
  void Submit(Slot* slot, std::shared_ptr<v1::InsertRequest> request) {
    if (absl::Status status = CheckCollectionName(*request); !status.ok()) {
      Complete(slot, status);
      return;
    }
    const v1::InsertRequest& batch = *request;
    admission_->WriteRows(
        collection_, batch.upsert() ? WriteMode::kUpsert : WriteMode::kInsert,
        SpanOf(batch.ids()), SpanOf(batch.vectors()),
        [this, slot](absl::StatusOr<WriteAck> ack) { Complete(slot, ack); },
        std::move(request));
  }

  absl::Status CheckCollectionName(const v1::InsertRequest& request) {
    if (collection_.empty()) {
      if (request.collection().empty()) {
        return absl::InvalidArgumentError(
            "collection: required on the first message of an InsertStream");
      }
      collection_ = request.collection();
    } else if (!request.collection().empty() &&
               request.collection() != collection_) {
      return absl::InvalidArgumentError(
          absl::StrCat("collection=", QuoteInput(request.collection()),
                       ": this InsertStream writes ", QuoteInput(collection_),
                       "; open another stream for another collection"));
    }
    return absl::OkStatus();
  }

  void Complete(Slot* slot, const absl::StatusOr<WriteAck>& result) {
    std::unique_lock<std::mutex> lock(mu_);
    SetOutcome(slot, result);
    --in_flight_;
    Step(lock);
  }

  void SetOutcome(Slot* slot, const absl::StatusOr<WriteAck>& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (result.ok()) {
      slot->ack.set_sequence(result->sequence);
      slot->ack.set_rows(result->rows);
      slot->ack.set_durability(DurabilityToProto(result->durability));
      TokenToProto(*result, slot->ack.mutable_token());
    } else {
      slot->ack.set_code(static_cast<int32_t>(result.status().code()));
      slot->ack.set_error(std::string(result.status().message()));
    }
    slot->ready = true;
  }

  // Starts whatever can start now: the next ack in order, the next read
  // (while the pipeline has room), or Finish.
  void Step(std::unique_lock<std::mutex>& lock) {
    bool write = false;
    bool read = false;
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    if (!finished_ && !client_gone_) {
      if (!writing_ && !slots_.empty() && slots_.front().ready) {
        sending_ = std::move(slots_.front().ack);
        pipelined_bytes_ -= slots_.front().bytes;
        slots_.pop_front();
        writing_ = write = true;
      }
      if (!reading_ && !reads_done_ && slots_.size() < kMaxPipelined &&
          pipelined_bytes_ < kMaxPipelinedBytes) {
        reading_ = read = true;
      }
    }
    if (!finished_ && !reading_ && !writing_ && !submitting_ &&
        in_flight_ == 0 && (client_gone_ || (reads_done_ && slots_.empty()))) {
      finished_ = finish = true;
      if (client_gone_) {
        const absl::Status gone = absl::CancelledError(
            "InsertStream: the client went away before every ack was sent");
        code_ = gone.code();
        status = ToGrpcStatus(gone);
      }
    }
    lock.unlock();
    if (write) {
      // An ack is a few dozen bytes: serializing it cannot fail.
      SerializeMessage(sending_, &sending_bytes_).IgnoreError();
      StartWrite(&sending_bytes_);
    }
    if (read) StartRead(&received_);
    if (finish) Finish(status);
  }

  WriteAdmission* const admission_;
  Metrics* const metrics_;
  InsertStreamRegistry* const streams_;
  InflightBudget* const budget_;
  bool registered_ = false;  // in streams_; set before the first read
  const absl::Time start_ = absl::Now();
  std::string collection_;  // set by the first batch that names one; only
                            // the submitter touches it
  const std::shared_ptr<RequestPool> pool_ = std::make_shared<RequestPool>();
  // The message being read, and the request it is parsed into; only the
  // read in progress touches them.
  grpc::ByteBuffer received_;
  std::shared_ptr<v1::InsertRequest> request_ = pool_->Get();
  v1::InsertAck sending_;           // the ack being written
  grpc::ByteBuffer sending_bytes_;  // and its wire bytes

  std::mutex mu_;
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);  // unacked, in stream order
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;       // core callbacks not yet run
  int64_t pipelined_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of slots_
  // Read, not yet handed to the core, in stream order.
  std::deque<Unsubmitted> unsubmitted_ ABSL_GUARDED_BY(mu_);
  bool submitting_ ABSL_GUARDED_BY(mu_) = false;  // a thread runs SubmitInOrder
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_read_ ABSL_GUARDED_BY(mu_) = start_;  // last message in
  absl::StatusCode code_ = absl::StatusCode::kOk;       // written before Finish
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
NewInsertStreamReactor(const absl::Status& authorized,
                       const InsertStreamServices& services) {
  return new InsertStreamReactor(authorized, services);
}

}  // namespace peakknn::server
