// peakknn-bench: peakknn's engine against FAISS exact flat search on the
// same data, in one process, on the same threads. See bench/README.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/thread_pool.h"
#include "bench/contender.h"
#include "bench/contender_list.h"
#include "bench/datasets.h"
#include "bench/faiss_contender.h"
#include "bench/measure.h"
#include "bench/memory_bandwidth.h"
#include "bench/openblas_env.h"
#include "bench/recall.h"
#include "bench/report.h"
#include "bench/sgemm_peak.h"
#include "bench/sweep.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/schema.h"

ABSL_FLAG(std::string, data, "synthetic",
          "synthetic | sift5k | fashion-mnist | a vector file (.fvecs, "
          ".bvecs, .npy, .csv, .tsv)");
ABSL_FLAG(int64_t, n, -1,
          "base rows: synthetic default 100000; files: all rows when -1");
ABSL_FLAG(int64_t, dim, 128, "dimension of synthetic data");
ABSL_FLAG(int64_t, queries, -1,
          "queries: synthetic default 1024; files without --queries-file "
          "hold out this many rows (default 1000, sift5k 500)");
ABSL_FLAG(int64_t, clusters, 1000, "Gaussian clusters in synthetic data");
ABSL_FLAG(uint64_t, seed, 42, "seed of synthetic data");
ABSL_FLAG(std::string, queries_file, "", "query vectors for a file --data");
ABSL_FLAG(std::string, ground_truth, "",
          ".ivecs of true neighbour rows per query (else computed exactly)");
ABSL_FLAG(int64_t, k, 10, "neighbours per query");
ABSL_FLAG(double, recall, 0.95, "peakknn recall_target in (0, 1]; 1 = exact");
ABSL_FLAG(std::string, metric, "l2", "l2 | ip | cosine");
ABSL_FLAG(std::string, dtype, "both", "peakknn row storage: f32 | bf16 | both");
ABSL_FLAG(std::string, compare, "",
          "comma-separated systems beside peakknn: faiss-flat, faiss-hnsw, "
          "faiss-ivf; or none. Default faiss-flat; with --sweep recall "
          "faiss-flat,faiss-hnsw,faiss-ivf");
ABSL_FLAG(std::string, recall_targets, "0.8,0.9,0.95,0.99,1",
          "--sweep recall: peakknn's recall targets (each in (0, 1])");
ABSL_FLAG(int, hnsw_m, 32, "faiss-hnsw: graph neighbours per node (M)");
ABSL_FLAG(int, hnsw_ef_construction, 40, "faiss-hnsw: efConstruction");
ABSL_FLAG(std::string, hnsw_ef_search, "16,32,64,128,256,512",
          "faiss-hnsw: efSearch values, each measured after one build");
ABSL_FLAG(int64_t, ivf_nlist, 0,
          "faiss-ivf: inverted lists; 0 = round(4 * sqrt(n))");
ABSL_FLAG(int, ivf_train_per_list, 64,
          "faiss-ivf: k-means trains on at most this many rows per list");
ABSL_FLAG(std::string, ivf_nprobe, "1,2,4,8,16,32,64,128",
          "faiss-ivf: nprobe values, each measured after one build");
ABSL_FLAG(std::string, json, "", "also write the results as JSON here");
ABSL_FLAG(int, threads, 0, "threads for every contender; 0 = all cores");
ABSL_FLAG(int, repeats, 3, "timed runs per contender after one warm-up");
ABSL_FLAG(std::string, sift5k_dir, PEAKKNN_SOURCE_DIR "/data/sift5k",
          "the folder holding sift-dataset-5k.tsv (for --data sift5k); the "
          "repository ships it in data/sift5k");
ABSL_FLAG(std::string, backend, "cpu",
          "where peakknn searches: cpu | cuda (fails, saying why, without a "
          "usable GPU)");
ABSL_FLAG(std::string, cuda_path, "auto",
          "CUDA scan path: auto | fma | tensor | gemm (see "
          "engine/cuda/cuda_backend.h)");
