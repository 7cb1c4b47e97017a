"""Input errors the client can see are raised before anything is sent:
InvalidArgument with sent=False, naming what is wrong, and the server's
counters show no write and no search."""

from __future__ import annotations

import numpy as np
import pytest

import peakknn

DIM = 4


@pytest.fixture
def collection(client, collection_name):
    client.create_collection(collection_name, dim=DIM)
    client.insert(collection_name, [0], np.zeros((1, DIM)))
    return collection_name


def assert_rejected_before_sending(client, call, *message_parts):
    """`call` raises a client-side InvalidArgument naming `message_parts`,
    and the server saw no write and no search."""
    before = client.stats()
    with pytest.raises(peakknn.InvalidArgument) as e:
        call()
    assert not e.value.sent and e.value.method is None
    assert isinstance(e.value, ValueError)
    for part in message_parts:
        assert part in str(e.value), f"{part!r} not in {str(e.value)!r}"
    after = client.stats()
    assert (after.inserted_rows, after.search_requests) == (
        before.inserted_rows, before.search_requests)


def nan_in_row(row):
    v = np.ones((5, DIM))
    v[row, 2] = np.nan
    return v


@pytest.mark.parametrize("vectors, parts", [
    (np.ones((2, DIM + 1)), ["dimension 5", "dimension is 4"]),
    (np.ones(DIM - 1), ["dimension 3"]),
    (np.ones((2, 2, DIM)), ["shape (2, 2, 4)"]),
    (np.ones((0, DIM)), ["no vectors"]),
    (nan_in_row(3), ["row 3", "NaN"]),
    (np.full((2, DIM), np.inf), ["row 0", "infinity"]),
    (np.full((2, DIM), 1e39), ["row 0", "float32"]),
    (np.array([["a"] * DIM, ["b"] * DIM]), ["dtype <U1"]),
    (np.ones((2, DIM), complex), ["dtype complex128"]),
    (np.ones((2, DIM), bool), ["dtype bool"]),
], ids=["too-wide", "short-vector", "3d", "empty", "nan", "inf",
        "beyond-float32", "strings", "complex", "bool"])
def test_bad_vectors(client, collection, vectors, parts):
    ids = np.arange(len(vectors)) + 100 if np.ndim(vectors) == 2 else [100]
    for call in (lambda: client.insert(collection, ids, vectors),
                 lambda: client.upsert(collection, ids, vectors)):
        assert_rejected_before_sending(client, call, collection, *parts)
    assert_rejected_before_sending(
        client, lambda: client.search(collection, vectors, k=1), *parts)


def test_nan_beyond_the_first_check_block_is_found(client, collection):
    vectors = np.ones((70000, DIM), np.float32)
    vectors[69999, 0] = np.nan
    assert_rejected_before_sending(
        client, lambda: client.insert(collection, np.arange(70000), vectors),
        "row 69999")


@pytest.mark.parametrize("ids, parts", [
    ([1, 2], ["2 ids for 3 vectors"]),
    ([1, 2, 3, 4], ["4 ids for 3 vectors"]),
    ([1, -2, 3], ["position 1 is -2"]),
    ([1.0, 2.0, 3.0], ["integers", "float64"]),
    ([[1, 2, 3]], ["one-dimensional"]),
    (["a", "b", "c"], ["integers"]),
    ([True, False, True], ["integers", "bool"]),
], ids=["too-few", "too-many", "negative", "floats", "2d", "strings", "bools"])
def test_bad_ids(client, collection, ids, parts):
    vectors = np.ones((3, DIM))
    for call in (lambda: client.insert(collection, ids, vectors),
                 lambda: client.upsert(collection, ids, vectors)):
        assert_rejected_before_sending(client, call, *parts)


@pytest.mark.parametrize("kwargs, parts", [
    ({"k": 0}, ["k=0"]),
    ({"k": 2.5}, ["k=2.5"]),
    ({"k": 1, "recall": 0}, ["recall=0"]),
    ({"k": 1, "recall": 1.5}, ["recall=1.5"]),
    ({"k": 1, "recall": "high"}, ["recall='high'"]),
])
def test_bad_search_arguments(client, collection, kwargs, parts):
    assert_rejected_before_sending(
        client, lambda: client.search(collection, np.ones(DIM), **kwargs),
        *parts)


@pytest.mark.parametrize("kwargs, parts", [
    ({"batch_rows": 0}, ["batch_rows=0"]),
    ({"window": 0}, ["window=0"]),
    ({"progress": "yes"}, ["progress='yes'"]),
])
def test_bad_insert_arguments(client, collection, kwargs, parts):
    assert_rejected_before_sending(
        client, lambda: client.insert(collection, [5], np.ones(DIM), **kwargs),
        *parts)


@pytest.mark.parametrize("call, parts", [
    (lambda c: c.create_collection("x", dim=0), ["dim=0"]),
    (lambda c: c.create_collection("x", dim=4, metric="euclid"),
     ["metric='euclid'", "cosine"]),
    (lambda c: c.create_collection("x", dim=4, dtype="f16"), ["dtype='f16'"]),
    (lambda c: c.create_collection("x", dim=4, metric=["l2"]),
     ["metric=['l2']"]),
    (lambda c: c.create_collection("", dim=4), ["collection name ''"]),
    (lambda c: c.describe(None), ["collection name None"]),
    (lambda c: c.plan(0, 10, 0.9), ["n=0"]),
    (lambda c: c.plan(100, 10, None), ["recall must be in (0, 1]"]),
])
def test_bad_call_arguments(client, call, parts):
    assert_rejected_before_sending(client, lambda: call(client), *parts)


@pytest.mark.parametrize("kwargs, parts", [
    ({"timeout": 0}, ["timeout=0"]),
    ({"token": "two words"}, ["token"]),
    ({"tls": "yes"}, ["tls='yes'"]),
    ({"tls": peakknn.TLS(cert_file="c.pem")}, ["cert_file and key_file"]),
    ({"tls": peakknn.TLS(ca_file="/nonexistent/ca.pem")},
     ["tls.ca_file='/nonexistent/ca.pem'", "No such file"]),
])
def test_bad_client_arguments(kwargs, parts):
    with pytest.raises(peakknn.InvalidArgument) as e:
        peakknn.Client("127.0.0.1:1", **kwargs)
    assert not e.value.sent
    for part in parts:
        assert part in str(e.value)


def test_float32_input_is_sent_without_a_copy_and_not_modified(
        client, collection):
    # The request is built from the caller's array in place (one copy, into
    # the request bytes); the array itself is neither copied nor changed.
    from peakknn import _arrays
    vectors = np.arange(8 * DIM, dtype=np.float32).reshape(8, DIM)
    assert _arrays.vectors(vectors, DIM, "v") is vectors
    saved = vectors.copy()
    client.insert(collection, np.arange(8) + 1000, vectors)
    np.testing.assert_array_equal(vectors, saved)
    np.testing.assert_array_equal(
        client.get(collection, np.arange(8) + 1000).vectors, vectors)
