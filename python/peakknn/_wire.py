"""Request bytes built straight from numpy arrays, and responses to arrays.

The vectors of InsertRequest, UpsertRequest and SearchRequest are packed
`repeated float` fields: on the wire, a tag, a varint byte length and the
floats as little-endian IEEE 754, which is the memory of a C-contiguous
'<f4' array. Building a protobuf message would copy every float into the
message and again into its serialized bytes. Instead the small fields are
serialized with protobuf, the ids are varint-encoded with numpy, and
bytes.join writes [small fields][ids][vector tag, length][vectors] into the
request in one copy of the vectors. The server parses the result as the
ordinary message (protobuf accepts fields in any order), as it does for the
C++ client's InsertBatch (client/insert_batch.h).
"""

from __future__ import annotations

import itertools
from typing import List, Sequence

import numpy as np

from . import _arrays
from .v1 import vector_search_pb2 as pb

# Protobuf wire type of length-delimited fields (packed repeated, strings).
_LENGTH_DELIMITED = 2

# Field numbers in peakknn/v1/vector_search.proto, read from the generated
# descriptors so they cannot drift from the .proto.
_INSERT_IDS = pb.InsertRequest.DESCRIPTOR.fields_by_name["ids"].number
_INSERT_VECTORS = pb.InsertRequest.DESCRIPTOR.fields_by_name["vectors"].number
_UPSERT_IDS = pb.UpsertRequest.DESCRIPTOR.fields_by_name["ids"].number
_UPSERT_VECTORS = pb.UpsertRequest.DESCRIPTOR.fields_by_name["vectors"].number
_SEARCH_QUERIES = pb.SearchRequest.DESCRIPTOR.fields_by_name["queries"].number

# Id reported for a result slot the server left empty (fewer live rows than
# k): the largest uint64, as FAISS reports -1. Its distance is NaN.
MISSING_ID = np.iinfo(np.uint64).max

# Varint encoding: 7 value bits per byte, least significant group first;
# the high bit says another byte follows. A value needs j+1 bytes when it
# is >= 2^(7j); a uint64 needs at most 10.
_GROUP_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)
_MORE_BYTES_AT = np.array([1 << (7 * j) for j in range(1, 10)], np.uint64)


