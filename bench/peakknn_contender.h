// peakknn's engine (engine/collection.h) as a benchmark contender.
#pragma once

#include <memory>
#include <vector>

#include "base/thread_pool.h"
#include "bench/contender.h"
#include "engine/collection.h"
#include "engine/schema.h"

namespace peakknn::bench {

class PeakknnContender : public Contender {
 public:
  // Searches at each of `recall_targets` in turn (the settings; one build).
  // `pool` and `backend` (nullptr: the CPU backend) must outlive the
  // contender.
  PeakknnContender(Metric metric, DType dtype,
                   std::vector<double> recall_targets, ThreadPool* pool,
                   SearchBackend* backend = nullptr);

  std::string system() const override { return "peakknn"; }
  std::string dtype() const override;
  absl::Status Build(const FloatMatrix& base) override;
  absl::StatusOr<SearchOutput> Search(const FloatMatrix& queries,
                                      int64_t k) override;
  int num_settings() const override;
  absl::Status SelectSetting(int index) override;

 private:
  const Metric metric_;
  const DType dtype_;
  const std::vector<double> recall_targets_;
  int selected_ = 0;  // index into recall_targets_
  ThreadPool* const pool_;
  SearchBackend* const backend_;
  std::unique_ptr<Collection> collection_;
};

}  // namespace peakknn::bench
