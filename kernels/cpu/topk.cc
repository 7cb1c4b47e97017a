// Running and one-shot exact top-k selection (second stage).
#include <algorithm>
#include <limits>

#include "kernels/candidate.h"
#include "kernels/cpu/scan_internal.h"
#include "kernels/scan.h"

namespace peakknn::kernels {
namespace {

bool CandidateBetter(const Candidate& a, const Candidate& b) {
  return Better(a, b);
}

// Moves the best min(k, n) of items[0, n) to the front; returns that count.
int64_t KeepBest(Candidate* items, int64_t n, int64_t k) {
  if (n <= k) return n;
  std::nth_element(items, items + k - 1, items + n, CandidateBetter);
  return k;
}

}  // namespace

void TopKBuffer::Reset() {
  size = 0;
  threshold = -std::numeric_limits<float>::infinity();
}

void TopKBuffer::Push(float score, int64_t slot) {
  items[size++] = Candidate{score, slot};
  if (size == capacity) Compact();
}

void TopKBuffer::Compact() {
  size = static_cast<int32_t>(KeepBest(items, size, k));
  // items[k-1] is now the k-th best. A later candidate with an equal score
  // has a higher slot (rows arrive in slot order), so '>' is the right test.
  if (size == k) threshold = items[k - 1].score;
}

void TopKBuffer::Finish() {
  size = static_cast<int32_t>(KeepBest(items, size, k));
  std::sort(items, items + size, CandidateBetter);
}

void TopKBuffer::Merge(const TopKBuffer& other) {
  // Other's candidates may tie with our threshold at a lower slot, so admit
  // ties too and let the comparator decide.
  for (int32_t i = 0; i < other.size; ++i) {
    if (other.items[i].score >= threshold) {
      Push(other.items[i].score, other.items[i].slot);
    }
  }
}

int64_t SelectTopK(std::span<const float> scores,
                   std::span<const int64_t> slots, int64_t k,
                   std::span<Candidate> scratch, Candidate* out) {
  int64_t n = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (slots[i] != kNoSlot) scratch[n++] = Candidate{scores[i], slots[i]};
  }
  const int64_t kept = KeepBest(scratch.data(), n, k);
  std::sort(scratch.data(), scratch.data() + kept, CandidateBetter);
  std::copy(scratch.data(), scratch.data() + kept, out);
  return kept;
}

namespace detail {

void PushAboveThreshold(TopKBuffer* buffer, const float* scores16,
                        uint32_t lanes, int64_t first_slot) {
  for (; lanes != 0; lanes &= lanes - 1) {
    const int lane = __builtin_ctz(lanes);
    if (scores16[lane] > buffer->threshold) {
      buffer->Push(scores16[lane], first_slot + lane);
    }
  }
}

}  // namespace detail
}  // namespace peakknn::kernels
