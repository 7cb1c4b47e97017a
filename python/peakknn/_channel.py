"""Connection settings shared by Client and AsyncClient: the address, TLS
credentials, the token's metadata, the per-call deadline, and the RPC
method table built from the generated service descriptor."""

from __future__ import annotations

import dataclasses
import numbers
import os
from typing import Any, Dict, Optional, Tuple, Union

import grpc

from ._errors import invalid_argument
from ._types import TLS
from .v1 import vector_search_pb2 as pb

DEFAULT_ADDRESS = "127.0.0.1:50051"
# Also read by the C++ CLI (peakknn --server).
ADDRESS_ENV = "PEAKKNN_SERVER"

_SERVICE = pb.DESCRIPTOR.services_by_name["VectorSearch"]
INSERT_STREAM = "InsertStream"
UNARY_METHODS = tuple(m.name for m in _SERVICE.methods
                      if m.name != INSERT_STREAM)

# No client-side message size limit: the server enforces its own
# (--max_message_bytes, 64 MiB by default) and names it when it rejects a
# request, while gRPC's default 4 MiB receive limit would fail large
# search results with a message that says nothing about peakknn.
_CHANNEL_OPTIONS = (("grpc.max_send_message_length", -1),
                    ("grpc.max_receive_message_length", -1))


def method_path(name: str) -> str:
    """gRPC path of a VectorSearch method, e.g. /peakknn.v1.VectorSearch/Search."""
    return f"/{_SERVICE.full_name}/{name}"


def response_class(name: str) -> type:
    return getattr(pb, _SERVICE.methods_by_name[name].output_type.name)


def _serialize(request: Any) -> bytes:
    # Requests carrying vectors are built as bytes (_wire); others are
    # protobuf messages.
    return request if isinstance(request, bytes) else request.SerializeToString()


def multicallables(channel) -> Tuple[Dict[str, Any], Any]:
    """The unary methods by name and the InsertStream method, for a
    grpc.Channel or a grpc.aio.Channel (same factory methods). InsertStream
    requests are bytes from _wire.insert_request, sent as they are."""
    unary = {
        name: channel.unary_unary(
            method_path(name), request_serializer=_serialize,
            response_deserializer=response_class(name).FromString)
        for name in UNARY_METHODS
    }
    insert_stream = channel.stream_stream(
        method_path(INSERT_STREAM), request_serializer=None,
        response_deserializer=pb.InsertAck.FromString)
    return unary, insert_stream


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a channel and its calls need, checked once."""
    address: str
    credentials: Optional[grpc.ChannelCredentials]  # None: plaintext
    options: Tuple[Tuple[str, Any], ...]
    metadata: Tuple[Tuple[str, str], ...]  # sent with every call
    timeout: Optional[float]  # seconds per unary call; None: no deadline


def _read_pem(path: Optional[str], field: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise invalid_argument(f"tls.{field}={path!r}: cannot read it: "
                               f"{e.strerror}") from None


def _credentials(tls: Union[bool, TLS, None]):
    """SSL channel credentials and extra channel options for `tls`."""
    if tls is None or tls is False:
        return None, ()
    if tls is True:
        tls = TLS()
    if not isinstance(tls, TLS):
        raise invalid_argument(
            f"tls={tls!r}: pass True, False, None or peakknn.TLS(...)")
    if (tls.cert_file is None) != (tls.key_file is None):
        raise invalid_argument(
            "tls: cert_file and key_file go together (a client certificate "
            f"needs its key); got cert_file={tls.cert_file!r}, "
            f"key_file={tls.key_file!r}")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read_pem(tls.ca_file, "ca_file"),
        private_key=_read_pem(tls.key_file, "key_file"),
        certificate_chain=_read_pem(tls.cert_file, "cert_file"))
    options = ()
    if tls.server_name is not None:
        options = (("grpc.ssl_target_name_override", tls.server_name),)
    return credentials, options


def settings(address: Optional[str], token: Optional[str],
             tls: Union[bool, TLS, None], timeout: Optional[float]) -> Settings:
    """Checks the Client arguments; raises InvalidArgument naming the bad one."""
    if address is None:
        address = os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    if not isinstance(address, str) or not address:
        raise invalid_argument(
            f"address={address!r}: pass 'host:port', e.g. '{DEFAULT_ADDRESS}'")
    metadata = ()
    if token is not None:
        if not isinstance(token, str) or not token or any(
                c.isspace() for c in token):
            raise invalid_argument(
                "token: must be a non-empty string without whitespace "
                "(it is sent as 'authorization: Bearer <token>')")
        metadata = (("authorization", f"Bearer {token}"),)
    if timeout is not None and (not isinstance(timeout, numbers.Real)
                                or isinstance(timeout, bool) or timeout <= 0):
        raise invalid_argument(
            f"timeout={timeout!r}: seconds per call, > 0, or None for none")
    credentials, tls_options = _credentials(tls)
    return Settings(address=address, credentials=credentials,
                    options=_CHANNEL_OPTIONS + tls_options, metadata=metadata,
                    timeout=None if timeout is None else float(timeout))
