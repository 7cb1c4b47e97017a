// FAISS IndexHNSWFlat (a navigable small-world graph over f32 rows) as a
// benchmark contender, searched at several efSearch values after one build.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bench/contender.h"
#include "engine/schema.h"

namespace faiss {
struct IndexHNSWFlat;
}

namespace peakknn::bench {

struct HnswSettings {
  int m = 32;                // graph neighbours per node (FAISS's M)
  int ef_construction = 40;  // candidate list while building (FAISS default)
  std::vector<int> ef_search = {16, 32, 64, 128, 256, 512};
};

class FaissHnswContender : public Contender {
 public:
  // L2 builds an L2 graph; IP and COSINE an inner-product one (COSINE
  // expects the caller to pass normalised rows and queries).
  FaissHnswContender(Metric metric, HnswSettings settings);
  ~FaissHnswContender() override;

  std::string system() const override { return "faiss-hnsw"; }
  std::string dtype() const override { return "f32"; }
  absl::Status Build(const FloatMatrix& base) override;
  absl::StatusOr<SearchOutput> Search(const FloatMatrix& queries,
                                      int64_t k) override;
  int num_settings() const override;
  absl::Status SelectSetting(int index) override;
  // "M=32,efC=40,efSearch=64"
  std::string setting() const override;

 private:
  const Metric metric_;
  const HnswSettings settings_;
  int selected_ = 0;  // index into settings_.ef_search
  std::unique_ptr<faiss::IndexHNSWFlat> index_;
};

}  // namespace peakknn::bench
