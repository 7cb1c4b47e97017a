"""Client against the real peakknn-server: every method, results checked
against brute force in numpy, and the errors the server answers."""

from __future__ import annotations

import copy
import pickle
import socket

import numpy as np
import pytest

import peakknn


def brute_force(rows: np.ndarray, queries: np.ndarray, k: int, metric: str):
    """Exact (distances, ids) best first, in the metric's own terms."""
    rows = rows.astype(np.float64)
    queries = queries.astype(np.float64)
    if metric == "l2":
        d = ((queries[:, None, :] - rows[None, :, :]) ** 2).sum(-1)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
    else:
        if metric == "cosine":
            rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
            queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        d = queries @ rows.T
        order = np.argsort(-d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), order


def test_create_describe_list_drop(client, collection_name):
    info = client.create_collection(collection_name, dim=16, metric="ip",
                                    dtype="bf16", default_recall=0.9)
    assert (info.name, info.dim, info.metric, info.dtype) == (
        collection_name, 16, "ip", "bf16")
    assert info.default_recall_target == pytest.approx(0.9)
    assert (info.rows, info.live_rows, info.last_sequence) == (0, 0, 0)
    assert client.describe(collection_name) == info
    assert collection_name in [c.name for c in client.list_collections()]
    client.drop(collection_name)
    assert collection_name not in [c.name for c in client.list_collections()]
    with pytest.raises(peakknn.NotFound, match=collection_name) as e:
        client.describe(collection_name)
    assert e.value.method == "DescribeCollection"
    assert e.value.code.name == "NOT_FOUND"
    with pytest.raises(peakknn.NotFound):
        client.drop(collection_name)


def test_create_twice_is_already_exists(client, collection_name):
    client.create_collection(collection_name, dim=4)
    with pytest.raises(peakknn.AlreadyExists, match=collection_name) as e:
        client.create_collection(collection_name, dim=4)
    assert e.value.sent and e.value.method == "CreateCollection"


def test_server_rejects_bad_name_with_its_message(client):
    with pytest.raises(peakknn.InvalidArgument) as e:
        client.create_collection("no spaces allowed", dim=4)
    assert e.value.sent and e.value.method == "CreateCollection"
    assert "no spaces allowed" in e.value.message


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_exact_search_matches_brute_force(client, collection_name, rng,
                                          metric):
    rows = rng.standard_normal((3000, 24)).astype(np.float32)
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    client.create_collection(collection_name, dim=24, metric=metric)
    client.insert(collection_name, np.arange(3000) + 10**12, rows)
    result = client.search(collection_name, queries, k=7, recall=1)
    D, I = result
    assert D.shape == I.shape == (40, 7)
    assert D.dtype == np.float32 and I.dtype == np.uint64
    want_d, want_i = brute_force(rows, queries, 7, metric)
    np.testing.assert_array_equal(I, want_i + 10**12)
    np.testing.assert_allclose(D, want_d, rtol=1e-4, atol=1e-4)
    assert result.exact and result.expected_recall == 1
    assert result.distances is D and result.ids is I


def test_approximate_search_reports_and_meets_its_recall(client,
                                                         collection_name, rng):
    rows = rng.standard_normal((20000, 16)).astype(np.float32)
    queries = rows[:300] + 0.05 * rng.standard_normal((300, 16))
    client.create_collection(collection_name, dim=16)
    client.insert(collection_name, np.arange(20000), rows, batch_rows=5000)
    result = client.search(collection_name, queries, k=10, recall=0.8)
    assert not result.exact
    assert 0.8 <= result.expected_recall < 1
    assert 0 < result.worst_rank_recall <= result.expected_recall
    assert result.bins > 0 and result.bins % 16 == 0
    _, want = brute_force(rows, queries.astype(np.float32), 10, "l2")
    measured = np.mean([len(set(a) & set(b))
                        for a, b in zip(result.ids.tolist(), want.tolist())]) / 10
    # 3000 neighbours: the measured recall sits within a few points of
    # the expectation.
    assert measured >= result.expected_recall - 0.05
    plan = client.plan(20000, 10, 0.8)
    assert plan.bins == result.bins
    assert plan.expected_recall == pytest.approx(result.expected_recall)


