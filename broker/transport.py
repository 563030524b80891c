"""Reading Kafka frames from a stream and writing responses to it.

`FrameReader` splits the byte stream into frames: a 4-byte big-endian size, checked against
`socket.request.max.bytes` before anything is allocated, then the frame. A frame that
arrives in pieces is read into a buffer of its size (with `recv_into` on a socket), so a
1 MiB Produce costs no copy beyond the kernel's.

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
    """Frames from a stream. On a socket, a frame larger than what one receive brought is
    read with `recv_into` straight into its own buffer: the kernel's copy is the only one."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_frame_bytes: int) -> None:
        self._stream = stream
        self._sock = stream.socket if isinstance(stream, trio.SocketStream) else None
        self._max = max_frame_bytes
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def read_frame(self) -> bytes | bytearray | None:
        """The next frame without its size prefix; None when the peer closed cleanly."""
        buf = self._buf
        while len(buf) < _SIZE:
            data = await self._stream.receive_some(_RECEIVE)
            if not data:
                if buf:
                    raise FramingError(
                        f"connection closed inside a size prefix ({len(buf)} bytes)")
                return None
            buf += data
        size = int.from_bytes(buf[:_SIZE], "big", signed=True)
        if size < 0:
            raise FramingError(f"negative frame size {size}")
        if size > self._max:
            raise FramingError(
                f"frame of {size} bytes is larger than socket.request.max.bytes={self._max}"
            )
        end = _SIZE + size
        if len(buf) >= end:
            frame = bytes(buf[_SIZE:end])
            del buf[:end]
            return frame
        # The rest of the frame goes straight into a buffer of its exact size.
        out = bytearray(size)
        have = len(buf) - _SIZE
        out[:have] = buf[_SIZE:]
        buf.clear()
        view = memoryview(out)
        while have < size:
            n = await self._receive_into(view[have:])
            if n == 0:
                raise FramingError(f"connection closed inside a frame ({have} of {size} bytes)")
            have += n
        return out

    async def _receive_into(self, view: memoryview) -> int:
        sock = self._sock
        if sock is None:
            data = await self._stream.receive_some(min(len(view), 4 << 20))
            view[:len(data)] = data
            return len(data)
        try:
            return await sock.recv_into(view)
        except OSError as exc:  # as SocketStream.receive_some translates it
            raise trio.BrokenResourceError from exc


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
        except OSError as exc:  # the peer went away (EPIPE, ECONNRESET): as send_all says it
            raise trio.BrokenResourceError(f"sendfile failed: {exc}") from exc
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