ABSL_FLAG(int, sgemm_size, 2048, "matrix size of the sgemm peak measurement");
ABSL_FLAG(int64_t, bandwidth_mb, 1024,
          "buffer size (MiB) of the memory read bandwidth measurement");
ABSL_FLAG(std::string, sweep, "",
          "n | batch | k | threads: QPS of peakknn (the first --dtype) as "
          "that parameter varies; see bench/sweep.h. recall: peakknn at "
          "each --recall-targets value and the contenders at each of their "
          "settings, recall measured (plot with bench/plot_recall_qps.py)");

namespace peakknn::bench {
namespace {

// The ratios: every peakknn row against faiss-flat, bf16 against
// f32 at the same recall target, and the arithmetic of "f32 QPS >= 6x
// FAISS flat": both scan every row, so 6x FAISS's QPS needs 6x its GFLOP/s,
// which is attainable only below the sgemm peak.
// "peakknn f32", or "peakknn f32 target 0.95" when a run measures several
// recall targets (--sweep recall).
std::string Label(const ResultRow& row, bool per_target) {
  std::string label = absl::StrCat(row.system, " ", row.dtype);
  if (per_target) {
    absl::StrAppend(&label, " target ",
                    absl::StrFormat("%.4g", row.recall_target));
  }
  return label;
}

void PrintRatios(const std::vector<ResultRow>& rows, double peak,
                 bool per_target) {
  const ResultRow* flat = nullptr;
  for (const ResultRow& r : rows) {
    if (r.system == "faiss-flat") flat = &r;
  }
  for (const ResultRow& r : rows) {
    if (r.system != "peakknn") continue;
    if (flat != nullptr) {
      std::printf("%s / faiss-flat QPS: %.2fx\n", Label(r, per_target).c_str(),
                  r.qps / flat->qps);
    }
    if (r.dtype != "bf16") continue;
    for (const ResultRow& f32 : rows) {
      if (f32.system == "peakknn" && f32.dtype == "f32" &&
          f32.recall_target == r.recall_target) {
        std::printf("%s / f32 QPS: %.2fx\n", Label(r, per_target).c_str(),
                    r.qps / f32.qps);
      }
    }
  }
  if (flat != nullptr) {
    std::printf(
        "6x faiss-flat needs 6 x %.1f = %.1f GFLOP/s; sgemm peak %.1f "
        "GFLOP/s: %s\n",
        flat->gflops, 6 * flat->gflops, peak,
        6 * flat->gflops <= peak ? "attainable"
                                 : "above the peak, unattainable");
  }
}

absl::Status Run(const std::string& env_line) {
  const int64_t k = absl::GetFlag(FLAGS_k);
  const double target = absl::GetFlag(FLAGS_recall);
  const int repeats = absl::GetFlag(FLAGS_repeats);
  const std::string sweep = absl::GetFlag(FLAGS_sweep);
  const bool recall_sweep = sweep == "recall";
  std::string compare = absl::GetFlag(FLAGS_compare);
  if (compare.empty()) {
    compare = recall_sweep ? "faiss-flat,faiss-hnsw,faiss-ivf" : "faiss-flat";
  }
  const std::string dtype_flag = absl::GetFlag(FLAGS_dtype);
  if (k < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("--k must be >= 1, got ", k));
  if (!(target > 0 && target <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--recall must be in (0, 1], got ", target));
  }
  if (repeats < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--repeats must be >= 1, got ", repeats));
  }
  absl::StatusOr<std::vector<std::string>> systems = ParseCompare(compare);
  if (!systems.ok()) return systems.status();
  const bool with_flat = std::find(systems->begin(), systems->end(),
                                   "faiss-flat") != systems->end();
  ContenderListConfig list;
  list.compare = compare;
  if (recall_sweep) {
    absl::StatusOr<std::vector<double>> targets =
        ParseRecallList("recall-targets", absl::GetFlag(FLAGS_recall_targets));
    if (!targets.ok()) return targets.status();
    list.recall_targets = *targets;
  } else {
    list.recall_targets = {target};
  }
  list.hnsw.m = absl::GetFlag(FLAGS_hnsw_m);
  list.hnsw.ef_construction = absl::GetFlag(FLAGS_hnsw_ef_construction);
  absl::StatusOr<std::vector<int64_t>> ef_search =
      ParseIntList("hnsw-ef-search", absl::GetFlag(FLAGS_hnsw_ef_search));
  if (!ef_search.ok()) return ef_search.status();
  list.hnsw.ef_search.assign(ef_search->begin(), ef_search->end());
  list.ivf.nlist = absl::GetFlag(FLAGS_ivf_nlist);
  list.ivf.train_rows_per_list = absl::GetFlag(FLAGS_ivf_train_per_list);
  absl::StatusOr<std::vector<int64_t>> nprobe =
      ParseIntList("ivf-nprobe", absl::GetFlag(FLAGS_ivf_nprobe));
  if (!nprobe.ok()) return nprobe.status();
  list.ivf.nprobe = *nprobe;
  absl::StatusOr<Metric> metric = ParseMetric(absl::GetFlag(FLAGS_metric));
  if (!metric.ok()) return metric.status();
  std::vector<DType> dtypes;
  if (dtype_flag == "both") {
    dtypes = {DType::kF32, DType::kBf16};
  } else {
    absl::StatusOr<DType> dtype = ParseDType(dtype_flag);
    if (!dtype.ok()) return dtype.status();
    dtypes = {*dtype};
  }
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads must be >= 0, got ", threads));
  }
  if (threads == 0) {
    threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  SetBlasThreads(threads);
  ThreadPool pool(threads);

  DatasetRequest request;
  request.data = absl::GetFlag(FLAGS_data);
  request.n = absl::GetFlag(FLAGS_n);
  request.dim = absl::GetFlag(FLAGS_dim);
  request.queries = absl::GetFlag(FLAGS_queries);
  request.clusters = absl::GetFlag(FLAGS_clusters);
  request.seed = absl::GetFlag(FLAGS_seed);
  request.queries_file = absl::GetFlag(FLAGS_queries_file);
  request.ground_truth_file = absl::GetFlag(FLAGS_ground_truth);
  request.sift5k_dir = absl::GetFlag(FLAGS_sift5k_dir);
  absl::StatusOr<Dataset> data = LoadDataset(request);
  if (!data.ok()) return data.status();
  if (*metric == Metric::kCosine) {
    // FAISS has no cosine index: both systems get unit rows (peakknn would
    // normalise them itself) and FAISS searches them by inner product.
    NormalizeRows(data->base);
    NormalizeRows(data->queries);
  }
  std::printf("data %s: n=%lld dim=%lld queries=%lld; threads=%d\n%s\n",
              data->name.c_str(), static_cast<long long>(data->base.rows),
              static_cast<long long>(data->base.dim),
              static_cast<long long>(data->queries.rows), threads,
              env_line.c_str());

  const double peak =
      MeasureSgemmPeakGflops(absl::GetFlag(FLAGS_sgemm_size), 3);
  std::printf("sgemm peak: %.1f GFLOP/s\n", peak);
  const double bandwidth = MeasureReadBandwidthGBps(
      pool, absl::GetFlag(FLAGS_bandwidth_mb) << 20, 3);
  std::printf("memory read bandwidth: %.1f GB/s (%d threads)\n", bandwidth,
              threads);

  if (!sweep.empty() && !recall_sweep) {
    SweepConfig config;
    config.what = sweep;
    config.metric = *metric;
    config.dtype = dtypes[0];
    config.recall_target = target;
    config.k = k;
    config.repeats = repeats;
    config.threads = threads;
    config.sgemm_peak_gflops = peak;
    config.bandwidth_gbps = bandwidth;
    return RunSweep(config, *data);
  }

  // The GPU backend, when asked for; its peak turns GFLOP/s into a fraction.
  std::unique_ptr<SearchBackend> device_backend;
  std::optional<CudaDeviceInfo> device;
  const std::string backend = absl::GetFlag(FLAGS_backend);
  if (backend == "cuda") {
    absl::StatusOr<CudaScanPath> path =
        ParseCudaScanPath(absl::GetFlag(FLAGS_cuda_path));
    if (!path.ok()) return path.status();
    CudaBackendOptions options;
    options.path = *path;
    absl::StatusOr<std::unique_ptr<SearchBackend>> made =
        MakeCudaBackend(options);
    if (!made.ok()) {
      return absl::Status(
          made.status().code(),
          absl::StrCat("--backend=cuda: ", made.status().message()));
    }
    device_backend = std::move(*made);
    absl::StatusOr<CudaDeviceInfo> info = DescribeCudaDevice();
    if (info.ok()) device = *info;
    std::printf(
        "backend cuda: %s, bf16 peak %.0f TFLOP/s, f32 peak %.0f "
        "TFLOP/s\n",
        device ? device->name.c_str() : "?",
        device ? device->peak_bf16_tflops : 0.0,
        device ? device->peak_f32_tflops : 0.0);
  } else if (backend != "cpu") {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend must be cpu or cuda, got '", backend, "'"));
  }

  list.metric = *metric;
  list.dtypes = dtypes;
  list.pool = &pool;
  list.backend = device_backend.get();
  absl::StatusOr<std::vector<std::unique_ptr<Contender>>> made =
      MakeContenders(list);
  if (!made.ok()) return made.status();
  std::vector<std::unique_ptr<Contender>> contenders = *std::move(made);
  if (recall_sweep) {
    std::printf("sweep recall: n=%lld (QPS at measured recall@%lld)\n",
                static_cast<long long>(data->base.rows),
                static_cast<long long>(k));
  }

  // Ground truth: the file's, else FAISS flat's exact answer (the timed
  // run's, when FAISS is a contender; its results do not change between
  // runs).
  std::vector<int64_t> truth;
  int64_t truth_stride = k;
  if (data->ground_truth.has_value()) {
    if (data->ground_truth->dim < std::min(k, data->base.rows)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ground-truth has ", data->ground_truth->dim,
                       " neighbours per query; --k is ", k));
    }
    truth.assign(data->ground_truth->values.begin(),
                 data->ground_truth->values.end());
    truth_stride = data->ground_truth->dim;
  } else if (!with_flat) {
    FaissFlatContender exact(*metric);
    if (absl::Status s = exact.Build(data->base); !s.ok()) return s;
    absl::StatusOr<SearchOutput> out = exact.Search(data->queries, k);
    if (!out.ok()) return out.status();
    truth = std::move(out->rows);
  }

