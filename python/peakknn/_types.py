"""What the client returns: plain dataclasses and numpy arrays, never
protobuf messages, so callers need not know the wire format."""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import numpy as np

from .v1 import vector_search_pb2 as pb

# Names accepted by create_collection and reported in CollectionInfo; the
# CLI uses the same ones (peakknn create --metric l2|ip|cosine).
METRICS = {"l2": pb.METRIC_L2, "ip": pb.METRIC_INNER_PRODUCT,
           "cosine": pb.METRIC_COSINE}
DTYPES = {"f32": pb.DTYPE_F32, "bf16": pb.DTYPE_BF16}
_METRIC_NAMES = {v: k for k, v in METRICS.items()}
# DTYPE_UNSPECIFIED means f32 (vector_search.proto).
_DTYPE_NAMES = {pb.DTYPE_UNSPECIFIED: "f32",
                **{v: k for k, v in DTYPES.items()}}
_DURABILITY_NAMES = {pb.DURABILITY_UNSPECIFIED: "unspecified",
                     pb.DURABILITY_FSYNC: "fsync",
                     pb.DURABILITY_NONE: "none"}


def durability_name(value: int) -> str:
    """'fsync' (survives power loss), 'none' (survives a server crash)."""
    return _DURABILITY_NAMES.get(value, f"unknown({value})")


@dataclasses.dataclass(frozen=True)
class TLS:
    """TLS settings for Client(tls=...); tls=True means TLS() (the system's
    root certificates, no client certificate).

    ca_file: PEM file of the root certificates that sign the server's
      certificate; None: the system's roots.
    cert_file, key_file: PEM client certificate chain and private key, for
      servers that require client certificates (mutual TLS); both or none.
    server_name: the name to expect in the server's certificate when it
      differs from the address's host (grpc.ssl_target_name_override).
    """
    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    server_name: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class CollectionInfo:
    """A collection's schema and state (DescribeCollection)."""
    name: str
    dim: int
    metric: str  # "l2", "ip" or "cosine"
    dtype: str  # "f32" or "bf16"
    default_recall_target: float  # used by searches with recall=None
    rows: int  # slots used, deleted rows included
    live_rows: int  # rows a search can return
    memory_bytes: int
    disk_bytes: int  # checkpoint plus write-ahead log
    last_sequence: int  # of the last durable write; 0: none yet

    @classmethod
    def from_proto(cls, info: pb.CollectionInfo) -> "CollectionInfo":
        schema = info.schema
        return cls(name=schema.name, dim=schema.dim,
                   metric=_METRIC_NAMES.get(schema.metric,
                                            f"unknown({schema.metric})"),
                   dtype=_DTYPE_NAMES.get(schema.dtype,
                                          f"unknown({schema.dtype})"),
                   default_recall_target=schema.default_recall_target,
                   rows=info.rows, live_rows=info.live_rows,
                   memory_bytes=info.memory_bytes, disk_bytes=info.disk_bytes,
                   last_sequence=info.last_sequence)


@dataclasses.dataclass(frozen=True)
class InsertResult:
    """What insert() wrote: every row, acknowledged once durable."""
    rows: int
    batches: int
    last_sequence: int  # sequence number of the last batch
    durability: str  # "fsync" or "none" (the server's --durability)


@dataclasses.dataclass(frozen=True)
class WriteResult:
    """An acknowledged Upsert."""
    sequence: int
    rows: int
    durability: str

    @classmethod
    def from_proto(cls, r: pb.UpsertResponse) -> "WriteResult":
        return cls(r.sequence, r.rows, durability_name(r.durability))


@dataclasses.dataclass(frozen=True)
class DeleteResult:
    """An acknowledged Delete; `deleted` counts the ids that existed."""
    sequence: int
    deleted: int
    durability: str

    @classmethod
    def from_proto(cls, r: pb.DeleteResponse) -> "DeleteResult":
        return cls(r.sequence, r.deleted, durability_name(r.durability))


