// Writes the seed corpora of the fuzz targets (README.md here):
//
//   build/tests/fuzz/make_seed_corpus tests/fuzz/corpus
//
// replaces corpus/<target>/seed-* with small valid inputs made by the
// product's own writers where it has them (WAL records, checkpoints,
// MANIFESTs, .fvecs/.ivecs, request messages) and by hand for the formats
// it only reads (.bvecs, .npy, .csv/.tsv, IDX), plus a few edge cases. Each
// input starts with the byte its target reads as flags or selector (see the
// target's header comment). Deterministic: rerunning it rewrites the same
// bytes.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/collection.h"
#include "io/vector_files.h"
#include "peakknn/v1/vector_search.pb.h"
#include "store/checkpoint.h"
#include "store/coding.h"
#include "store/data_dir.h"
#include "store/env.h"
#include "store/manifest.h"
#include "store/wal_format.h"
#include "tests/fuzz/fuzz_env.h"

namespace peakknn::fuzz {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "make_seed_corpus: %s\n", what.c_str());
  std::exit(1);
}

std::string ReadFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(Env::Default(), path);
  if (!bytes.ok()) Fail(std::string(bytes.status().message()));
  return *bytes;
}

class CorpusWriter {
 public:
  explicit CorpusWriter(std::filesystem::path root) : root_(std::move(root)) {}

  // Writes corpus/<target>/seed-<name>: `lead` (the target's flags or
  // selector byte), then `body`.
  void Add(const std::string& target, const std::string& name, uint8_t lead,
           std::string_view body) {
    const std::filesystem::path dir = root_ / target;
    std::filesystem::create_directories(dir);
    std::string bytes(1, static_cast<char>(lead));
    bytes.append(body);
    WriteFile(dir / ("seed-" + name), bytes);
    ++files_;
  }

  int files() const { return files_; }

 private:
  std::filesystem::path root_;
  int files_ = 0;
};

// `rows` vectors of `dim` small integers (exact in bf16), ids 1..rows.
void Rows(int64_t rows, int dim, std::vector<uint64_t>& ids,
          std::vector<float>& vectors) {
  ids.clear();
  vectors.clear();
  for (int64_t r = 1; r <= rows; ++r) {
    ids.push_back(static_cast<uint64_t>(r));
    for (int d = 0; d < dim; ++d) {
      vectors.push_back(static_cast<float>((r * 5 + d * 3) % 9) - 4.0f);
    }
  }
}

void WalSeeds(CorpusWriter& out) {
  std::vector<uint64_t> ids;
  std::vector<float> vectors;
  Rows(6, 4, ids, vectors);
  std::string log;
  // Sequences 1 and 2 are under the MANIFEST's (skipped), the rest replay.
  AppendWalWrite(1, WriteMode::kInsert, std::span(ids).first(2),
                 std::span(vectors).first(8), 4, &log);
  AppendWalWrite(3, WriteMode::kInsert, std::span(ids).subspan(2),
                 std::span(vectors).subspan(8), 4, &log);
  AppendWalWrite(4, WriteMode::kUpsert, std::span(ids).first(1),
                 std::span(vectors).last(4), 4, &log);
  AppendWalDelete(5, std::span(ids).subspan(3, 2), &log);
  out.Add("wal_segment", "l2-f32", 0x00, log);
  out.Add("wal_segment", "l2-f32-fixcrc", 0x01, log);
  out.Add("wal_segment", "cosine-bf16-fixcrc", 0x01 | (6 << 2), log);
  out.Add("wal_segment", "ip-split-truncate", 0x02 | (1 << 2) | 0x20, log);
  out.Add("wal_segment", "torn-tail", 0x00, log.substr(0, log.size() - 7));
  // A zero-filled remainder after the last record, as a preallocated file
  // leaves it.
  out.Add("wal_segment", "zero-tail", 0x00, log + std::string(40, '\0'));
  out.Add("wal_segment", "empty", 0x00, "");
}