  std::vector<ResultRow> rows;
  const double flops = 2.0 * static_cast<double>(data->base.rows) *
                       static_cast<double>(data->base.dim) *
                       static_cast<double>(data->queries.rows);
  for (std::unique_ptr<Contender>& contender : contenders) {
    const auto build_start = std::chrono::steady_clock::now();
    if (absl::Status s = contender->Build(data->base); !s.ok()) return s;
    const std::chrono::duration<double> build =
        std::chrono::steady_clock::now() - build_start;
    std::printf("%s %s: build %.2f s\n", contender->system().c_str(),
                contender->dtype().c_str(), build.count());
    for (int setting = 0; setting < contender->num_settings(); ++setting) {
      if (absl::Status s = contender->SelectSetting(setting); !s.ok()) return s;
      absl::StatusOr<Measurement> m =
          Measure(*contender, data->queries, k, repeats);
      if (!m.ok()) {
        return absl::Status(
            m.status().code(),
            absl::StrCat(contender->system(), " ", contender->dtype(), " ",
                         contender->setting(), ": ", m.status().message()));
      }
      if (truth.empty()) truth = m->output.rows;  // FAISS flat runs first
      ResultRow row;
      row.system = contender->system();
      row.dtype = contender->dtype();
      row.metric = std::string(MetricName(*metric));
      row.n = data->base.rows;
      row.dim = data->base.dim;
      row.queries = data->queries.rows;
      row.k = k;
      row.setting = contender->setting();
      row.build_seconds = build.count();
      row.recall_target = m->output.recall_target;
      row.qps = static_cast<double>(data->queries.rows) / m->best_seconds;
      row.recall = MeasuredRecall(data->base, data->queries, *metric, k,
                                  m->output.rows, k, truth, truth_stride);
      row.expected_recall = m->output.expected_recall;
      row.gflops = flops / m->best_seconds / 1e9;
      std::printf("  %s best search %.4f s of %d: recall %.4f\n",
                  row.setting.empty()
                      ? absl::StrCat("target ", row.recall_target).c_str()
                      : row.setting.c_str(),
                  m->best_seconds, repeats, row.recall);
      std::fflush(stdout);
      if (device && row.system == "peakknn") {
        const double device_peak = row.dtype == "bf16"
                                       ? device->peak_bf16_tflops
                                       : device->peak_f32_tflops;
        std::printf(
            "  on %s: %.1f TFLOP/s = %.1f%% of the %s peak\n",
            device->name.c_str(), row.gflops / 1e3,
            device_peak > 0 ? 100 * row.gflops / 1e3 / device_peak : 0.0,
            row.dtype.c_str());
      }
      rows.push_back(row);
    }
    contender.reset();  // frees its copy of the rows before the next one
  }

