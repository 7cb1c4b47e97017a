// The deterministic workload shared by tests/crash_writer.cc (the child that
// writes and gets killed), tests/crash_test.cc (the parent that checks) and
// tests/power_loss_test.cc. Batch `tag` is a pure function of tag, so a
// checker knows every batch's contents from its tag alone.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace peakknn::crash {

inline constexpr int kDim = 8;
inline constexpr uint64_t kIdsPerTag = 16;

enum class Kind { kInsert, kUpsert, kDelete };

struct Batch {
  Kind kind = Kind::kInsert;
  std::vector<uint64_t> ids;  // distinct
};

// Inserts use fresh ids [tag * 16, tag * 16 + n); upserts and deletes pick
// earlier ids (which may be deleted or never used: both are allowed).
inline Batch MakeBatch(uint64_t tag) {
  std::mt19937_64 rng(tag * 0x9E3779B97F4A7C15ull + 1);
  Batch b;
  const uint64_t roll = rng() % 10;
  b.kind = tag < 4 || roll < 6 ? Kind::kInsert
           : roll < 8          ? Kind::kUpsert
                               : Kind::kDelete;
  const uint64_t n = 1 + rng() % kIdsPerTag;
  if (b.kind == Kind::kInsert) {
    for (uint64_t i = 0; i < n; ++i) b.ids.push_back(tag * kIdsPerTag + i);
  } else {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t id = rng() % (tag * kIdsPerTag);
      bool seen = false;
      for (uint64_t x : b.ids) seen |= x == id;
      if (!seen) b.ids.push_back(id);
    }
  }
  return b;
}

// The vector batch `tag` writes for `id`: encodes both exactly (ids and tags
// stay below 2^24), the rest is noise derived from them.
inline std::vector<float> VectorOf(uint64_t id, uint64_t tag) {
  std::vector<float> v(kDim);
  v[0] = static_cast<float>(id);
  v[1] = static_cast<float>(tag);
  std::mt19937 rng(static_cast<uint32_t>(id * 31 + tag));
  std::uniform_real_distribution<float> u(-1, 1);
  for (int d = 2; d < kDim; ++d) v[d] = u(rng);
  return v;
}

// The tag of the batch that wrote `v` for `id`: v must be exactly
// VectorOf(id, tag); nullopt when no batch wrote it.
inline std::optional<uint64_t> TagOf(uint64_t id, const std::vector<float>& v) {
  if (v.size() != static_cast<size_t>(kDim) || v[0] != static_cast<float>(id) ||
      v[1] < 0) {
    return std::nullopt;
  }
  const uint64_t tag = static_cast<uint64_t>(v[1]);
  if (v != VectorOf(id, tag)) return std::nullopt;
  return tag;
}

// What a store should hold after some batches: present id -> tag of its
// vector.
using Model = std::map<uint64_t, uint64_t>;

inline void ApplyBatch(uint64_t tag, Model* model) {
  const Batch batch = MakeBatch(tag);
  for (uint64_t id : batch.ids) {
    if (batch.kind == Kind::kDelete) {
      model->erase(id);
    } else {
      (*model)[id] = tag;
    }
  }
}

// An order-independent digest of a Model: its size and the sum (mod 2^64)
// of a mixed 64-bit hash of every (id, tag) pair. It lets the crash test's
// writer report what it recovered in one line instead of one line per row
// (which made a 1000-cycle soak quadratic in output). Two different models
// have the same digest with probability about 2^-64.
struct Digest {
  uint64_t rows = 0;
  uint64_t sum = 0;
  bool operator==(const Digest&) const = default;
};

// SplitMix64's finaliser over (id, tag): ids and tags stay below 2^24, so
// the packed key is unique per pair.
inline uint64_t PairHash(uint64_t id, uint64_t tag) {
  uint64_t z = (id << 24 | tag) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline void AddToDigest(uint64_t id, uint64_t tag, Digest* digest) {
  ++digest->rows;
  digest->sum += PairHash(id, tag);
}

inline Digest DigestOf(const Model& model) {
  Digest digest;
  for (const auto& [id, tag] : model) AddToDigest(id, tag, &digest);
  return digest;
}

// The digest of `model` (whose digest is `digest`) with batch `tag` applied,
// without copying the model.
inline Digest DigestWithBatch(const Model& model, Digest digest, uint64_t tag) {
  const Batch batch = MakeBatch(tag);
  for (uint64_t id : batch.ids) {
    if (auto it = model.find(id); it != model.end()) {
      --digest.rows;
      digest.sum -= PairHash(id, it->second);
    }
    if (batch.kind != Kind::kDelete) AddToDigest(id, tag, &digest);
  }
  return digest;
}

// The first few differences between `want` and `got`, for a failure
// message.
inline std::string Describe(const Model& want, const Model& got) {
  std::ostringstream out;
  int shown = 0;
  for (const auto& [id, tag] : want) {
    auto it = got.find(id);
    if (it == got.end() && shown++ < 5) out << " id " << id << " missing;";
    if (it != got.end() && it->second != tag && shown++ < 5) {
      out << " id " << id << " has tag " << it->second << " want " << tag
          << ";";
    }
  }
  for (const auto& [id, tag] : got) {
    if (!want.contains(id) && shown++ < 5) out << " id " << id << " extra;";
  }
  return out.str();
}

// Checks a recovered store `got` against the acknowledged batches `*model`
// and the batch in flight when the writer died (-1: none): `got` must be
// exactly the acknowledged batches, or them plus the whole in-flight batch,
// which *model then takes in. Returns what is wrong, or "".
inline std::string CheckRecovered(const Model& got, int64_t in_flight,
                                  Model* model) {
  if (got == *model) return "";
  if (in_flight < 0) {
    return "recovered state differs from the acknowledged batches:" +
           Describe(*model, got);
  }
  Model with = *model;
  ApplyBatch(static_cast<uint64_t>(in_flight), &with);
  if (got != with) {
    return "recovered state is neither the acknowledged batches nor them "
           "plus whole in-flight batch " +
           std::to_string(in_flight) + ":" + Describe(with, got);
  }
  *model = std::move(with);
  return "";
}

}  // namespace peakknn::crash
