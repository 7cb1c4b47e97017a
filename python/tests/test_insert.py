"""insert(): streaming with a window of unacknowledged batches, acks,
progress, and the error naming the first failed batch."""

from __future__ import annotations

import numpy as np
import pytest

import peakknn


def test_large_insert_is_acked_batch_by_batch(client, collection_name, rng):
    n, dim = 120_000, 32
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = np.arange(n, dtype=np.uint64) * 3 + 2**40
    client.create_collection(collection_name, dim=dim)
    progress = []
    result = client.insert(collection_name, ids, vectors, batch_rows=4096,
                           window=4, progress=lambda a, t: progress.append((a, t)))
    assert result.rows == n and result.batches == -(-n // 4096) == 30
    assert result.durability == "fsync"
    assert result.last_sequence == client.describe(collection_name).last_sequence
    # One progress call per ack, growing to the total.
    assert len(progress) == 30
    assert [a for a, _ in progress] == sorted({a for a, _ in progress})
    assert progress[-1] == (n, n) and all(t == n for _, t in progress)
    assert client.describe(collection_name).live_rows == n
    # Acknowledged means visible: every sampled row finds itself.
    sample = rng.choice(n, 50, replace=False)
    D, I = client.search(collection_name, vectors[sample], k=1, recall=1)
    np.testing.assert_array_equal(I[:, 0], ids[sample])
    # L2 is computed as |q|^2 - 2 q.x + |x|^2 (README): about 0, not 0.
    np.testing.assert_allclose(D[:, 0], 0, atol=1e-4)
    np.testing.assert_array_equal(client.get(collection_name, ids[sample]).vectors,
                                  vectors[sample])


def test_progress_bar_draws_on_stderr(client, collection_name, capfd):
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, np.arange(5000), np.ones((5000, 2)),
                  batch_rows=1000, progress=True)
    err = capfd.readouterr().err
    assert f"insert {collection_name}" in err and "5.00k/5.00k" in err


def test_first_failed_batch_is_named_and_nothing_after_it_is_sent(
        client, collection_name):
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, [2500], [[0, 0]])
    ids = np.arange(5000)  # id 2500 exists: batch 2 (rows 2000..2999) fails
    # window=1: each batch waits for the previous ack, so the stream stops
    # right after the failed batch.
    with pytest.raises(peakknn.AlreadyExists) as e:
        client.insert(collection_name, ids, np.ones((5000, 2)),
                      batch_rows=1000, window=1)
    error = e.value
    assert error.method == "InsertStream" and error.sent
    assert error.batch == 2 and error.rows == range(2000, 3000)
    assert error.written_rows == 2000
    assert "batch 2 of 5 (rows 2000..2999)" in str(error)
    assert "2500" in str(error)  # the server's message names the id
    assert client.describe(collection_name).live_rows == 1 + 2000


def test_batches_in_the_window_after_a_failure_are_reported(
        client, collection_name):
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, [0], [[0, 0]])
    # Batch 0 fails; with the window open, later batches were already sent
    # and are written: written_rows says how many.
    with pytest.raises(peakknn.AlreadyExists) as e:
        client.insert(collection_name, np.arange(4000), np.ones((4000, 2)),
                      batch_rows=1000, window=8)
    assert e.value.batch == 0
    assert client.describe(collection_name).live_rows == 1 + e.value.written_rows


def test_insert_converts_float64_strided_input_once(client, collection_name,
                                                     rng):
    wide = rng.standard_normal((3000, 16))  # float64
    strided = wide[:, ::2]  # not contiguous
    client.create_collection(collection_name, dim=8)
    client.insert(collection_name, range(3000), strided, batch_rows=700)
    got = client.get(collection_name, [0, 1500, 2999]).vectors
    np.testing.assert_array_equal(got, strided[[0, 1500, 2999]].astype(np.float32))


def test_insert_with_upsert_replaces(client, collection_name):
    client.create_collection(collection_name, dim=2)
    client.insert(collection_name, [1, 2], [[1, 1], [2, 2]])
    with pytest.raises(peakknn.AlreadyExists):
        client.insert(collection_name, [2], [[5, 5]])
    client.insert(collection_name, [2, 3], [[5, 5], [3, 3]], upsert=True)
    np.testing.assert_array_equal(client.get(collection_name, [1, 2, 3]).vectors,
                                  [[1, 1], [5, 5], [3, 3]])


def test_insert_into_a_collection_dropped_meanwhile(server, collection_name):
    with peakknn.Client(server.address) as a, peakknn.Client(server.address) as b:
        a.create_collection(collection_name, dim=2)
        b.describe(collection_name)
        a.drop(collection_name)
        # b still believes in dim 2 and streams; the server says NOT_FOUND.
        with pytest.raises(peakknn.NotFound, match=collection_name):
            b.insert(collection_name, [1], [[1, 1]])
        # ... and b forgot the dimension: the next call asks the server.
        with pytest.raises(peakknn.NotFound) as e:
            b.insert(collection_name, [1], [[1, 1]])
        assert e.value.method == "DescribeCollection"
