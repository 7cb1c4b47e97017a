"""Client-side transport: against a stand-in VectorSearch server written
with the generated gRPC modules, the token's metadata, TLS (server and
mutual), every status code's exception class, and stream-level failures
(what the client sends is checked where the server side can be
controlled); then TLS, mutual TLS and role tokens against the real
peakknn-server (--tls_*, --auth_tokens_file).
"""

from __future__ import annotations

import asyncio
import subprocess
from concurrent import futures

import grpc
import numpy as np
import pytest

import peakknn
from conftest import Server, server_binary
from peakknn.v1 import vector_search_pb2 as pb
from peakknn.v1 import vector_search_pb2_grpc as pb_grpc

TOKEN = "s3cret-token"


class StandIn(pb_grpc.VectorSearchServicer):
    """Answers a few methods and records each call's metadata.

    DescribeCollection(name=<a status code name>) fails with that code;
    Search answers one result whatever the queries;
    InsertStream(collection="fail-after-1") fails the stream with
    UNAVAILABLE after acknowledging one batch, "end-after-1" ends it OK
    after one ack.
    """

    def __init__(self):
        self.calls = []  # (method, {metadata key: value})

    def _record(self, method, context):
        self.calls.append((method, dict(context.invocation_metadata())))

    def GetStats(self, request, context):
        self._record("GetStats", context)
        return pb.GetStatsResponse(version="stand-in")

    def DescribeCollection(self, request, context):
        self._record("DescribeCollection", context)
        if request.name in grpc.StatusCode.__members__:
            context.abort(grpc.StatusCode[request.name],
                          f"stand-in says {request.name}")
        return pb.DescribeCollectionResponse(info=pb.CollectionInfo(
            schema=pb.CollectionSchema(name=request.name, dim=2)))

    def Search(self, request, context):
        self._record("Search", context)
        # One result, whatever the number of queries: a broken server.
        return pb.SearchResponse(results=[pb.QueryResult(ids=[1],
                                                         distances=[0.5])])

    def InsertStream(self, request_iterator, context):
        self._record("InsertStream", context)
        collection = None
        for request in request_iterator:
            collection = collection or request.collection
            yield pb.InsertAck(batch_tag=request.batch_tag, sequence=1,
                               rows=len(request.ids))
            if collection == "fail-after-1":
                context.abort(grpc.StatusCode.UNAVAILABLE, "stand-in went away")
            if collection == "end-after-1":
                return


def start_stand_in(credentials=None):
    servicer = StandIn()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_VectorSearchServicer_to_server(servicer, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, servicer, f"127.0.0.1:{port}"


@pytest.fixture
def stand_in():
    server, servicer, address = start_stand_in()
    yield servicer, address
    server.stop(None)


def test_token_is_sent_with_every_call(stand_in):
    servicer, address = stand_in
    with peakknn.Client(address, token=TOKEN) as client:
        assert client.stats().version == "stand-in"
        client.insert("docs", [1, 2], np.ones((2, 2)))
    assert [m for m, _ in servicer.calls] == [
        "GetStats", "DescribeCollection", "InsertStream"]
    for method, metadata in servicer.calls:
        assert metadata.get("authorization") == f"Bearer {TOKEN}", method


def test_no_token_no_authorization(stand_in):
    servicer, address = stand_in
    with peakknn.Client(address) as client:
        client.stats()
    assert "authorization" not in servicer.calls[0][1]


def test_async_token_is_sent_with_every_call(stand_in):
    servicer, address = stand_in

    async def scenario():
        async with peakknn.AsyncClient(address, token=TOKEN) as client:
            await client.stats()
            await client.insert("docs", [1], np.ones(2))

    asyncio.run(scenario())
    assert len(servicer.calls) == 3
    assert all(m.get("authorization") == f"Bearer {TOKEN}"
               for _, m in servicer.calls)


def class_name(code: grpc.StatusCode) -> str:
    return "".join(word.capitalize() for word in code.name.split("_"))


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode
                                  if c != grpc.StatusCode.OK],
                         ids=lambda c: c.name)
def test_every_status_code_has_its_exception(stand_in, code):
    _, address = stand_in
    with peakknn.Client(address) as client:
        with pytest.raises(peakknn.PeakknnError) as e:
            client.describe(code.name)
    assert type(e.value).__name__ == class_name(code)
    assert type(e.value) is getattr(peakknn, class_name(code))
    assert e.value.code == code and e.value.method == "DescribeCollection"
    assert f"stand-in says {code.name}" in e.value.message


