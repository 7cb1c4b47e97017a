// The CUDA SearchBackend (see engine/cuda/cuda_backend.h for the design).
#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/device_mirror.h"
#include "kernels/bin_fold.h"
#include "kernels/cuda/device_scan.h"
#include "kernels/layout.h"

namespace peakknn {
namespace {

using cuda::DeviceBuffer;
using cuda::PinnedBuffer;
using kernels::cuda::CudaStatus;
using kernels::cuda::ScanPath;

// The device code is built for sm_80 and sm_90 (plus sm_90 PTX).
constexpr int kMinComputeCapability = 80;

absl::StatusOr<cudaDeviceProp> DeviceProperties(int device) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(
        absl::StrCat("CUDA is unusable: ", cudaGetErrorString(error), " (",
                     cudaGetErrorName(error), ")"));
  }
  if (count == 0) return absl::UnavailableError("no CUDA device is present");
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CUDA device ", device, " does not exist; ", count, " present"));
  }
  cudaDeviceProp props;
  if (absl::Status s = CudaStatus(cudaGetDeviceProperties(&props, device),
                                  "cudaGetDeviceProperties");
      !s.ok()) {
    return s;
  }
  return props;
}

ScanPath ResolvePath(CudaScanPath path, kernels::RowType type) {
  switch (path) {
    case CudaScanPath::kFmaChain:
      return ScanPath::kFmaChain;
    case CudaScanPath::kTensorCore:
      return ScanPath::kTensorCore;
    case CudaScanPath::kGemm:
      return ScanPath::kGemm;
    case CudaScanPath::kAuto:
      break;
  }
  return type == kernels::RowType::kBf16 ? ScanPath::kTensorCore
                                         : ScanPath::kFmaChain;
}

// One stream with the buffers of the query chunk it is working on.
struct StreamSlot {
  cuda::Stream stream;
  cuda::CublasHandle cublas;
  DeviceBuffer queries;
  DeviceBuffer bins;
  DeviceBuffer sorted;
  DeviceBuffer offsets;
  DeviceBuffer sort_temp;
  DeviceBuffer gemm;
  PinnedBuffer host_queries;
  PinnedBuffer host_results;
  // The chunk in flight: results of queries [q0, q0 + count) land in
  // host_results as `kept` keys per query once the stream is done.
  bool pending = false;
  int64_t q0 = 0;
  int64_t count = 0;
  int64_t kept = 0;
};

// Two streams: chunk i runs on slots[i % 2], so the upload and readback of
// one chunk overlap the kernels of the other.
struct Context {
  StreamSlot slots[2];
};

// What a Scan call works from.
struct ScanJob {
  const kernels::QueryTile* queries;
  const cuda::SyncedSnapshot* synced;
  kernels::RowType type;
  ScanPath path;
  int64_t bins;
  int64_t kept;
  int64_t query_bytes;  // per query, stride * element size
};

class CudaBackend final : public SearchBackend {
 public:
  CudaBackend(const CudaBackendOptions& options, const cudaDeviceProp& props,
              int64_t mirror_limit)
      : options_(options),
        target_threads_(static_cast<int64_t>(props.multiProcessorCount) *
                        props.maxThreadsPerMultiProcessor),
        mirror_(mirror_limit, options.staging_bytes) {}

  ~CudaBackend() override {
    // Free device memory on the backend's device.
    cudaSetDevice(options_.device);
  }

  absl::Status Init() {
    if (absl::Status s = SetDevice(); !s.ok()) return s;
    if (absl::Status s = mirror_.Init(); !s.ok()) return s;
    std::lock_guard lock(mu_);
    for (int c = 0; c < options_.contexts; ++c) {
      auto context = std::make_unique<Context>();
      for (StreamSlot& slot : context->slots) {
        if (absl::Status s = slot.stream.Create(); !s.ok()) return s;
        if (absl::Status s = slot.cublas.Create(slot.stream.get()); !s.ok()) {
          return s;
        }
      }
      free_.push_back(context.get());
      contexts_.push_back(std::move(context));
    }
    return absl::OkStatus();
  }

  absl::string_view name() const override { return "cuda"; }

  int64_t device_memory_bytes() const override {
    return mirror_.bytes_in_use() + workspace_bytes_.load();
  }