void CheckpointSeeds(CorpusWriter& out, const std::string& scratch) {
  struct Case {
    const char* name;
    uint8_t selector;  // FuzzSchema's
    int dim;
    int64_t rows;
  };
  for (const Case& c : {Case{"l2-f32", 0, 4, 5}, Case{"cosine-bf16", 6, 3, 9},
                        Case{"ip-f32-empty", 1, 2, 0}}) {
    std::unique_ptr<Collection> collection =
        *Collection::Create(FuzzSchema(c.selector, c.dim));
    std::vector<uint64_t> ids;
    std::vector<float> vectors;
    Rows(c.rows, c.dim, ids, vectors);
    if (c.rows > 0 &&
        !collection->Write(WriteMode::kInsert, ids, vectors).ok()) {
      Fail("checkpoint seed rows refused");
    }
    CheckpointManifest manifest;
    manifest.schema = collection->schema();
    manifest.sequence = 5;
    absl::StatusOr<CheckpointManifest> written = WriteCheckpoint(
        Env::Default(), scratch, manifest, *collection->snapshot());
    if (!written.ok()) Fail(std::string(written.status().message()));
    const std::string file = ReadFile(JoinPath(scratch, written->data_file));
    // Flags: the schema selector in bits 2-4; once as written, once with
    // CRC fix-up (what mutations of it need).
    const uint8_t flags = static_cast<uint8_t>(c.selector << 2);
    out.Add("checkpoint", c.name, flags, file);
    out.Add("checkpoint", absl::StrCat(c.name, "-fixcrc"), flags | 1, file);
  }
}

void ManifestSeeds(CorpusWriter& out) {
  CheckpointManifest manifest;
  manifest.schema = FuzzSchema(0, 16);
  out.Add("manifest", "no-checkpoint", 0x00, SerializeManifest(manifest));
  manifest.schema = FuzzSchema(6, 128);
  manifest.schema.default_recall_target = 0.9;
  manifest.default_durability = Durability::kNone;
  manifest.sequence = 77;
  manifest.data_file = CheckpointFileName(77);
  manifest.rows = 10;
  manifest.data_bytes = 28 + 8 + 10 * (8 + 128 * 4);
  const std::string text = SerializeManifest(manifest);
  out.Add("manifest", "checkpoint", 0x00, text);
  out.Add("manifest", "checkpoint-fixcrc", 0x01, text);
  // Another format version: refused before the CRC is looked at.
  out.Add("manifest", "version-2", 0x00,
          "peakknn-manifest 2\nname x\ncrc32c 0\n");
}

// The .npy bytes of a 2-D C-order array with header dict `dict`.
std::string Npy(int major, const std::string& dict, std::string_view data) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 16 != 0) header += ' ';
  header += '\n';
  std::string npy = "\x93NUMPY";
  npy += static_cast<char>(major);
  npy += '\0';
  if (major == 1) {
    npy += static_cast<char>(header.size() & 0xff);
    npy += static_cast<char>(header.size() >> 8);
  } else {
    std::string len;
    PutFixed32(&len, static_cast<uint32_t>(header.size()));
    npy += len;
  }
  return npy + header + std::string(data);
}

// An IDX file of unsigned bytes with dimensions `dims`.
std::string Idx(const std::vector<uint32_t>& dims, std::string_view data) {
  std::string idx = {'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (const uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      idx += static_cast<char>((d >> shift) & 0xff);
    }
  }
  return idx + std::string(data);
}

std::string Gzip(const std::string& scratch, std::string_view bytes) {
  const std::string path = scratch + "/gz";
  gzFile gz = gzopen(path.c_str(), "wb");
  if (gz == nullptr ||
      gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) !=
          static_cast<int>(bytes.size()) ||
      gzclose(gz) != Z_OK) {
    Fail("gzip failed");
  }
  return ReadFile(path);
}

