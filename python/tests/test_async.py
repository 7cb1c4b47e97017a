"""AsyncClient against the real server: the same methods, results and
errors as Client (each test runs its coroutine with asyncio.run)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import peakknn


def run(coroutine_function, *args):
    return asyncio.run(coroutine_function(*args))


def test_every_method(server, collection_name, rng):
    rows = rng.standard_normal((6000, 8)).astype(np.float32)

    async def scenario():
        async with peakknn.AsyncClient(server.address, timeout=60) as client:
            info = await client.create_collection(collection_name, dim=8)
            assert info.dim == 8
            progress = []
            inserted = await client.insert(
                collection_name, np.arange(6000), rows, batch_rows=1000,
                window=2, progress=lambda a, t: progress.append(a))
            assert inserted.rows == 6000 and inserted.batches == 6
            assert progress == [1000, 2000, 3000, 4000, 5000, 6000]
            assert (await client.describe(collection_name)).live_rows == 6000
            assert collection_name in [
                c.name for c in await client.list_collections()]
            D, I = await client.search(collection_name, rows[:5], k=3, recall=1)
            assert I[:, 0].tolist() == [0, 1, 2, 3, 4]
            assert D.shape == (5, 3) and (D[:, 0] == 0).all()
            upserted = await client.upsert(collection_name, [0], np.zeros(8))
            assert upserted.rows == 1
            got = await client.get(collection_name, [0, 99999])
            assert got.found.tolist() == [True, False]
            assert (got.vectors[0] == 0).all()
            deleted = await client.delete(collection_name, [0, 1])
            assert deleted.deleted == 2
            plan = await client.plan(None, 3, 0.9, collection=collection_name)
            assert plan.n == 5998
            stats = await client.stats()
            assert stats.inserted_rows >= 6001
            await client.drop(collection_name)
            with pytest.raises(peakknn.NotFound):
                await client.describe(collection_name)

    run(scenario)


def test_concurrent_searches_share_one_client(server, collection_name, rng):
    rows = rng.standard_normal((2000, 4)).astype(np.float32)

    async def scenario():
        async with peakknn.AsyncClient(server.address) as client:
            await client.create_collection(collection_name, dim=4)
            await client.insert(collection_name, np.arange(2000), rows)
            results = await asyncio.gather(*[
                client.search(collection_name, rows[i], k=1, recall=1)
                for i in range(32)])
            assert [int(I[0, 0]) for _, I in results] == list(range(32))

    run(scenario)


def test_errors(server, collection_name):
    async def scenario():
        async with peakknn.AsyncClient(server.address) as client:
            await client.create_collection(collection_name, dim=2)
            with pytest.raises(peakknn.AlreadyExists):
                await client.create_collection(collection_name, dim=2)
            await client.insert(collection_name, [1500], [[0, 0]])
            with pytest.raises(peakknn.AlreadyExists) as e:
                await client.insert(collection_name, np.arange(3000),
                                    np.ones((3000, 2)), batch_rows=1000,
                                    window=1)
            assert e.value.batch == 1 and e.value.rows == range(1000, 2000)
            assert e.value.written_rows == 1000
            # Argument errors are raised when awaited, before sending.
            pending = client.search(collection_name, np.ones(3), k=1)
            with pytest.raises(peakknn.InvalidArgument, match="dimension 3") as e:
                await pending
            assert not e.value.sent
        async with peakknn.AsyncClient("127.0.0.1:1") as nowhere:
            with pytest.raises(peakknn.Unavailable, match="127.0.0.1:1"):
                await nowhere.stats()

    run(scenario)