def varint(value: int) -> bytes:
    """One non-negative int as a protobuf varint."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def packed_varints(values: np.ndarray) -> bytes:
    """A uint64 array as the payload of a packed `repeated uint64` field.

    Vectorised: column j of a (n, width) byte matrix is each value's j-th
    7-bit group; the continuation bit is set where more bytes follow, and
    the bytes each value needs are taken row by row.
    """
    if values.size == 0:
        return b""
    nbytes = np.searchsorted(_MORE_BYTES_AT, values, side="right") + 1
    width = int(nbytes.max())
    groups = ((values[:, None] >> _GROUP_SHIFTS[:width])
              & np.uint64(0x7F)).astype(np.uint8)
    column = np.arange(width)
    groups[column < (nbytes - 1)[:, None]] |= 0x80
    if width == int(nbytes.min()):
        return groups.tobytes()  # every value takes `width` bytes
    return groups[column < nbytes[:, None]].tobytes()


def _field_header(number: int, length: int) -> bytes:
    """Tag and length of a length-delimited field of `length` bytes."""
    return varint(number << 3 | _LENGTH_DELIMITED) + varint(length)


def _write_request(head: bytes, ids_field: int, ids: np.ndarray,
                   vectors_field: int, vectors: np.ndarray) -> bytes:
    """`head` (serialized small fields), then ids and vectors, in one join.

    `vectors` is C-contiguous '<f4' (from _arrays.vectors); bytes.join
    reads it through the buffer protocol: the one copy of the vectors.
    """
    parts: List[object] = [head]
    if ids.size:
        payload = packed_varints(ids)
        parts += [_field_header(ids_field, len(payload)), payload]
    parts += [_field_header(vectors_field, vectors.nbytes),
              memoryview(vectors).cast("B")]
    return b"".join(parts)


def insert_request(collection: str, ids: np.ndarray, vectors: np.ndarray,
                   batch_tag: int, upsert: bool) -> bytes:
    """A serialized InsertRequest (one InsertStream batch)."""
    head = pb.InsertRequest(collection=collection, batch_tag=batch_tag,
                            upsert=upsert).SerializeToString()
    return _write_request(head, _INSERT_IDS, ids, _INSERT_VECTORS, vectors)


def upsert_request(collection: str, ids: np.ndarray,
                   vectors: np.ndarray) -> bytes:
    """A serialized UpsertRequest."""
    head = pb.UpsertRequest(collection=collection).SerializeToString()
    return _write_request(head, _UPSERT_IDS, ids, _UPSERT_VECTORS, vectors)


def search_request(collection: str, queries: np.ndarray, k: int,
                   recall_target: float) -> bytes:
    """A serialized SearchRequest."""
    head = pb.SearchRequest(collection=collection, k=k,
                            recall_target=recall_target).SerializeToString()
    return b"".join([head, _field_header(_SEARCH_QUERIES, queries.nbytes),
                     memoryview(queries).cast("B")])


# glibc's malloc raises its mmap threshold to the size of a freed mmapped
# block, up to 32 MiB on 64-bit, and its trim threshold to twice that
# (mallopt(3), M_MMAP_THRESHOLD). Below the limit, freeing a block that
# large moves both up.
_GLIBC_MMAP_THRESHOLD_MAX = 32 << 20


def keep_freed_memory_for(in_flight_bytes: int) -> None:
    """Lets malloc keep `in_flight_bytes` of freed memory instead of giving
    it back to the kernel after every batch.

    A stream holds each unacknowledged batch twice (the request bytes and
    gRPC's copy of them), allocated and freed batch after batch. With
    glibc's starting thresholds (128 KiB), those frees keep trimming the
    heap, and every next batch is written into fresh pages: measured on the
    2-core build machine, 1M rows x 128 dims took 2-3 s of client CPU in
    page faults instead of under 1 s. Freeing one block of the in-flight
    size once lifts the thresholds the way glibc does for any program that
    frees a large block (numpy's temporaries do it all the time). The
    block is never touched, so this costs an mmap and a munmap.
    """
    size = min(in_flight_bytes, _GLIBC_MMAP_THRESHOLD_MAX - (1 << 20))
    if size > 1 << 20:
        # Allocated by mmap, never touched, freed (munmap) at once: glibc
        # moves both thresholds up to its size.
        np.empty(size, np.uint8)


def search_arrays(responses: Sequence[pb.SearchResponse], k: int):
    """Distances (float32) and ids (uint64), each (queries, k), from the
    responses of consecutive requests.

    Slots the server left empty (fewer live rows than k) hold NaN and
    MISSING_ID.
    """
    results = [r for response in responses for r in response.results]
    count = len(results) * k
    if all(len(r.ids) == k for r in results):
        # Every query has k results: read them in one pass each.
        ids = np.fromiter(itertools.chain.from_iterable(r.ids for r in results),
                          np.uint64, count)
        distances = np.fromiter(
            itertools.chain.from_iterable(r.distances for r in results),
            np.float32, count)
        return distances.reshape(-1, k), ids.reshape(-1, k)
    distances = np.full((len(results), k), np.nan, np.float32)
    ids = np.full((len(results), k), MISSING_ID, np.uint64)
    for row, result in enumerate(results):
        n = len(result.ids)
        ids[row, :n] = result.ids
        distances[row, :n] = result.distances
    return distances, ids


def stored_vectors(response: pb.GetResponse) -> np.ndarray:
    """GetResponse values as a (ids, dim) float32 array; rows of ids that
    were not found are zero. dim is that of the found vectors (0 when none
    was found: the response does not say)."""
    found = [v for v in response.vectors if v.found]
    dim = len(found[0].values) if found else 0
    out = np.zeros((len(response.vectors), dim), _arrays.FLOAT32)
    for row, stored in enumerate(response.vectors):
        if stored.found:
            out[row] = stored.values
    return out
