// The CUDA backend against the CPU backend on the same snapshots and plans,
// for every metric and row type, with inserts and deletes between searches.
//
//   FMA-chain path: identical candidates (slots and bit-equal scores), f32
//                   and bf16: it computes the CPU's scores exactly.
//   tensor-core (bf16) and GEMM paths: the same ids up to rounding of the
//                   summation order; overlap with the CPU >= 0.98.
//
// Without a usable GPU (no device, no driver, or a build without CUDA) every
// test skips and prints why.
#include "engine/cuda/cuda_backend.h"

#include <cmath>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "engine/backend.h"
#include "engine/collection.h"
#include "engine/searcher.h"
#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/layout.h"

namespace peakknn {
namespace {

struct Case {
  Metric metric;
  DType dtype;
  CudaScanPath path;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& param_info) {
  const Case& c = param_info.param;
  const char* path = c.path == CudaScanPath::kFmaChain     ? "fma"
                     : c.path == CudaScanPath::kTensorCore ? "tensor"
                                                           : "gemm";
  return std::string(MetricName(c.metric)) + "_" +
         std::string(DTypeName(c.dtype)) + "_" + path;
}

// Queries prepared as Collection::Search prepares them.
struct PreparedQueries {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  kernels::QueryTile tile;
};

PreparedQueries Prepare(const std::vector<float>& raw, int dim, Metric metric,
                        DType dtype) {
  PreparedQueries p;
  const int64_t n = static_cast<int64_t>(raw.size()) / dim;
  p.f32 = raw;
  if (metric == Metric::kCosine) {
    for (int64_t q = 0; q < n; ++q) {
      double norm = 0;
      for (int d = 0; d < dim; ++d)
        norm += double{p.f32[q * dim + d]} * p.f32[q * dim + d];
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int d = 0; d < dim; ++d) p.f32[q * dim + d] *= inv;
    }
  }
  p.tile.count = n;
  if (dtype == DType::kF32) {
    p.tile.f32 = p.f32.data();
    p.tile.stride = dim;
  } else {
    const int padded = kernels::PaddedDimBf16(dim);
    p.bf16.assign(n * padded, 0);
    for (int64_t q = 0; q < n; ++q) {
      for (int d = 0; d < dim; ++d) {
        p.bf16[q * padded + d] = kernels::FloatToBf16(p.f32[q * dim + d]);
      }
    }
    p.tile.bf16 = p.bf16.data();
    p.tile.stride = padded;
  }
  return p;
}

std::vector<float> Random(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

class CudaBackendTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const absl::Status available = CudaAvailable();
    if (!available.ok()) {
      GTEST_SKIP() << "no usable CUDA device: " << available.message();
    }
    CudaBackendOptions options;
    options.path = GetParam().path;
    options.workspace_bytes = int64_t{64} << 20;
    absl::StatusOr<std::unique_ptr<SearchBackend>> made =
        MakeCudaBackend(options);
    ASSERT_TRUE(made.ok()) << made.status();
    backend_ = *std::move(made);
  }

  // Compares both backends on the collection's current snapshot.
  void Compare(const Collection& collection, const PreparedQueries& queries,
               const ScanPlan& plan) {
    const std::shared_ptr<const Snapshot> snap = collection.snapshot();
    const ScanResult cpu =
        ScanSnapshot(*snap, queries.tile, plan, kernels::BestKernelSet(),
                     ThreadPool::Default());
    absl::StatusOr<ScanResult> gpu = backend_->Scan(*snap, queries.tile, plan);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    ASSERT_EQ(gpu->counts, cpu.counts);
    const bool exact_path = GetParam().path == CudaScanPath::kFmaChain;
    int64_t shared = 0;
    int64_t total = 0;
    for (int64_t q = 0; q < queries.tile.count; ++q) {
      std::set<int64_t> cpu_slots;
      for (int32_t i = 0; i < cpu.counts[q]; ++i) {
        const kernels::Candidate& want = cpu.items[q * plan.k + i];
        const kernels::Candidate& got = gpu->items[q * plan.k + i];
        if (exact_path) {
          ASSERT_EQ(got.slot, want.slot) << "query " << q << " rank " << i;
          ASSERT_EQ(got.score, want.score) << "query " << q << " rank " << i;
        }
        cpu_slots.insert(want.slot);
      }
      for (int32_t i = 0; i < cpu.counts[q]; ++i) {
        shared += cpu_slots.count(gpu->items[q * plan.k + i].slot);
      }
      total += cpu.counts[q];
    }
    EXPECT_GE(static_cast<double>(shared), 0.98 * static_cast<double>(total))
        << shared << " of " << total << " candidates agree";
  }

