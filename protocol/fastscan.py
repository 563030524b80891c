"""A summary of a records section, from the optional C scanner when it was built.

`scan_summary(data, count, base_timestamp)` returns `(min_timestamp, max_timestamp,
offsets_consecutive, any_null_key)` for strictly well-formed records (min ignores
timestamps of -1), or None: when the C extension `protocol._speedups` is not available,
or when anything about the records is unusual. None always means "ask the pure-Python
scanner", which is the authority on what is accepted and with which error message.

`lz4_frames_into(src, dst)`: LZ4 frames of `src` decoded into the writable `dst`: the
number of bytes written, -1 when `dst` is too small, or None (also without the extension)
for anything the C decoder leaves to the lz4 library, which then decides.

`new_bytearray(n)`: a bytearray of `n` bytes left uninitialised by the C extension (plain
`bytearray(n)`, zero-filled, without it), for buffers that are filled before being read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_c_scan: Callable[..., Any] | None
_c_lz4: Callable[..., Any] | None
new_bytearray: Callable[[int], bytearray]
try:
    from protocol import _speedups  # type: ignore[attr-defined]

    _c_scan = _speedups.scan_summary
    _c_lz4 = getattr(_speedups, "lz4_frames_into", None)
    new_bytearray = getattr(_speedups, "uninitialized_bytearray", bytearray)
except ImportError:  # built without a C compiler: the pure-Python path does all the work
    _c_scan = None
    _c_lz4 = None
    new_bytearray = bytearray

AVAILABLE = _c_scan is not None


def scan_summary(data: Any, count: int, base_timestamp: int
                 ) -> tuple[int, int, bool, bool] | None:
    if _c_scan is None:
        return None
    result: tuple[int, int, bool, bool] | None = _c_scan(data, count, base_timestamp)
    return result


def lz4_frames_into(src: Any, dst: bytearray | memoryview) -> int | None:
    if _c_lz4 is None:
        return None
    result: int | None = _c_lz4(src, dst)
    return result