@pytest.mark.parametrize("form", [
    "float64", "fortran_order", "strided_columns", "list_of_lists",
    "big_endian", "integers", "single_vector"])
def test_search_accepts_any_real_array_like(client, collection_name, rng,
                                            form):
    rows = rng.integers(-5, 5, (500, 8)).astype(np.float32)
    client.create_collection(collection_name, dim=8)
    client.insert(collection_name, np.arange(500), rows)
    queries = rows[:3]
    wide = np.repeat(queries.astype(np.float64), 2, axis=1)
    given = {
        "float64": queries.astype(np.float64),
        "fortran_order": np.asfortranarray(queries),
        "strided_columns": wide[:, ::2],
        "list_of_lists": queries.tolist(),
        "big_endian": queries.astype(">f4"),
        "integers": queries.astype(np.int32),
        "single_vector": queries[0],
    }[form]
    D, I = client.search(collection_name, given, k=3, recall=1)
    want_D, want_I = client.search(collection_name, queries, k=3, recall=1)
    n = 1 if form == "single_vector" else 3
    np.testing.assert_array_equal(I, want_I[:n])
    np.testing.assert_array_equal(D, want_D[:n])


def test_search_result_survives_pickle_and_copy(client, collection_name):
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, [4, 5], [[0, 0], [1, 1]])
    result = client.search(collection_name, [[0, 0]], k=2, recall=1)
    for clone in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        D, I = clone
        np.testing.assert_array_equal(I, result.ids)
        np.testing.assert_array_equal(D, result.distances)
        assert (clone.expected_recall, clone.bins, clone.exact) == (
            result.expected_recall, result.bins, result.exact)


def test_fewer_live_rows_than_k_leaves_missing_slots(client, collection_name):
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, [7, 8, 9], [[0, 0], [1, 0], [5, 5]])
    D, I = client.search(collection_name, [[0.1, 0]], k=5, recall=1)
    assert I[0, :3].tolist() == [7, 8, 9]
    assert I[0, 3:].tolist() == [peakknn.MISSING_ID] * 2
    assert np.isnan(D[0, 3:]).all() and np.isfinite(D[0, :3]).all()


def test_many_queries_are_split_into_requests(client, collection_name, rng):
    rows = rng.standard_normal((200, 4)).astype(np.float32)
    client.create_collection(collection_name, dim=4)
    client.insert(collection_name, np.arange(200), rows)
    queries = rng.standard_normal((peakknn.MAX_QUERIES_PER_REQUEST + 5, 4))
    before = client.stats().search_requests
    D, I = client.search(collection_name, queries, k=4, recall=1)
    assert client.stats().search_requests - before == 2
    assert I.shape == (peakknn.MAX_QUERIES_PER_REQUEST + 5, 4)
    _, want = brute_force(rows, queries.astype(np.float32), 4, "l2")
    np.testing.assert_array_equal(I, want)


def test_upsert_get_delete(client, collection_name):
    client.create_collection(collection_name, dim=3)
    client.insert(collection_name, [1, 2], [[1, 1, 1], [2, 2, 2]])
    written = client.upsert(collection_name, [2, 3], [[9, 9, 9], [3, 3, 3]])
    assert written.rows == 2 and written.sequence > 0
    assert written.durability == "fsync"
    got = client.get(collection_name, [3, 2, 1, 404])
    assert got.ids.tolist() == [3, 2, 1, 404]
    assert got.found.tolist() == [True, True, True, False]
    np.testing.assert_array_equal(
        got.vectors, [[3, 3, 3], [9, 9, 9], [1, 1, 1], [0, 0, 0]])
    deleted = client.delete(collection_name, [1, 404])
    assert deleted.deleted == 1 and deleted.sequence > written.sequence
    assert client.get(collection_name, 1).found.tolist() == [False]
    assert client.describe(collection_name).live_rows == 2
    _, I = client.search(collection_name, [1, 1, 1], k=2, recall=1)
    assert sorted(I[0].tolist()) == [2, 3]