  absl::StatusOr<ScanResult> Scan(const Snapshot& snapshot,
                                  const kernels::QueryTile& queries,
                                  const ScanPlan& plan) override {
    ScanResult result;
    result.k = plan.k;
    result.items.resize(queries.count * plan.k);
    result.counts.assign(queries.count, 0);
    if (queries.count == 0 || snapshot.rows == 0 || snapshot.blocks.empty()) {
      return result;
    }
    if (absl::Status s = SetDevice(); !s.ok()) return s;
    absl::StatusOr<cuda::SyncedSnapshot> synced = mirror_.Sync(snapshot);
    if (!synced.ok()) return synced.status();

    ScanJob job;
    job.queries = &queries;
    job.synced = &*synced;
    job.type = synced->blocks.front().type;
    const bool f32 = job.type == kernels::RowType::kF32;
    if ((f32 ? static_cast<const void*>(queries.f32)
             : static_cast<const void*>(queries.bf16)) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CUDA backend needs ", f32 ? "f32" : "bf16",
          " queries for this collection's ", f32 ? "f32" : "bf16", " rows"));
    }
    job.path = ResolvePath(options_.path, job.type);
    const kernels::cuda::DeviceRows& last = synced->blocks.back();
    // Exact: one bin per slot, so every live row is its own bin winner.
    job.bins = plan.exact ? kernels::RoundUpBins(last.slot_base + last.rows)
                          : plan.bins;
    job.kept = std::min(plan.k, job.bins);
    job.query_bytes = queries.stride * (f32 ? 4 : 2);

    const int64_t per_query = 2 * job.bins * 8 + job.query_bytes + 8;
    const int64_t chunk =
        std::clamp<int64_t>(options_.workspace_bytes / per_query, 1,
                            std::min(options_.max_query_chunk, queries.count));

    Context* context = Acquire();
    absl::Status status = RunChunks(job, chunk, *context, result);
    // Leave no work in flight on buffers the next Scan will reuse.
    for (StreamSlot& slot : context->slots) {
      const absl::Status synced_status = slot.stream.Synchronize("scan");
      if (status.ok()) status = synced_status;
      slot.pending = false;
    }
    Release(context);
    if (!status.ok()) return status;
    return result;
  }

 private:
  absl::Status SetDevice() const {
    return CudaStatus(cudaSetDevice(options_.device), "cudaSetDevice");
  }

  Context* Acquire() {
    std::unique_lock lock(mu_);
    free_cv_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !free_.empty();
    });
    Context* context = free_.back();
    free_.pop_back();
    return context;
  }

  void Release(Context* context) {
    {
      std::lock_guard lock(mu_);
      free_.push_back(context);
    }
    free_cv_.notify_one();
  }

  // Grows a workspace buffer, keeping the reported device memory in step.
  absl::Status Grow(DeviceBuffer& buffer, int64_t bytes,
                    absl::string_view what) {
    const int64_t before = buffer.bytes();
    if (bytes <= before) return absl::OkStatus();
    const absl::Status status = buffer.Reserve(bytes, what);
    workspace_bytes_ += buffer.bytes() - before;
    return status;
  }

  absl::Status RunChunks(const ScanJob& job, int64_t chunk, Context& context,
                         ScanResult& result) {
    const int64_t nq = job.queries->count;
    for (int64_t q0 = 0, i = 0; q0 < nq; q0 += chunk, ++i) {
      StreamSlot& slot = context.slots[i % 2];
      if (slot.pending) {
        if (absl::Status s = Finish(slot, result); !s.ok()) return s;
      }
      if (absl::Status s = Enqueue(job, q0, std::min(chunk, nq - q0), slot);
          !s.ok()) {
        return s;
      }
    }
    for (StreamSlot& slot : context.slots) {
      if (slot.pending) {
        if (absl::Status s = Finish(slot, result); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Enqueue(const ScanJob& job, int64_t q0, int64_t count,
                       StreamSlot& slot) {
    const cudaStream_t stream = slot.stream.get();
    const int64_t bins_bytes = count * job.bins * 8;
    const int64_t query_bytes = count * job.query_bytes;
    absl::StatusOr<size_t> sort_bytes =
        kernels::cuda::SortBinsTempBytes(count, job.bins);
    if (!sort_bytes.ok()) return sort_bytes.status();
    const kernels::cuda::DeviceRows& first = job.synced->blocks.front();
    int64_t tile_rows = 0;
    for (const kernels::cuda::DeviceRows& rows : job.synced->blocks) {
      tile_rows = std::max(tile_rows, rows.rows);
    }
    tile_rows = std::min<int64_t>(kernels::RoundUpBins(tile_rows), 16384);
    const int64_t gemm_bytes = job.path == ScanPath::kGemm
                                   ? kernels::cuda::GemmWorkspaceBytes(
                                         count, first.dim, job.type, tile_rows)
                                   : 0;
    for (auto [buffer, bytes, what] :
         {std::tuple{&slot.queries, query_bytes, "queries"},
          std::tuple{&slot.bins, bins_bytes, "bins"},
          std::tuple{&slot.sorted, bins_bytes, "sorted bins"},
          std::tuple{&slot.offsets, (count + 1) * int64_t{8}, "sort offsets"},
          std::tuple{&slot.sort_temp, static_cast<int64_t>(*sort_bytes),
                     "sort scratch"},
          std::tuple{&slot.gemm, gemm_bytes, "the GEMM workspace"}}) {
      if (absl::Status s = Grow(*buffer, bytes, what); !s.ok()) return s;
    }
    if (absl::Status s = slot.host_queries.Reserve(query_bytes, "queries");
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            slot.host_results.Reserve(count * job.kept * 8, "results");
        !s.ok()) {
      return s;
    }

    // Upload the chunk's queries.
    const kernels::QueryTile& tile = *job.queries;
    const bool f32 = job.type == kernels::RowType::kF32;
    const void* host =
        f32 ? static_cast<const void*>(tile.f32 + q0 * tile.stride)
            : static_cast<const void*>(tile.bf16 + q0 * tile.stride);
    std::memcpy(slot.host_queries.data(), host,
                static_cast<size_t>(query_bytes));
    if (absl::Status s = CudaStatus(
            cudaMemcpyAsync(slot.queries.data(), slot.host_queries.data(),
                            static_cast<size_t>(query_bytes),
                            cudaMemcpyHostToDevice, stream),
            "uploading queries");
        !s.ok()) {
      return s;
    }

    const kernels::cuda::DeviceBins bins{slot.bins.as<uint64_t>(), job.bins};
    if (absl::Status s = kernels::cuda::ResetBins(bins, count, stream);
        !s.ok()) {
      return s;
    }
    kernels::cuda::DeviceQueries queries;
    queries.f32 = f32 ? slot.queries.as<const float>() : nullptr;
    queries.bf16 = f32 ? nullptr : slot.queries.as<const uint16_t>();
    queries.count = count;
    queries.stride = tile.stride;
    kernels::cuda::ScanContext scan;
    scan.stream = stream;
    scan.cublas = slot.cublas.get();
    scan.gemm_workspace = slot.gemm.data();
    scan.gemm_workspace_bytes = slot.gemm.bytes();
    scan.target_threads = target_threads_;
    for (const kernels::cuda::DeviceRows& rows : job.synced->blocks) {
      if (absl::Status s =
              kernels::cuda::PartialReduce(job.path, queries, rows, bins, scan);
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = kernels::cuda::SortBins(
            bins, count, slot.offsets.as<int64_t>(), slot.sorted.as<uint64_t>(),
            slot.sort_temp.data(), *sort_bytes, stream);
        !s.ok()) {
      return s;
    }
    // Only the best `kept` keys of each query come back.
    if (absl::Status s = CudaStatus(
            cudaMemcpy2DAsync(
                slot.host_results.data(), static_cast<size_t>(job.kept * 8),
                slot.sorted.data(), static_cast<size_t>(job.bins * 8),
                static_cast<size_t>(job.kept * 8), static_cast<size_t>(count),
                cudaMemcpyDeviceToHost, stream),
            "copying results back");
        !s.ok()) {
      return s;
    }
    slot.pending = true;
    slot.q0 = q0;
    slot.count = count;
    slot.kept = job.kept;
    return absl::OkStatus();
  }

  // Waits for a slot's chunk and decodes its keys into `result`.
  static absl::Status Finish(StreamSlot& slot, ScanResult& result) {
    if (absl::Status s = slot.stream.Synchronize("scan"); !s.ok()) return s;
    slot.pending = false;
    const uint64_t* keys = slot.host_results.as<const uint64_t>();
    for (int64_t i = 0; i < slot.count; ++i) {
      const int64_t q = slot.q0 + i;
      int32_t n = 0;
      for (; n < slot.kept; ++n) {
        const uint64_t key = keys[i * slot.kept + n];
        if (key == kernels::kEmptyFoldKey) break;  // sorted: the rest is empty
        result.items[q * result.k + n] = kernels::CandidateFromKey(key);
      }
      result.counts[q] = n;
    }
    return absl::OkStatus();
  }

  const CudaBackendOptions options_;
  const int64_t target_threads_;
  cuda::DeviceMirror mirror_;
  std::atomic<int64_t> workspace_bytes_{0};

  std::mutex mu_;
  std::condition_variable free_cv_;  // signalled when a context is released
  std::vector<std::unique_ptr<Context>> contexts_ ABSL_GUARDED_BY(mu_);
  std::vector<Context*> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status CudaAvailable(int device) {
  absl::StatusOr<cudaDeviceProp> props = DeviceProperties(device);
  if (!props.ok()) return props.status();
  const int cc = props->major * 10 + props->minor;
  if (cc < kMinComputeCapability) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA device ", device, " (", props->name, ") has compute capability ",
        props->major, ".", props->minor,
        "; the CUDA backend is built for 8.0 and newer"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SearchBackend>> MakeCudaBackend(
    const CudaBackendOptions& options) {
  if (absl::Status s = CudaAvailable(options.device); !s.ok()) return s;
  if (options.contexts < 1 || options.max_query_chunk < 1 ||
      options.workspace_bytes < 1 || options.mirror_limit_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CUDA backend options out of range: contexts ", options.contexts,
        " (>= 1), max_query_chunk ", options.max_query_chunk,
        " (>= 1), workspace_bytes ", options.workspace_bytes,
        " (>= 1), mirror_limit_bytes ", options.mirror_limit_bytes, " (>= 0)"));
  }
  absl::StatusOr<cudaDeviceProp> props = DeviceProperties(options.device);
  if (!props.ok()) return props.status();
  if (absl::Status s =
          CudaStatus(cudaSetDevice(options.device), "cudaSetDevice");
      !s.ok()) {
    return s;
  }
  int64_t limit = options.mirror_limit_bytes;
  if (limit == 0) {
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    if (absl::Status s = CudaStatus(cudaMemGetInfo(&free_bytes, &total_bytes),
                                    "cudaMemGetInfo");
        !s.ok()) {
      return s;
    }
    // Leave the workspaces (two streams per context) and a 5% reserve.
    limit = static_cast<int64_t>(free_bytes) -
            2 * options.contexts * options.workspace_bytes -
            static_cast<int64_t>(total_bytes) / 20;
    if (limit <= 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "CUDA device ", options.device, " has ", free_bytes, " of ",
          total_bytes, " bytes free: too little for ", 2 * options.contexts,
          " workspaces of ", options.workspace_bytes, " bytes and any rows"));
    }
  }
  auto backend = std::make_unique<CudaBackend>(options, *props, limit);
  if (absl::Status s = backend->Init(); !s.ok()) return s;
  return backend;
}

absl::StatusOr<CudaDeviceInfo> DescribeCudaDevice(int device) {
  absl::StatusOr<cudaDeviceProp> props = DeviceProperties(device);
  if (!props.ok()) return props.status();
  int clock_khz = 0;
  if (absl::Status s = CudaStatus(
          cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device),
          "cudaDeviceGetAttribute(clock rate)");
      !s.ok()) {
    return s;
  }
  CudaDeviceInfo info;
  info.name = props->name;
  info.compute_capability = props->major * 10 + props->minor;
  info.multiprocessors = props->multiProcessorCount;
  info.clock_khz = clock_khz;
  info.memory_bytes = static_cast<int64_t>(props->totalGlobalMem);
  int bf16_fma_per_clock = 0;
  int f32_fma_per_clock = 0;
  if (info.compute_capability == 80) {
    bf16_fma_per_clock = 1024;
    f32_fma_per_clock = 64;
  } else if (info.compute_capability == 90) {
    bf16_fma_per_clock = 2048;
    f32_fma_per_clock = 128;
  }
  const double sm_hz = static_cast<double>(info.multiprocessors) *
                       static_cast<double>(clock_khz) * 1e3;
  info.peak_bf16_tflops = 2.0 * bf16_fma_per_clock * sm_hz / 1e12;
  info.peak_f32_tflops = 2.0 * f32_fma_per_clock * sm_hz / 1e12;
  return info;
}

}  // namespace peakknn
