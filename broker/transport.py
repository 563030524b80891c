"""Reading Kafka frames from a stream and writing responses to it.

`FrameReader` splits the byte stream into frames: a 4-byte big-endian size, checked against
`socket.request.max.bytes` before anything is allocated, then the frame. A frame that
arrives in pieces is gathered in a list and joined once, so a 1 MiB Produce costs one copy.

`send_chunks` writes an encoded response: runs of bytes go out with one `send_all`, file
slices (objects with `fileno()`, `position` and `__len__`, from storage) go out with
`os.sendfile` straight from the page cache to the socket. Streams that are not plain sockets
(TLS, in-memory test streams) get the slice's bytes read with `os.pread` and sent instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import trio

_SIZE = 4
_RECEIVE = 256 * 1024


class FramingError(Exception):
    """The peer broke Kafka's framing; its connection is closed."""


class FrameReader:
    def __init__(self, stream: trio.abc.ReceiveStream, max_frame_bytes: int) -> None:
        self._stream = stream
        self._max = max_frame_bytes
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def read_frame(self) -> bytes | None:
        """The next frame without its size prefix; None when the peer closed cleanly."""
        while len(self._buf) < _SIZE:
            data = await self._stream.receive_some(_RECEIVE)
            if not data:
                if self._buf:
                    raise FramingError(
                        f"connection closed inside a size prefix ({len(self._buf)} bytes)")
                return None
            self._buf += data
        size = int.from_bytes(self._buf[:_SIZE], "big", signed=True)
        if size < 0:
            raise FramingError(f"negative frame size {size}")
        if size > self._max:
            raise FramingError(
                f"frame of {size} bytes is larger than socket.request.max.bytes={self._max}"
            )
        end = _SIZE + size
        if len(self._buf) >= end:
            frame = bytes(self._buf[_SIZE:end])
            del self._buf[:end]
            return frame
        parts: list[bytes] = [bytes(self._buf[_SIZE:])]
        have = len(parts[0])
        self._buf.clear()
        while have < size:
            data = await self._stream.receive_some(max(_RECEIVE, min(size - have, 4 << 20)))
            if not data:
                raise FramingError(f"connection closed inside a frame ({have} of {size} bytes)")
            parts.append(bytes(data))
            have += len(data)
        joined = b"".join(parts)
        if have > size:
            self._buf += joined[size:]
            return joined[:size]
        return joined


def _is_bytes(chunk: Any) -> bool:
    return isinstance(chunk, bytes | bytearray | memoryview)


async def _sendfile(sock: Any, chunk: Any) -> None:
    out_fd = sock.fileno()
    in_fd = chunk.fileno()
    offset = chunk.position
    remaining = len(chunk)
    while remaining > 0:
        try:
            sent = os.sendfile(out_fd, in_fd, offset, remaining)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        if sent == 0:
            # The file is shorter than the slice promised: the frame cannot be completed.
            raise trio.BrokenResourceError(f"file slice ended {remaining} bytes early")
        offset += sent
        remaining -= sent


async def _copy_slice(stream: trio.abc.SendStream, chunk: Any) -> None:
    fd = chunk.fileno()
    offset = chunk.position
    remaining = len(chunk)
    while remaining > 0:
        data = os.pread(fd, min(remaining, 1 << 20), offset)
        if not data:
            raise trio.BrokenResourceError(f"file slice ended {remaining} bytes early")
        await stream.send_all(data)
        offset += len(data)
        remaining -= len(data)


async def send_chunks(stream: trio.abc.SendStream, chunks: Sequence[Any]) -> None:
    """Write one encoded response. The caller holds the connection's send lock."""
    sock = stream.socket if isinstance(stream, trio.SocketStream) else None
    pending: list[Any] = []
    for chunk in chunks:
        if _is_bytes(chunk):
            pending.append(chunk)
            continue
        if pending:
            await stream.send_all(b"".join(pending))
            pending.clear()
        if sock is not None:
            await _sendfile(sock, chunk)
        else:
            await _copy_slice(stream, chunk)
    if pending:
        await stream.send_all(pending[0] if len(pending) == 1 else b"".join(pending))
