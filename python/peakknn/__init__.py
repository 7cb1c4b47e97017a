"""peakknn: Python client of the peakknn k-nearest-neighbour service.

    import numpy as np, peakknn
    client = peakknn.Client("127.0.0.1:50051")
    client.create_collection("docs", dim=128)
    client.insert("docs", np.arange(10000), np.random.rand(10000, 128))
    D, I = client.search("docs", np.random.rand(5, 128), k=10)

peakknn.AsyncClient has the same methods for asyncio. Every error is a
peakknn.PeakknnError; see python/README.md for the API.
"""

try:
    from .v1 import vector_search_pb2 as _generated  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(
        "peakknn: the generated protobuf modules (peakknn/v1/"
        "vector_search_pb2.py) are missing: install the package with pip, "
        "which generates them from proto/ (python/README.md), or run "
        "python/build_stubs.py --in-place for a source checkout") from e

from ._async import AsyncClient
from ._errors import (Aborted, AlreadyExists, Cancelled, DataLoss,
                      DeadlineExceeded, FailedPrecondition, Internal,
                      InvalidArgument, NotFound, OutOfRange, PeakknnError,
                      PermissionDenied, ResourceExhausted, Unauthenticated,
                      Unavailable, Unimplemented, Unknown)
from ._protocol import (DEFAULT_BATCH_ROWS, DEFAULT_WINDOW,
                        MAX_QUERIES_PER_REQUEST)
from ._sync import Client
from ._types import (TLS, CollectionInfo, DeleteResult, GetResult,
                     InsertResult, Plan, SearchResult, Stats, WriteResult)
from ._wire import MISSING_ID

__version__ = "0.1.0"

__all__ = [
    "Aborted", "AlreadyExists", "AsyncClient", "Cancelled", "Client",
    "CollectionInfo", "DataLoss", "DeadlineExceeded", "DEFAULT_BATCH_ROWS",
    "DEFAULT_WINDOW", "DeleteResult", "FailedPrecondition", "GetResult",
    "InsertResult", "Internal", "InvalidArgument", "MAX_QUERIES_PER_REQUEST",
    "MISSING_ID", "NotFound", "OutOfRange", "PeakknnError",
    "PermissionDenied", "Plan", "ResourceExhausted", "SearchResult", "Stats",
    "TLS", "Unauthenticated", "Unavailable", "Unimplemented", "Unknown",
    "WriteResult",
]

# Show the public classes as peakknn.X in tracebacks and reprs, not as the
# private modules that define them.
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = __name__
del _name