def test_stream_failure_says_what_was_written(stand_in):
    _, address = stand_in
    with peakknn.Client(address) as client:
        with pytest.raises(peakknn.Unavailable, match="stand-in went away") as e:
            client.insert("fail-after-1", np.arange(30), np.ones((30, 2)),
                          batch_rows=10, window=1)
        assert e.value.written_rows == 10
        assert "10 of 30 rows were acknowledged" in str(e.value)
        with pytest.raises(peakknn.DataLoss, match="after 10 of 30 rows"):
            client.insert("end-after-1", np.arange(30), np.ones((30, 2)),
                          batch_rows=10, window=1)


def test_async_stream_failure_says_what_was_written(stand_in):
    _, address = stand_in

    async def scenario():
        async with peakknn.AsyncClient(address) as client:
            with pytest.raises(peakknn.Unavailable) as e:
                await client.insert("fail-after-1", np.arange(30),
                                    np.ones((30, 2)), batch_rows=10, window=1)
            assert e.value.written_rows == 10
            with pytest.raises(peakknn.DataLoss, match="after 10 of 30 rows"):
                await client.insert("end-after-1", np.arange(30),
                                    np.ones((30, 2)), batch_rows=10, window=1)

    asyncio.run(scenario())


def test_wrong_result_count_is_internal(stand_in):
    _, address = stand_in
    with peakknn.Client(address) as client:
        D, I = client.search("docs", [1, 2], k=1)  # one query: fine
        assert I.tolist() == [[1]] and D.tolist() == [[0.5]]
        with pytest.raises(peakknn.Internal, match="1 results for 3 queries"):
            client.search("docs", np.ones((3, 2)), k=1)


# -- TLS -----------------------------------------------------------------------

SERVER_NAME = "peakknn.test"  # the only name in the server's certificate


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   capture_output=True)


