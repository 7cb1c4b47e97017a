"""The client's methods, written once for Client and AsyncClient.

Each public method is a generator of steps (sans I/O): it checks its
arguments, yields the RPCs it needs (a Unary step, or an InsertStream step
for insert) and gets back their responses, then returns its result. Client
drives the generator with blocking calls, AsyncClient with awaits (see
_sync.py and _async.py); so validation, request building, response
conversion and caching live here and nowhere else, and the two clients
cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import (Any, Callable, ClassVar, Dict, Generator, Iterator, List,
                    Optional, Union)

import numpy as np

from . import _arrays, _wire
from ._channel import INSERT_STREAM, Settings, settings
from ._errors import (DataLoss, FailedPrecondition, Internal, InvalidArgument,
                      NotFound, PeakknnError, code_from_number, error_class,
                      invalid_argument)
from ._types import (DTYPES, METRICS, TLS, CollectionInfo, DeleteResult,
                     GetResult, InsertResult, Plan, SearchResult, Stats,
                     WriteResult, durability_name)
from .v1 import vector_search_pb2 as pb

# Queries per Search request when a call passes more: within the server's
# default limits for every dimension and k it accepts (4096 queries per
# request; 1024 x 4096 floats = 16 MiB of the 64 MiB message limit).
MAX_QUERIES_PER_REQUEST = 1024

DEFAULT_BATCH_ROWS = 1024
DEFAULT_WINDOW = 16


@dataclasses.dataclass(frozen=True)
class Unary:
    """Step: call unary method `method` with `request` (a message, or bytes
    from _wire); the driver sends back the response message."""
    method: str
    request: Any


@dataclasses.dataclass(frozen=True)
class InsertStream:
    """Step: run `session` over one InsertStream; the driver sends back
    session.result()."""
    session: "InsertSession"
    method: ClassVar[str] = INSERT_STREAM


Steps = Generator[Union[Unary, InsertStream], Any, Any]
ProgressFn = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class Finished:
    """What resume() returns when the method has its result."""
    value: Any


def resume(steps: Steps, outcome: Any) -> Union[Unary, InsertStream, Finished]:
    """Hands `outcome` (the last step's reply, or the PeakknnError it
    raised; None to start) to the method; returns its next step, or
    Finished with its result. Raises the method's own errors."""
    try:
        if isinstance(outcome, PeakknnError):
            return steps.throw(outcome)
        return steps.send(outcome)
    except StopIteration as done:
        return Finished(done.value)


