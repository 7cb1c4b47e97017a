// FAISS exact flat search (IndexFlatL2 / IndexFlatIP) as a benchmark
// contender: the baseline every approximate method is compared with.
#pragma once

#include <memory>

#include "bench/contender.h"
#include "engine/schema.h"

namespace faiss {
struct IndexFlat;
}

namespace peakknn::bench {

class FaissFlatContender : public Contender {
 public:
  // L2 uses IndexFlatL2; IP and COSINE IndexFlatIP (COSINE expects the
  // caller to pass normalised rows and queries).
  explicit FaissFlatContender(Metric metric);
  ~FaissFlatContender() override;

  std::string system() const override { return "faiss-flat"; }
  std::string dtype() const override { return "f32"; }
  absl::Status Build(const FloatMatrix& base) override;
  absl::StatusOr<SearchOutput> Search(const FloatMatrix& queries,
                                      int64_t k) override;

 private:
  const Metric metric_;
  std::unique_ptr<faiss::IndexFlat> index_;
};

}  // namespace peakknn::bench