def test_get_of_only_unknown_ids(client, collection_name):
    client.create_collection(collection_name, dim=3)
    got = client.get(collection_name, [5, 6])
    assert got.found.tolist() == [False, False]
    assert got.vectors.shape == (2, 0)


def test_plan(client, collection_name):
    plan = client.plan(1e6, 10, 0.95)
    assert plan.n == 10**6 and not plan.exact
    assert plan.expected_recall >= 0.95 and plan.bins % 16 == 0
    assert plan.conservative_bins >= plan.bins
    assert client.plan(1000, 10, 1).exact
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, np.arange(300), np.ones((300, 2)))
    assert client.plan(None, 5, 0.9, collection=collection_name).n == 300
    with pytest.raises(peakknn.InvalidArgument, match="collection=NAME"):
        client.plan(None, 5, 0.9)


def test_stats_count_searches_and_list_collections(client, collection_name):
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, [1], [[0, 0]])
    before = client.stats()
    client.search(collection_name, np.zeros((3, 2)), k=1)
    after = client.stats()
    assert after.search_requests == before.search_requests + 1
    assert after.search_queries == before.search_queries + 3
    assert after.backend in ("cpu", "cuda") and after.version
    assert after.max_k >= 1 and after.max_message_bytes > 0
    assert collection_name in [c.name for c in after.collections]


def test_server_side_limit_error_carries_the_servers_message(
        client, collection_name):
    client.create_collection(collection_name, dim=2)
    max_k = client.stats().max_k
    with pytest.raises(peakknn.InvalidArgument, match="max_k") as e:
        client.search(collection_name, [0, 0], k=max_k + 1)
    assert e.value.sent and e.value.method == "Search"


def test_stale_dimension_is_forgotten_after_the_server_disagrees(
        server, collection_name):
    with peakknn.Client(server.address) as a, peakknn.Client(server.address) as b:
        a.create_collection(collection_name, dim=4)
        b.describe(collection_name)  # b now knows dim 4
        a.drop(collection_name)
        a.create_collection(collection_name, dim=6)
        a.insert(collection_name, [1], np.ones((1, 6)))
        # b checks against its stale dim 4 and sends; the server says no.
        with pytest.raises(peakknn.InvalidArgument) as e:
            b.search(collection_name, np.ones(4), k=1)
        assert e.value.sent
        # ... and b asks again next time.
        _, I = b.search(collection_name, np.ones(6), k=1)
        assert I.tolist() == [[1]]
        a.drop(collection_name)


def test_unavailable_names_the_address():
    # Port 1 on loopback: nothing listens there (it needs root to bind).
    with peakknn.Client("127.0.0.1:1", timeout=10) as c:
        with pytest.raises(peakknn.Unavailable, match="127.0.0.1:1") as e:
            c.list_collections()
    assert isinstance(e.value, ConnectionError)


def test_deadline_exceeded():
    # A peer that accepts TCP connections (the kernel does, into the
    # backlog) but never speaks HTTP/2: every call waits out its deadline.
    # (A tiny deadline against the real server is a race: a fast answer can
    # beat the deadline's timer.)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with peakknn.Client(address, timeout=0.3) as c:
            with pytest.raises(peakknn.DeadlineExceeded) as e:
                c.stats()
    assert isinstance(e.value, TimeoutError)


def test_closed_client_refuses_calls(server):
    with peakknn.Client(server.address) as c:
        c.stats()
    with pytest.raises(peakknn.FailedPrecondition, match="closed"):
        c.stats()


def test_address_from_environment(server, monkeypatch):
    monkeypatch.setenv("PEAKKNN_SERVER", server.address)
    with peakknn.Client() as c:
        assert c.address == server.address
        c.stats()
    monkeypatch.delenv("PEAKKNN_SERVER")
    assert peakknn.Client().address == "127.0.0.1:50051"
