"""Caller arrays to what goes on the wire, checked before anything is sent.

Vectors become one C-contiguous little-endian float32 array of shape
(rows, dim): the wire format of a packed `repeated float` field, so the
bytes are sent from it as they are. An array that already is one is used as
it is (no copy); anything else (float64, another byte order, a strided
view, a list) is converted once, here. Ids become a little-endian uint64
array of shape (rows,).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._errors import invalid_argument

# Wire layouts of packed `repeated float` and `repeated uint64` values.
FLOAT32 = np.dtype("<f4")
UINT64 = np.dtype("<u8")

# Rows checked for NaN/inf at a time: bounds the temporary memory of the
# check (rows * dim * 4 bytes) on inserts of millions of rows.
_FINITE_CHECK_ROWS = 65536


def vectors(values: Any, dim: int, what: str) -> np.ndarray:
    """`values` as a (rows, dim) C-contiguous float32 array.

    Accepts any real-number array-like: an (n, dim) array, or one vector of
    shape (dim,). Raises InvalidArgument naming `what` for a wrong shape,
    a non-numeric dtype, no rows, or a value that is NaN, infinite or out
    of float32 range.
    """
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise invalid_argument(
            f"{what}: dtype {array.dtype} is not a real number type; pass "
            "floats (float32 is sent as it is, other types are converted)")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise invalid_argument(
            f"{what}: shape {np.shape(values)} is neither (rows, {dim}) nor "
            f"one vector ({dim},)")
    if array.shape[1] != dim:
        raise invalid_argument(
            f"{what}: vectors of dimension {array.shape[1]} (shape "
            f"{array.shape}), but the collection's dimension is {dim}")
    if array.shape[0] == 0:
        raise invalid_argument(f"{what}: no vectors (shape {array.shape})")
    # The one conversion; a no-op for C-contiguous little-endian float32.
    # Values beyond float32's range become inf, which the check below
    # reports with its row, so numpy need not warn.
    with np.errstate(over="ignore"):
        array = np.ascontiguousarray(array, dtype=FLOAT32)
    _check_finite(array, what)
    return array


def _check_finite(array: np.ndarray, what: str) -> None:
    """Raises InvalidArgument naming the first row holding NaN or +-inf."""
    for first in range(0, array.shape[0], _FINITE_CHECK_ROWS):
        block = array[first:first + _FINITE_CHECK_ROWS]
        # A sum is finite when every term is (one fast pass); a float32 sum
        # of finite values can still overflow, so a non-finite sum is only
        # a hint, confirmed row by row.
        if np.isfinite(block.sum()):
            continue
        bad_rows = np.flatnonzero(~np.isfinite(block).all(axis=1))
        if bad_rows.size:
            row = first + int(bad_rows[0])
            raise invalid_argument(
                f"{what}: row {row} holds NaN or infinity (or a value "
                "beyond float32's range, about 3.4e38)")


def ids(values: Any, what: str) -> np.ndarray:
    """`values` (an int or integer array-like) as a 1-D uint64 array.

    Raises InvalidArgument naming `what` for non-integers (floats, bools,
    strings), negative ids, or more than one dimension.
    """
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = [values]
    array = np.asarray(values)
    if array.size == 0:
        # An empty list has dtype float64; nothing to check.
        return np.empty(0, UINT64)
    if array.dtype.kind not in "iu":
        raise invalid_argument(
            f"{what}: ids must be non-negative integers (uint64), got dtype "
            f"{array.dtype}")
    if array.ndim != 1:
        raise invalid_argument(
            f"{what}: ids must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        first = int(np.flatnonzero(array < 0)[0])
        raise invalid_argument(
            f"{what}: ids must be non-negative (uint64); id at position "
            f"{first} is {int(array[first])}")
    return np.ascontiguousarray(array, dtype=UINT64)


def matching(ids_array: np.ndarray, vectors_array: np.ndarray,
             what: str) -> None:
    """Raises InvalidArgument unless there is one id per vector."""
    if ids_array.shape[0] != vectors_array.shape[0]:
        raise invalid_argument(
            f"{what}: {ids_array.shape[0]} ids for {vectors_array.shape[0]} "
            "vectors; pass one id per vector")


def positive_int(value: Any, what: str) -> int:
    """`value` as an int >= 1, or InvalidArgument naming `what`."""
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
            or value < 1):
        raise invalid_argument(f"{what}={value!r}: must be an integer >= 1")
    return int(value)


def recall_target(value: Any, what: str = "recall") -> float:
    """A recall target for the wire: None -> 0 (the collection's default),
    otherwise a number in (0, 1] (1 is an exact search)."""
    if value is None:
        return 0.0
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not 0 < value <= 1):
        raise invalid_argument(
            f"{what}={value!r}: must be in (0, 1] (1 is an exact search), "
            "or None for the collection's default")
    return float(value)