void VectorFileSeeds(CorpusWriter& out, const std::string& scratch) {
  // Selector: bits 0-2 the format (vector_files_fuzzer.cc), 8 max_rows,
  // 16 columns.
  FloatMatrix floats{.rows = 3, .dim = 4, .values = {}};
  std::vector<uint64_t> ignored;
  Rows(3, 4, ignored, floats.values);
  if (!WriteFvecs(scratch + "/f", floats).ok()) Fail("WriteFvecs");
  out.Add("vector_files", "fvecs", 0, ReadFile(scratch + "/f"));
  const IntMatrix ints{.rows = 2, .dim = 3, .values = {1, 2, 3, 4, 5, 6}};
  if (!WriteIvecs(scratch + "/i", ints).ok()) Fail("WriteIvecs");
  out.Add("vector_files", "ivecs", 2, ReadFile(scratch + "/i"));
  std::string bvecs;
  for (int r = 0; r < 2; ++r) {
    PutFixed32(&bvecs, 3);
    bvecs += {'\x01', static_cast<char>(r), '\xff'};
  }
  out.Add("vector_files", "bvecs", 1, bvecs);
  std::string f4;
  PutFloatArray(&f4, std::span(floats.values).first(8));
  out.Add("vector_files", "npy-f4", 3,
          Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }",
              f4));
  out.Add("vector_files", "npy-u1-v2", 3 | 8,
          Npy(2, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2), }",
              "abcdef"));
  out.Add("vector_files", "csv", 4, "1,2,3\n\n4.5,-6e2,7\r\n");
  out.Add("vector_files", "tsv-columns", 5 | 16, "1\t2\t9\n3\t4\t9\n");
  const std::string idx = Idx({2, 2, 2}, "\x00\x01\x02\x03\x04\x05\x06\x07");
  out.Add("vector_files", "idx", 6, idx);
  out.Add("vector_files", "idx-gz", 7, Gzip(scratch, idx));
}

void RequestSeeds(CorpusWriter& out) {
  // Selector: the method (request_fuzzer.cc).
  v1::CreateCollectionRequest create;
  create.mutable_schema()->set_name("new");
  create.mutable_schema()->set_dim(8);
  create.mutable_schema()->set_metric(v1::METRIC_COSINE);
  out.Add("request", "create", 0, create.SerializeAsString());

  v1::SearchRequest search;
  search.set_collection("l2");
  search.set_k(5);
  for (int i = 0; i < 16; ++i) search.add_queries(static_cast<float>(i % 5));
  out.Add("request", "search", 1, search.SerializeAsString());
  search.set_collection("cosine_bf16");
  search.set_recall_target(0.5);
  out.Add("request", "search-cosine-bf16", 1, search.SerializeAsString());

  v1::InsertRequest insert;
  insert.set_collection("ip");
  for (uint64_t id = 30; id < 32; ++id) insert.add_ids(id);
  for (int i = 0; i < 16; ++i) insert.add_vectors(static_cast<float>(i));
  out.Add("request", "insert", 2, insert.SerializeAsString());

  v1::UpsertRequest upsert;
  upsert.set_collection("l2_bf16");
  upsert.add_ids(3);
  for (int i = 0; i < 8; ++i) upsert.add_vectors(-1.5f * static_cast<float>(i));
  out.Add("request", "upsert", 3, upsert.SerializeAsString());

  v1::DeleteRequest del;
  del.set_collection("cosine");
  del.add_ids(1);
  del.add_ids(99);
  out.Add("request", "delete", 4, del.SerializeAsString());

  v1::GetRequest get;
  get.set_collection("ip_bf16");
  get.add_ids(2);
  get.add_ids(100);
  out.Add("request", "get", 5, get.SerializeAsString());

  v1::PlanRecallRequest plan;
  plan.set_n(1000000);
  plan.set_k(10);
  plan.set_recall_target(0.95);
  plan.set_shards(4);
  out.Add("request", "plan", 6, plan.SerializeAsString());
  plan.set_n(0);
  plan.set_collection("l2");
  out.Add("request", "plan-collection", 6, plan.SerializeAsString());
}

}  // namespace
}  // namespace peakknn::fuzz

int main(int argc, char** argv) {
  using peakknn::fuzz::CorpusWriter;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root(argv[1]);
  // Old seeds go; other files (added by hand, not seed-*) stay.
  if (std::filesystem::exists(root)) {
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(root)) {
      if (entry.path().filename().string().starts_with("seed-")) {
        std::filesystem::remove(entry.path());
      }
    }
  }
  const std::string scratch = peakknn::fuzz::FreshScratchDir();
  CorpusWriter out(root);
  peakknn::fuzz::WalSeeds(out);
  peakknn::fuzz::CheckpointSeeds(out, scratch);
  peakknn::fuzz::ManifestSeeds(out);
  peakknn::fuzz::VectorFileSeeds(out, scratch);
  peakknn::fuzz::RequestSeeds(out);
  std::printf("make_seed_corpus: %d files under %s\n", out.files(),
              root.c_str());
  return 0;
}
