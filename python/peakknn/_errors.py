"""The one exception hierarchy of peakknn: every failure is a PeakknnError.

Each gRPC status code has its own subclass (peakknn.NotFound for NOT_FOUND,
and so on). The same classes are raised for input the client rejects before
sending anything (wrong dimension, NaN, ids not matching vectors:
InvalidArgument), so callers catch one kind of error whichever side found
the problem. A few classes also derive from the matching built-in exception
(InvalidArgument is a ValueError, NotFound a LookupError, DeadlineExceeded a
TimeoutError, Unavailable a ConnectionError) so generic handlers still work.
"""

from __future__ import annotations

from typing import Optional

import grpc


class PeakknnError(Exception):
    """Base of every peakknn error.

    Attributes:
      code: the grpc.StatusCode (for client-side input errors, the code the
        server would have answered: INVALID_ARGUMENT).
      message: the server's message, or the client's for input it rejected.
      method: the RPC that failed ("Search", "InsertStream", ...), or None
        when the client rejected the call before sending it.
      sent: False when the client rejected the call before sending anything.
      batch, rows, written_rows: set by insert() when the server rejected
        a batch: its index, its rows (a range of row indices in insert's
        arguments) and the rows acknowledged from other batches (which
        stay written); written_rows also when the whole stream failed.
        None otherwise.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    batch: Optional[int] = None
    rows: Optional[range] = None
    written_rows: Optional[int] = None

    def __init__(self, message: str, *, method: Optional[str] = None,
                 sent: bool = True):
        self.message = message
        self.method = method
        self.sent = sent
        prefix = f"{method}: " if method else ""
        super().__init__(f"{prefix}{self.code.name}: {message}")


class Cancelled(PeakknnError):
    code = grpc.StatusCode.CANCELLED


class Unknown(PeakknnError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(PeakknnError, ValueError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(PeakknnError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(PeakknnError, LookupError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PeakknnError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(PeakknnError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(PeakknnError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(PeakknnError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(PeakknnError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(PeakknnError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(PeakknnError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(PeakknnError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(PeakknnError, ConnectionError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(PeakknnError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(PeakknnError):
    code = grpc.StatusCode.UNAUTHENTICATED


_CLASS_BY_CODE = {
    cls.code: cls
    for cls in (Cancelled, Unknown, InvalidArgument, DeadlineExceeded,
                NotFound, AlreadyExists, PermissionDenied, ResourceExhausted,
                FailedPrecondition, Aborted, OutOfRange, Unimplemented,
                Internal, Unavailable, DataLoss, Unauthenticated)
}
# InsertAck.code carries a google.rpc.Code number; grpc.StatusCode's value
# is (number, name).
_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def error_class(code: grpc.StatusCode) -> type:
    """The PeakknnError subclass for `code` (Unknown for OK or unmapped)."""
    return _CLASS_BY_CODE.get(code, Unknown)


def code_from_number(number: int) -> grpc.StatusCode:
    """The grpc.StatusCode of a google.rpc.Code number (UNKNOWN if none)."""
    return _CODE_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def from_rpc_error(error: grpc.RpcError, method: str,
                   target: str) -> PeakknnError:
    """The PeakknnError for a failed call, with the server's message.

    UNAVAILABLE also names the target, because its message usually comes
    from the client's own transport ("failed to connect ...") and the
    address is what the caller needs to check.
    """
    code = error.code()
    message = error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        message = f"peakknn server at {target} unavailable: {message}"
    return error_class(code)(message, method=method)


def invalid_argument(message: str) -> InvalidArgument:
    """An input error found by the client; nothing was sent."""
    return InvalidArgument(message + " (checked by the client; nothing was "
                           "sent)", sent=False)