@dataclasses.dataclass(frozen=True, eq=False)
class GetResult:
    """Stored vectors of the requested ids, in request order.

    ids: uint64 (n,); found: bool (n,); vectors: float32 (n, dim), zero in
    the rows of ids that were not found (dim is 0 when none was found).
    Stored values: bf16 collections return them rounded, cosine ones
    normalised.
    """
    ids: np.ndarray
    found: np.ndarray
    vectors: np.ndarray


class SearchResult(tuple):
    """(D, I): distances float32 and ids uint64, each (queries, k), best
    first, so `D, I = client.search(...)` works as with FAISS.

    Distances are the metric's own: squared L2 (smaller is nearer), inner
    product or cosine similarity (larger is nearer). A query with fewer
    than k live rows to return has NaN distances and peakknn.MISSING_ID
    ids in its last slots.

    Also: expected_recall (E[recall@k] of the plan used; 1 when exact; the
    smallest over the requests when the queries were split),
    worst_rank_recall (probability the k-th true neighbour is returned),
    bins (L used, of the last request) and exact.
    """

    def __new__(cls, distances: np.ndarray, ids: np.ndarray, *,
                expected_recall: float, worst_rank_recall: float, bins: int,
                exact: bool):
        result = super().__new__(cls, (distances, ids))
        result.expected_recall = expected_recall
        result.worst_rank_recall = worst_rank_recall
        result.bins = bins
        result.exact = exact
        return result

    def __getnewargs_ex__(self):
        # copy and pickle rebuild through __new__ with these arguments.
        return (self[0], self[1]), {
            "expected_recall": self.expected_recall,
            "worst_rank_recall": self.worst_rank_recall, "bins": self.bins,
            "exact": self.exact}

    @property
    def distances(self) -> np.ndarray:
        return self[0]

    @property
    def ids(self) -> np.ndarray:
        return self[1]

    def __repr__(self) -> str:
        return (f"SearchResult(shape={self[1].shape}, "
                f"expected_recall={self.expected_recall:.4f}, "
                f"bins={self.bins}, exact={self.exact})")


@dataclasses.dataclass(frozen=True)
class Plan:
    """PlanRecall: the bins a recall target needs for n rows and k."""
    n: int  # rows planned for
    exact: bool
    bins: int
    bins_per_shard: int
    per_bin: int
    expected_recall: float
    worst_rank_recall: float
    conservative_bins: int  # L of the worst-rank form (XLA ApproxTopK)

    @classmethod
    def from_proto(cls, r: pb.PlanRecallResponse) -> "Plan":
        return cls(n=r.n, exact=r.exact, bins=r.bins,
                   bins_per_shard=r.bins_per_shard, per_bin=r.per_bin,
                   expected_recall=r.expected_recall,
                   worst_rank_recall=r.worst_rank_recall,
                   conservative_bins=r.conservative_bins)


@dataclasses.dataclass(frozen=True)
class Stats:
    """GetStats: the server's counters, limits and collections."""
    version: str
    backend: str  # "cpu" or "cuda"
    uptime_seconds: float
    collections: List[CollectionInfo]
    search_requests: int
    search_queries: int
    batches: int  # engine batches run
    inserted_rows: int
    max_dim: int
    max_k: int
    max_queries_per_request: int
    max_message_bytes: int
    backend_device_memory_bytes: int

    @classmethod
    def from_proto(cls, r: pb.GetStatsResponse) -> "Stats":
        return cls(version=r.version, backend=r.backend,
                   uptime_seconds=r.uptime_seconds,
                   collections=[CollectionInfo.from_proto(c)
                                for c in r.collections],
                   search_requests=r.search_requests,
                   search_queries=r.search_queries, batches=r.batches,
                   inserted_rows=r.inserted_rows, max_dim=r.max_dim,
                   max_k=r.max_k,
                   max_queries_per_request=r.max_queries_per_request,
                   max_message_bytes=r.max_message_bytes,
                   backend_device_memory_bytes=r.backend_device_memory_bytes)
