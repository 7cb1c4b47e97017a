// Which shard a vector id belongs to. Stable forever: the same id and shard
// count give the same shard in every build, on every machine, in every
// future version, since stored data is placed by it. The test pins fixed
// vectors; changing the function means migrating every cluster's data.
//
//   ShardForId(id, n) = JumpConsistentHash(SplitMix64(id), n)
//
// SplitMix64 is the finaliser of Steele, Lea and Flood's SplittableRandom
// (constants 0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9, 0x94d049bb133111eb,
// shifts 30, 27, 31): it spreads ids that differ in few bits (sequential
// ids) over all 64 bits. JumpConsistentHash is Lamping and Veach's "A Fast,
// Minimal Memory, Consistent Hash Algorithm" (2014), with its LCG multiplier
// 2862933555777941757 and IEEE double arithmetic: it spreads keys evenly
// and, should a collection ever be re-sharded from n to n + 1 shards, moves
// only the 1/(n + 1) of ids that land on the new shard.
#pragma once

#include <cstdint>

namespace peakknn {

// The largest shard count a collection may have.
inline constexpr int kMaxShards = 1024;

// In [0, shard_count); shard_count must be in [1, kMaxShards].
int ShardForId(uint64_t id, int shard_count);

}  // namespace peakknn