def issue(directory, name, subject, extension):
    """An EC key and a certificate for `subject` signed by the test CA."""
    openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={subject}", cwd=directory)
    (directory / f"{name}.ext").write_text(extension + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
            "-extfile", f"{name}.ext", cwd=directory)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, a server certificate for SERVER_NAME, a client certificate."""
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=peakknn test CA", cwd=d)
    issue(d, "server", SERVER_NAME, f"subjectAltName=DNS:{SERVER_NAME}")
    issue(d, "client", "peakknn test client", "extendedKeyUsage=clientAuth")
    return d


def tls_stand_in(certificates, require_client_certificate):
    read = lambda name: (certificates / name).read_bytes()
    credentials = grpc.ssl_server_credentials(
        [(read("server.key"), read("server.pem"))],
        root_certificates=read("ca.pem"),
        require_client_auth=require_client_certificate)
    return start_stand_in(credentials)


def test_tls_with_ca_file_and_server_name(certificates):
    server, servicer, address = tls_stand_in(certificates, False)
    try:
        tls = peakknn.TLS(ca_file=str(certificates / "ca.pem"),
                          server_name=SERVER_NAME)
        with peakknn.Client(address, tls=tls, token=TOKEN, timeout=10) as client:
            assert client.stats().version == "stand-in"
        assert servicer.calls[0][1]["authorization"] == f"Bearer {TOKEN}"
        # The certificate does not name 127.0.0.1, the system's roots do
        # not sign it, and plaintext is no TLS: each fails to connect.
        for kwargs in ({"tls": peakknn.TLS(ca_file=str(certificates / "ca.pem"))},
                       {"tls": True}, {}):
            with peakknn.Client(address, timeout=10, **kwargs) as client:
                with pytest.raises(peakknn.Unavailable, match=address):
                    client.stats()
        assert len(servicer.calls) == 1
    finally:
        server.stop(None)


def test_mutual_tls(certificates):
    server, servicer, address = tls_stand_in(certificates, True)
    try:
        ca = str(certificates / "ca.pem")
        with peakknn.Client(address, timeout=10, tls=peakknn.TLS(
                ca_file=ca, server_name=SERVER_NAME)) as client:
            with pytest.raises(peakknn.Unavailable):
                client.stats()  # no client certificate
        tls = peakknn.TLS(ca_file=ca, server_name=SERVER_NAME,
                          cert_file=str(certificates / "client.pem"),
                          key_file=str(certificates / "client.key"))
        with peakknn.Client(address, tls=tls, timeout=10) as client:
            assert client.stats().version == "stand-in"

        async def scenario():
            async with peakknn.AsyncClient(address, tls=tls,
                                           timeout=10) as client:
                return (await client.stats()).version

        assert asyncio.run(scenario()) == "stand-in"
    finally:
        server.stop(None)


# -- The real server: TLS, mutual TLS, role tokens -----------------------------

READ_TOKEN = "python-read-token-9f8e7d6c"
ADMIN_TOKEN = "python-admin-token-1a2b3c4d"


@pytest.fixture
def secure_server(certificates, tmp_path):
    """start(mutual): peakknn-server with TLS (SERVER_NAME's certificate)
    and role tokens, and with mutual TLS when `mutual`; stopped (exit 0)
    after the test. Its client_kwargs are a read token and the TLS that
    fits."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"read {READ_TOKEN}\nadmin {ADMIN_TOKEN}\n")
    flags = [f"--tls_cert_file={certificates / 'server.pem'}",
             f"--tls_key_file={certificates / 'server.key'}",
             f"--auth_tokens_file={tokens}", "--drain_seconds=1"]
    servers = []

    def start(mutual: bool):
        extra = [f"--tls_client_ca_file={certificates / 'ca.pem'}"] if mutual else []
        client_tls = peakknn.TLS(
            ca_file=str(certificates / "ca.pem"), server_name=SERVER_NAME,
            cert_file=str(certificates / "client.pem") if mutual else None,
            key_file=str(certificates / "client.key") if mutual else None)
        directory = tmp_path / ("mutual" if mutual else "tls")
        directory.mkdir()
        s = Server(server_binary(), directory, flags + extra,
                   client_kwargs={"tls": client_tls, "token": READ_TOKEN})
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.stop() == 0, s.log()


def test_real_server_tls_and_role_tokens(secure_server, rng):
    server = secure_server(False)
    tls = server.client_kwargs["tls"]
    with peakknn.Client(server.address, tls=tls, token=ADMIN_TOKEN,
                        timeout=30) as admin:
        admin.create_collection("docs", dim=8)
        vectors = rng.standard_normal((50, 8)).astype(np.float32)
        admin.insert("docs", np.arange(50), vectors)
    with peakknn.Client(server.address, tls=tls, token=READ_TOKEN,
                        timeout=30) as reader:
        D, I = reader.search("docs", vectors[3], k=1, recall=1.0)
        assert I.tolist() == [[3]]
        with pytest.raises(peakknn.PermissionDenied,
                           match="DropCollection needs role admin"):
            reader.drop("docs")
        with pytest.raises(peakknn.PermissionDenied,
                           match="InsertStream needs role write"):
            reader.insert("docs", [99], vectors[0])
    for token in (None, "not-a-token-of-this-server"):
        with peakknn.Client(server.address, tls=tls, token=token,
                            timeout=30) as stranger:
            with pytest.raises(peakknn.Unauthenticated,
                               match="missing or unknown token"):
                stranger.list_collections()
    # TLS only: plaintext cannot talk to it.
    with peakknn.Client(server.address, token=READ_TOKEN, timeout=5) as plain:
        with pytest.raises(peakknn.Unavailable):
            plain.list_collections()

    async def scenario():
        async with peakknn.AsyncClient(server.address, tls=tls,
                                       token=READ_TOKEN, timeout=30) as client:
            return [c.name for c in await client.list_collections()]

    assert asyncio.run(scenario()) == ["docs"]


def test_real_server_mutual_tls(secure_server, certificates):
    server = secure_server(True)
    with_certificate = server.client_kwargs["tls"]
    with peakknn.Client(server.address, tls=with_certificate,
                        token=READ_TOKEN, timeout=30) as client:
        assert client.list_collections() == []
    without = peakknn.TLS(ca_file=str(certificates / "ca.pem"),
                          server_name=SERVER_NAME)
    with peakknn.Client(server.address, tls=without, token=READ_TOKEN,
                        timeout=5) as client:
        with pytest.raises(peakknn.Unavailable):
            client.list_collections()