class InsertSession:
    """One insert(): its batches, the acks, progress and the outcome.

    The drivers only move bytes: they send `batches()` keeping at most
    `window` unacknowledged, hand each ack to `on_ack`, stop sending once
    `failed`, and finally call `result()` (or raise `stream_error(e)` when
    the whole stream failed).
    """

    def __init__(self, collection: str, ids: np.ndarray, vectors: np.ndarray,
                 batch_rows: int, window: int, upsert: bool,
                 progress: Union[bool, ProgressFn, None]):
        self.collection = collection
        self.ids = ids
        self.vectors = vectors
        self.batch_rows = batch_rows
        self.window = window
        self.upsert = upsert
        self.total_rows = ids.shape[0]
        self.batch_count = -(-self.total_rows // batch_rows)
        self.acked_rows = 0
        self.acked_batches = 0
        self.last_sequence = 0
        self.durability = "unspecified"
        self._failed_ack: Optional[pb.InsertAck] = None
        self._progress_bar = None
        self._progress_fn: Optional[ProgressFn] = None
        if progress is True:
            self._progress_bar = _progress_bar(collection, self.total_rows)
        elif callable(progress):
            self._progress_fn = progress
        elif progress not in (False, None):
            raise invalid_argument(
                f"progress={progress!r}: pass True (a tqdm bar), False, or "
                "a function (acked_rows, total_rows)")

    @property
    def failed(self) -> bool:
        """A batch was rejected: send no more."""
        return self._failed_ack is not None

    def rows_of(self, batch: int) -> range:
        """Row indices (into the caller's arrays) of batch `batch`."""
        first = batch * self.batch_rows
        return range(first, min(first + self.batch_rows, self.total_rows))

    def batches(self) -> Iterator[bytes]:
        """The InsertRequest bytes of each batch; tag = batch index. Only
        the first names the collection (later ones may leave it empty)."""
        # Per row: dim floats of 4 bytes and an id of at most 10 bytes.
        message_bytes = self.batch_rows * (self.vectors.shape[1] * 4 + 10)
        _wire.keep_freed_memory_for(2 * self.window * message_bytes)
        for batch in range(self.batch_count):
            rows = self.rows_of(batch)
            yield _wire.insert_request(
                self.collection if batch == 0 else "",
                self.ids[rows.start:rows.stop],
                self.vectors[rows.start:rows.stop], batch, self.upsert)

    def on_ack(self, ack: pb.InsertAck) -> None:
        """Counts an ack; the first failed one is kept for result()."""
        self.acked_batches += 1
        if ack.code != 0:
            if self._failed_ack is None:
                self._failed_ack = ack
            return
        self.acked_rows += ack.rows
        self.last_sequence = ack.sequence
        self.durability = durability_name(ack.durability)
        if self._progress_bar is not None:
            self._progress_bar.update(ack.rows)
        if self._progress_fn is not None:
            self._progress_fn(self.acked_rows, self.total_rows)

    def stream_error(self, error: PeakknnError) -> PeakknnError:
        """`error`, which ended the whole stream, saying what was written."""
        extended = type(error)(
            f"{error.message} ({self.acked_rows} of {self.total_rows} rows "
            "were acknowledged before)", method=error.method)
        extended.written_rows = self.acked_rows
        return extended

    def result(self) -> InsertResult:
        """The outcome once the stream has ended. Raises the error of the
        first failed batch, with its `batch` index, its `rows` (a range of
        row indices in the arguments) and `written_rows` (rows acknowledged
        from other batches, which stay written)."""
        self.close()
        ack = self._failed_ack
        if ack is not None:
            rows = self.rows_of(ack.batch_tag)
            error = error_class(code_from_number(ack.code))(
                f"insert into {self.collection!r}: batch {ack.batch_tag} of "
                f"{self.batch_count} (rows {rows.start}..{rows.stop - 1}) "
                f"failed: {ack.error}; {self.acked_rows} rows of other "
                "batches were written", method="InsertStream")
            error.batch = ack.batch_tag
            error.rows = rows
            error.written_rows = self.acked_rows
            raise error
        if self.acked_rows != self.total_rows:
            raise DataLoss(
                f"insert into {self.collection!r}: the stream ended after "
                f"{self.acked_rows} of {self.total_rows} rows were "
                "acknowledged", method="InsertStream")
        return InsertResult(rows=self.acked_rows, batches=self.acked_batches,
                            last_sequence=self.last_sequence,
                            durability=self.durability)

    def close(self) -> None:
        if self._progress_bar is not None:
            self._progress_bar.close()
            self._progress_bar = None


def _progress_bar(collection: str, total_rows: int):
    try:
        import tqdm  # Debian: python3-tqdm
    except ImportError:
        raise invalid_argument(
            "progress=True draws a tqdm bar, and tqdm is not installed "
            "(apt-get install python3-tqdm); or pass a function "
            "(acked_rows, total_rows)") from None
    return tqdm.tqdm(total=total_rows, unit="rows", unit_scale=True,
                     desc=f"insert {collection}")


def _collection_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise invalid_argument(
            f"collection name {name!r}: must be a non-empty string")
    return name


class ClientBase:
    """Everything of Client and AsyncClient but the transport.

    Subclasses implement `_drive(steps)`: run the generator's RPCs (resume
    it with each outcome until it is Finished) and return (Client) its
    result, or (AsyncClient) an awaitable of it.
    """

    def __init__(self, address: Optional[str] = None, *,
                 token: Optional[str] = None,
                 tls: Union[bool, TLS, None] = None,
                 timeout: Optional[float] = None):
        self._settings: Settings = settings(address, token, tls, timeout)
        # Dimension of each collection this client has used, so vectors are
        # checked before they are sent. Forgotten when the server answers
        # NOT_FOUND or INVALID_ARGUMENT (it may have been re-created with
        # another dimension by someone else).
        self._dims: Dict[str, int] = {}
        self._closed = False

    @property
    def address(self) -> str:
        return self._settings.address

    def _drive(self, steps: Steps):
        raise NotImplementedError

    def _closed_error(self, step) -> Optional[PeakknnError]:
        """FailedPrecondition for a step of a closed client, else None."""
        if not self._closed:
            return None
        return FailedPrecondition(f"the client of {self.address} is closed",
                                  method=step.method)

    # -- collections ---------------------------------------------------------

    def create_collection(self, name: str, dim: int, metric: str = "l2",
                          dtype: str = "f32", *,
                          default_recall: Optional[float] = None
                          ) -> CollectionInfo:
        """Creates collection `name` of `dim`-dimensional vectors.

        metric: "l2" (squared Euclidean distance), "ip" (inner product) or
        "cosine" (cosine similarity). dtype: "f32", or "bf16" (rows stored
        as bfloat16, results rescored in f32). default_recall: the recall
        target of searches that pass recall=None (None: the server's, 0.95).
        Raises AlreadyExists if the name is taken.
        """
        return self._drive(self._create_collection(name, dim, metric, dtype,
                                                   default_recall))

    def _create_collection(self, name, dim, metric, dtype,
                           default_recall) -> Steps:
        name = _collection_name(name)
        dim = _arrays.positive_int(dim, "dim")
        if not isinstance(metric, str) or metric not in METRICS:
            raise invalid_argument(
                f"metric={metric!r}: must be one of {sorted(METRICS)}")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise invalid_argument(
                f"dtype={dtype!r}: must be one of {sorted(DTYPES)}")
        schema = pb.CollectionSchema(
            name=name, dim=dim, metric=METRICS[metric], dtype=DTYPES[dtype],
            default_recall_target=_arrays.recall_target(default_recall,
                                                        "default_recall"))
        response = yield Unary("CreateCollection",
                               pb.CreateCollectionRequest(schema=schema))
        self._dims[name] = dim
        return CollectionInfo.from_proto(response.info)

    def drop(self, name: str) -> None:
        """Drops collection `name` and its data. Raises NotFound if absent."""
        return self._drive(self._drop(name))

    def _drop(self, name) -> Steps:
        name = _collection_name(name)
        self._dims.pop(name, None)
        yield Unary("DropCollection", pb.DropCollectionRequest(name=name))

    def list_collections(self) -> List[CollectionInfo]:
        """Every collection, sorted by name."""
        return self._drive(self._list_collections())

    def _list_collections(self) -> Steps:
        response = yield Unary("ListCollections", pb.ListCollectionsRequest())
        return [CollectionInfo.from_proto(c) for c in response.collections]

    def describe(self, name: str) -> CollectionInfo:
        """Schema, row counts and sizes of collection `name`."""
        return self._drive(self._describe(name))

    def _describe(self, name) -> Steps:
        name = _collection_name(name)
        response = yield Unary("DescribeCollection",
                               pb.DescribeCollectionRequest(name=name))
        self._dims[name] = response.info.schema.dim
        return CollectionInfo.from_proto(response.info)

    def _dim(self, name: str) -> Steps:
        """The dimension of `name`: cached, or one DescribeCollection."""
        dim = self._dims.get(name)
        if dim is None:
            dim = (yield from self._describe(name)).dim
        return dim

    def _call_on(self, name: str, method: str, request: Any) -> Steps:
        """A unary call on collection `name`, forgetting its cached
        dimension when the server says it is gone or disagrees."""
        try:
            return (yield Unary(method, request))
        except (NotFound, InvalidArgument):
            self._dims.pop(name, None)
            raise

    # -- writes --------------------------------------------------------------

    def insert(self, name: str, ids: Any, vectors: Any, *,
               batch_rows: int = DEFAULT_BATCH_ROWS,
               window: int = DEFAULT_WINDOW, upsert: bool = False,
               progress: Union[bool, ProgressFn] = False) -> InsertResult:
        """Streams rows into `name` over one InsertStream.

        ids: n non-negative integers; vectors: (n, dim) floats (any real
        array-like; float32 C-contiguous is sent without conversion).
        batch_rows rows go in each message; at most `window` batches are
        unacknowledged at a time. upsert=True replaces rows whose id exists
        (otherwise every id must be new). progress: True draws a tqdm bar
        on stderr; a function is called as f(acked_rows, total_rows) after
        each ack. Returns once every batch is acknowledged (durable and
        visible to searches).

        Raises InvalidArgument before sending anything for bad input. If
        the server rejects a batch, sending stops and the error of the
        first failed batch is raised (e.g. AlreadyExists), with attributes
        batch (its index), rows (its row range in the arguments) and
        written_rows (rows acknowledged from other batches, which stay
        written).
        """
        return self._drive(self._insert(name, ids, vectors, batch_rows, window,
                                        upsert, progress))

    def _prepare_rows(self, name: str, ids: Any, vectors: Any) -> Steps:
        """Checked ids (uint64) and vectors ((n, dim) float32) for `name`."""
        name = _collection_name(name)
        what = f"collection {name!r}"
        ids_array = _arrays.ids(ids, f"{what}: ids")
        dim = yield from self._dim(name)
        vectors_array = _arrays.vectors(vectors, dim, f"{what}: vectors")
        _arrays.matching(ids_array, vectors_array, what)
        return ids_array, vectors_array

    def _insert(self, name, ids, vectors, batch_rows, window, upsert,
                progress) -> Steps:
        batch_rows = _arrays.positive_int(batch_rows, "batch_rows")
        window = _arrays.positive_int(window, "window")
        ids_array, vectors_array = yield from self._prepare_rows(
            name, ids, vectors)
        session = InsertSession(name, ids_array, vectors_array, batch_rows,
                                window, bool(upsert), progress)
        try:
            return (yield InsertStream(session))
        except (NotFound, InvalidArgument):
            self._dims.pop(name, None)
            raise
        finally:
            session.close()

    def upsert(self, name: str, ids: Any, vectors: Any) -> WriteResult:
        """Inserts or replaces rows in one Upsert call (for many rows, use
        insert(..., upsert=True), which streams them in batches)."""
        return self._drive(self._upsert(name, ids, vectors))

    def _upsert(self, name, ids, vectors) -> Steps:
        ids_array, vectors_array = yield from self._prepare_rows(
            name, ids, vectors)
        response = yield from self._call_on(
            name, "Upsert", _wire.upsert_request(name, ids_array,
                                                 vectors_array))
        return WriteResult.from_proto(response)

    def delete(self, name: str, ids: Any) -> DeleteResult:
        """Deletes rows by id; unknown ids are not an error (see
        DeleteResult.deleted)."""
        return self._drive(self._delete(name, ids))

    def _delete(self, name, ids) -> Steps:
        name = _collection_name(name)
        ids_array = _arrays.ids(ids, f"collection {name!r}: ids")
        response = yield from self._call_on(
            name, "Delete",
            pb.DeleteRequest(collection=name, ids=ids_array.tolist()))
        return DeleteResult.from_proto(response)

    def get(self, name: str, ids: Any) -> GetResult:
        """The stored vectors of `ids` (see GetResult)."""
        return self._drive(self._get(name, ids))

    def _get(self, name, ids) -> Steps:
        name = _collection_name(name)
        ids_array = _arrays.ids(ids, f"collection {name!r}: ids")
        response = yield from self._call_on(
            name, "Get", pb.GetRequest(collection=name,
                                       ids=ids_array.tolist()))
        found = np.fromiter((v.found for v in response.vectors), bool,
                            len(response.vectors))
        return GetResult(ids=ids_array, found=found,
                         vectors=_wire.stored_vectors(response))

    # -- reads ---------------------------------------------------------------

    def search(self, name: str, queries: Any, k: int, *,
               recall: Optional[float] = None) -> SearchResult:
        """The k nearest rows of each query: `D, I = client.search(...)`.

        queries: (nq, dim) floats or one vector (dim,). recall: the recall
        target in (0, 1]; 1 is an exact search; None uses the collection's
        default. Returns a SearchResult: distances D (float32) and ids I
        (uint64), each (nq, k), best first, with expected_recall,
        worst_rank_recall, bins and exact. More than
        MAX_QUERIES_PER_REQUEST queries are sent in several requests.
        """
        return self._drive(self._search(name, queries, k, recall))

    def _search(self, name, queries, k, recall) -> Steps:
        name = _collection_name(name)
        k = _arrays.positive_int(k, "k")
        recall_target = _arrays.recall_target(recall)
        dim = yield from self._dim(name)
        queries = _arrays.vectors(queries, dim,
                                  f"collection {name!r}: queries")
        responses = []
        for first in range(0, queries.shape[0], MAX_QUERIES_PER_REQUEST):
            request = _wire.search_request(
                name, queries[first:first + MAX_QUERIES_PER_REQUEST], k,
                recall_target)
            responses.append((yield from self._call_on(name, "Search",
                                                       request)))
        distances, ids = _wire.search_arrays(responses, k)
        if ids.shape[0] != queries.shape[0]:
            raise Internal(f"Search answered {ids.shape[0]} results for "
                           f"{queries.shape[0]} queries", method="Search")
        return SearchResult(
            distances, ids,
            expected_recall=min(r.expected_recall for r in responses),
            worst_rank_recall=min(r.worst_rank_recall for r in responses),
            bins=responses[-1].bins, exact=all(r.exact for r in responses))

    def plan(self, n: Optional[int], k: int, recall: float, *,
             collection: Optional[str] = None, per_bin: int = 1,
             shards: int = 1) -> Plan:
        """The recall calculator (PlanRecall): bins needed for `recall`
        (in (0, 1]) with k results out of n rows. n=None with `collection`
        plans for that collection's live rows."""
        return self._drive(self._plan(n, k, recall, collection, per_bin,
                                      shards))

    def _plan(self, n, k, recall, collection, per_bin, shards) -> Steps:
        if n is None:
            if collection is None:
                raise invalid_argument(
                    "plan: pass n (rows), or n=None with collection=NAME to "
                    "plan for that collection's live rows")
            n = 0
        else:
            if isinstance(n, float) and n.is_integer():
                n = int(n)  # plan(1e6, ...) reads naturally
            n = _arrays.positive_int(n, "n")
        request = pb.PlanRecallRequest(
            n=n, k=_arrays.positive_int(k, "k"),
            recall_target=_arrays.recall_target(recall),
            per_bin=_arrays.positive_int(per_bin, "per_bin"),
            shards=_arrays.positive_int(shards, "shards"),
            collection=(_collection_name(collection)
                        if collection is not None else ""))
        if request.recall_target == 0:
            raise invalid_argument("plan: recall must be in (0, 1], not None")
        return Plan.from_proto((yield Unary("PlanRecall", request)))

    def stats(self) -> Stats:
        """The server's version, backend, counters, limits and collections."""
        return self._drive(self._stats())

    def _stats(self) -> Steps:
        return Stats.from_proto((yield Unary("GetStats",
                                             pb.GetStatsRequest())))