  std::unique_ptr<SearchBackend> backend_;
};

TEST_P(CudaBackendTest, MatchesCpuThroughInsertsAndDeletes) {
  const Case& c = GetParam();
  const int dim = 37;  // odd: exercises the bf16 pad
  CollectionSchema schema;
  schema.name = "gpu";
  schema.dim = dim;
  schema.metric = c.metric;
  schema.dtype = c.dtype;
  CollectionOptions options;
  options.block_rows = 1024;  // several blocks, slot_base != 0
  absl::StatusOr<std::unique_ptr<Collection>> made =
      Collection::Create(schema, options);
  ASSERT_TRUE(made.ok()) << made.status();
  Collection& collection = **made;

  std::mt19937_64 rng(42);
  uint64_t next_id = 1;
  auto insert = [&](int64_t n) {
    std::vector<uint64_t> ids(n);
    for (uint64_t& id : ids) id = next_id++;
    std::vector<float> rows = Random(n * dim, rng);
    // Duplicate some rows: equal scores must go to the lower slot.
    for (int64_t r = 1; r < n; r += 9) {
      std::copy_n(rows.begin() + (r - 1) * dim, dim, rows.begin() + r * dim);
    }
    ASSERT_TRUE(collection.Write(WriteMode::kInsert, ids, rows).ok());
  };
  const PreparedQueries queries =
      Prepare(Random(67 * dim, rng), dim, c.metric, c.dtype);

  insert(2500);  // a partial tail panel and a partial tail block
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Scan itself uploads what the writes since the last round changed.
    Compare(collection, queries, ScanPlan{false, 64, 10});
    Compare(collection, queries, ScanPlan{false, 1008, 25});
    Compare(collection, queries, ScanPlan{true, 0, 10});
    std::vector<uint64_t> doomed;
    for (uint64_t id = 1 + round; id < next_id; id += 7) doomed.push_back(id);
    collection.Delete(doomed);
    insert(333 + 17 * round);
  }
  EXPECT_GT(backend_->device_memory_bytes(), 0);
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    cases.push_back({metric, DType::kF32, CudaScanPath::kFmaChain});
    cases.push_back({metric, DType::kF32, CudaScanPath::kGemm});
    cases.push_back({metric, DType::kBf16, CudaScanPath::kFmaChain});
    cases.push_back({metric, DType::kBf16, CudaScanPath::kTensorCore});
    cases.push_back({metric, DType::kBf16, CudaScanPath::kGemm});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, CudaBackendTest,
                         ::testing::ValuesIn(AllCases()), CaseName);

TEST(CudaBackendFactoryTest, FailsCleanlyWithoutADevice) {
  const absl::Status available = CudaAvailable();
  if (available.ok()) GTEST_SKIP() << "a CUDA device is usable here";
  std::cout << "CUDA unavailable: " << available.message() << "\n";
  EXPECT_FALSE(available.message().empty());
  absl::StatusOr<std::unique_ptr<SearchBackend>> made = MakeCudaBackend();
  EXPECT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), available.code());
  EXPECT_FALSE(DescribeCudaDevice().ok());
}

TEST(CudaScanPathTest, Parses) {
  EXPECT_EQ(*ParseCudaScanPath("auto"), CudaScanPath::kAuto);
  EXPECT_EQ(*ParseCudaScanPath("FMA"), CudaScanPath::kFmaChain);
  EXPECT_EQ(*ParseCudaScanPath("tensor"), CudaScanPath::kTensorCore);
  EXPECT_EQ(*ParseCudaScanPath("gemm"), CudaScanPath::kGemm);
  const absl::StatusOr<CudaScanPath> bad = ParseCudaScanPath("tpu");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tpu"), std::string::npos);
}

}  // namespace
}  // namespace peakknn
