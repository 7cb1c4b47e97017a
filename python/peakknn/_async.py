"""peakknn.AsyncClient: the asyncio client (grpc.aio)."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import grpc.aio

from . import _channel
from ._errors import PeakknnError, from_rpc_error
from ._protocol import (ClientBase, Finished, InsertSession, Steps, Unary,
                        resume)


class AsyncClient(ClientBase):
    """Client's methods as coroutines, over grpc.aio:

        async with peakknn.AsyncClient("127.0.0.1:50051") as client:
            await client.create_collection("docs", dim=128)
            await client.insert("docs", ids, vectors)
            D, I = await client.search("docs", queries, k=10)

    Same arguments, results and errors as peakknn.Client; every method
    returns an awaitable, and its argument errors are raised when awaited.
    Create it inside the event loop that uses it (grpc.aio binds a channel
    to one loop).
    """

    def __init__(self, address=None, *, token=None, tls=None, timeout=None):
        super().__init__(address, token=token, tls=tls, timeout=timeout)
        s = self._settings
        if s.credentials is None:
            self._channel = grpc.aio.insecure_channel(s.address,
                                                      options=s.options)
        else:
            self._channel = grpc.aio.secure_channel(s.address, s.credentials,
                                                    options=s.options)
        self._unary, self._insert_stream = _channel.multicallables(
            self._channel)

    async def close(self) -> None:
        """Closes the connection; calls in progress are cancelled, later
        ones raise FailedPrecondition."""
        self._closed = True
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def _drive(self, steps: Steps):
        with contextlib.closing(steps):
            outcome = None
            while True:
                step = resume(steps, outcome)
                if isinstance(step, Finished):
                    return step.value
                outcome = await self._execute(step)

    async def _execute(self, step):
        """The step's reply, or the PeakknnError it failed with."""
        try:
            error = self._closed_error(step)
            if error is not None:
                return error
            if isinstance(step, Unary):
                return await self._call(step)
            return await self._run_insert(step.session)
        except PeakknnError as e:
            return e

    async def _call(self, step: Unary):
        try:
            return await self._unary[step.method](
                step.request, timeout=self._settings.timeout,
                metadata=self._settings.metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, step.method, self.address) from None

    async def _run_insert(self, session: InsertSession):
        """Sends session's batches with at most session.window unacked:
        reads an ack whenever the window is full, then the rest."""
        call = self._insert_stream(metadata=self._settings.metadata)
        in_flight = 0

        async def read_ack() -> bool:
            """One ack into the session; False when the stream has ended."""
            nonlocal in_flight
            ack = await call.read()  # raises AioRpcError on a failed stream
            if ack is grpc.aio.EOF:
                return False
            in_flight -= 1
            session.on_ack(ack)
            return True

        try:
            ended = False
            for batch in session.batches():
                while in_flight >= session.window and not ended:
                    ended = not await read_ack()
                if ended or session.failed:
                    break
                try:
                    await call.write(batch)
                except asyncio.InvalidStateError:
                    # The server ended the stream OK before taking every
                    # batch; session.result() reports the rows missing.
                    ended = True
                    break
                in_flight += 1
            if not ended:
                await call.done_writing()
                while await read_ack():
                    pass
        except grpc.RpcError as e:
            raise session.stream_error(
                from_rpc_error(e, _channel.INSERT_STREAM, self.address)
            ) from None
        finally:
            call.cancel()  # no-op when done; stops it on an exception
        return session.result()
