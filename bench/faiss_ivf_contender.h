// FAISS IndexIVFFlat (k-means inverted lists over f32 rows, a flat coarse
// quantizer) as a benchmark contender, searched at several nprobe values
// after one build (training + adding).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/contender.h"
#include "engine/schema.h"

namespace faiss {
struct IndexFlat;
struct IndexIVFFlat;
}  // namespace faiss

namespace peakknn::bench {

struct IvfSettings {
  // Inverted lists; 0 picks round(4 * sqrt(N)), the usual FAISS guideline.
  int64_t nlist = 0;
  // k-means trains on at most this many rows per list (a FAISS-chosen
  // sample): 64 keeps training on 1M rows under a minute on two cores.
  int train_rows_per_list = 64;
  std::vector<int64_t> nprobe = {1, 2, 4, 8, 16, 32, 64, 128};
};

class FaissIvfContender : public Contender {
 public:
  // L2 uses L2 lists; IP and COSINE inner product (COSINE expects the
  // caller to pass normalised rows and queries).
  FaissIvfContender(Metric metric, IvfSettings settings);
  ~FaissIvfContender() override;

  std::string system() const override { return "faiss-ivf"; }
  std::string dtype() const override { return "f32"; }
  absl::Status Build(const FloatMatrix& base) override;
  absl::StatusOr<SearchOutput> Search(const FloatMatrix& queries,
                                      int64_t k) override;
  int num_settings() const override;
  absl::Status SelectSetting(int index) override;
  // "nlist=1265,nprobe=8" (nprobe capped at nlist).
  std::string setting() const override;

  // The nlist Build uses for `rows` rows.
  int64_t NlistFor(int64_t rows) const;

 private:
  const Metric metric_;
  const IvfSettings settings_;
  int selected_ = 0;                             // index into settings_.nprobe
  int64_t nlist_ = 0;                            // set by Build
  std::unique_ptr<faiss::IndexFlat> quantizer_;  // outlives index_
  std::unique_ptr<faiss::IndexIVFFlat> index_;
};

}  // namespace peakknn::bench