  std::printf("\n%s", FormatTable(rows).c_str());
  // Roofline of the exhaustive scans (HNSW and IVF read a fraction of the
  // rows): FLOP/s against the sgemm peak, rows streamed (one pass over the
  // rows per batch) against the read bandwidth.
  for (const ResultRow& row : rows) {
    if (row.system != "peakknn" && row.system != "faiss-flat") continue;
    const double element_bytes = row.dtype == "bf16" ? 2 : 4;
    const double gbps = static_cast<double>(row.n) * row.dim * element_bytes *
                        row.qps / row.queries / 1e9;
    std::printf(
        "roofline %s: %.1f GFLOP/s = %.1f%% of sgemm peak "
        "%.1f; rows %.1f GB/s = %.1f%% of read bandwidth %.1f\n",
        Label(row, recall_sweep).c_str(), row.gflops, 100 * row.gflops / peak,
        peak, gbps, 100 * gbps / bandwidth, bandwidth);
  }
  PrintRatios(rows, peak, recall_sweep);
  const std::string json_path = absl::GetFlag(FLAGS_json);
  if (!json_path.empty()) {
    if (absl::Status s =
            WriteFile(json_path, FormatJson(peak, bandwidth, rows));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// Accepts --queries-file as well as absl's --queries_file: rewrites the
// dashes of every "--flag-name[=value]" argument's name to underscores.
std::vector<char*> DashedFlagsToUnderscores(int argc, char** argv,
                                            std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  std::vector<char*> out;
  for (std::string& arg : storage) {
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      const size_t end = std::min(arg.find('='), arg.size());
      std::replace(arg.begin() + 2, arg.begin() + end, '-', '_');
    }
    out.push_back(arg.data());
  }
  out.push_back(nullptr);
  return out;
}

}  // namespace
}  // namespace peakknn::bench

int main(int argc, char** argv) {
  // Before anything touches BLAS (it is loaded already, but not yet used).
  const std::string env_line =
      peakknn::bench::ReexecWithoutOpenblasOverrides(argv);
  absl::SetProgramUsageMessage(
      "peakknn vs FAISS exact flat search, QPS at measured recall@k.\n"
      "  peakknn-bench --data synthetic --n 1000000 --dim 128 --queries 1024 "
      "--k 10 --recall 0.95 --metric l2 --dtype f32 --compare faiss-flat");
  std::vector<std::string> storage;
  std::vector<char*> args =
      peakknn::bench::DashedFlagsToUnderscores(argc, argv, storage);
  absl::ParseCommandLine(argc, args.data());
  const absl::Status status = peakknn::bench::Run(env_line);
  if (!status.ok()) {
    std::fprintf(stderr, "peakknn-bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
