"""peakknn.Client: the blocking client (grpc's synchronous channel)."""

from __future__ import annotations

import contextlib
import threading

import grpc

from . import _channel
from ._errors import PeakknnError, from_rpc_error
from ._protocol import (ClientBase, Finished, InsertSession, Steps, Unary,
                        resume)


class Client(ClientBase):
    """A blocking connection to a peakknn server.

        with peakknn.Client("127.0.0.1:50051") as client:
            client.create_collection("docs", dim=128)
            client.insert("docs", ids, vectors)
            D, I = client.search("docs", queries, k=10)

    address: "host:port"; None reads $PEAKKNN_SERVER, else 127.0.0.1:50051.
    token: sent as "authorization: Bearer <token>" with every call.
    tls: True (system roots) or peakknn.TLS(ca_file, cert_file, key_file,
      server_name); None/False: plaintext.
    timeout: seconds each call may take (not insert's stream, which may run
      for hours); None: no deadline.

    Connects lazily: the first call reports Unavailable, naming the
    address, when no server answers. Thread-safe: threads may share one
    Client (gRPC multiplexes calls over its connection).
    """

    def __init__(self, address=None, *, token=None, tls=None, timeout=None):
        super().__init__(address, token=token, tls=tls, timeout=timeout)
        s = self._settings
        if s.credentials is None:
            self._channel = grpc.insecure_channel(s.address, options=s.options)
        else:
            self._channel = grpc.secure_channel(s.address, s.credentials,
                                                options=s.options)
        self._unary, self._insert_stream = _channel.multicallables(
            self._channel)

    def close(self) -> None:
        """Closes the connection; calls in progress are cancelled, later
        ones raise FailedPrecondition."""
        self._closed = True
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _drive(self, steps: Steps):
        with contextlib.closing(steps):
            outcome = None
            while True:
                step = resume(steps, outcome)
                if isinstance(step, Finished):
                    return step.value
                outcome = self._execute(step)

    def _execute(self, step):
        """The step's reply, or the PeakknnError it failed with."""
        try:
            error = self._closed_error(step)
            if error is not None:
                return error
            if isinstance(step, Unary):
                return self._call(step)
            return self._run_insert(step.session)
        except PeakknnError as e:
            return e

    def _call(self, step: Unary):
        try:
            return self._unary[step.method](
                step.request, timeout=self._settings.timeout,
                metadata=self._settings.metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, step.method, self.address) from None

    def _run_insert(self, session: InsertSession):
        """Sends session's batches with at most session.window unacked.

        gRPC's synchronous streams take requests from an iterator, which
        gRPC reads on its own thread: the iterator takes a window slot
        before each batch, and each ack read here gives one back.
        """
        slots = threading.Semaphore(session.window)
        stop = threading.Event()  # this side is done: send nothing more

        def requests():
            for batch in session.batches():
                slots.acquire()
                if stop.is_set() or session.failed:
                    return
                yield batch

        call = self._insert_stream(requests(),
                                   metadata=self._settings.metadata)
        try:
            for ack in call:
                session.on_ack(ack)
                slots.release()
        except grpc.RpcError as e:
            raise session.stream_error(
                from_rpc_error(e, _channel.INSERT_STREAM, self.address)
            ) from None
        finally:
            # Also on an exception here (a progress callback's, Ctrl-C):
            # wake the request iterator so gRPC's thread ends, and cancel
            # the call if it still runs.
            stop.set()
            slots.release()
            call.cancel()
        return session.result()
