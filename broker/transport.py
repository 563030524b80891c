"""Reading Kafka frames from a stream and writing responses to it.

`FrameReader` splits the byte stream into frames: a 4-byte big-endian size, checked against
`socket.request.max.bytes` before anything is allocated, then the frame. `send_chunks`
writes an encoded response: runs of bytes with one write, file slices (objects with
`fileno()`, `position` and `__len__`, from storage) with `os.sendfile` straight from the page
cache to the socket.

On a plain socket (`trio.SocketStream`) both work on the file descriptor themselves: a read
or write is tried at once and only a full (or empty) socket waits, with
`trio.lowlevel.wait_readable`/`wait_writable`. That spares the two scheduler round trips
trio's socket methods make around every successful call; `read_frame` instead checkpoints
once per frame when it did not have to wait, so a client that keeps its socket full does
not starve the others and cancellation is still seen. The descriptor is looked up before
every call (a closed socket's is -1: `trio.ClosedResourceError`), and the waits are woken
by trio when the socket is closed under them, so a closed connection never reads or writes
a recycled descriptor.

Where the bytes go:
- a receive goes into a scratch buffer shared by the thread's connections (filled and
  emptied with no await in between, so sharing is safe), and what is left after the frames
  it completed is kept per connection, usually nothing;
- a frame up to `_SMALL_FRAME` bytes is handed out as `bytes` (one copy);
- a larger frame (a Produce batch) is received with `recv_into` straight into a buffer
  from a small per-thread pool, after the part that came with its size prefix, and handed
  out as a memoryview of that buffer. A pooled buffer is reused only once nothing refers to
  it any more (its reference count says so: a request object that kept a view of its frame
  keeps the buffer out of the pool's reach), so reuse never overwrites a live frame. Reuse
  spares the allocation, the zero-filling and the first-touch page faults of a fresh
  buffer per request; new buffers are allocated uninitialised (`fastscan.new_bytearray`)
  since every byte handed out is received first.

Streams that are not plain sockets (TLS, in-memory test streams) go through
`receive_some`/`send_all`; their file slices are read with `os.pread` and sent.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import trio

from protocol.fastscan import new_bytearray

_SIZE = 4
#: Bytes asked for per receive into the scratch buffer.
_RECEIVE = 64 * 1024
#: Frames larger than this are received into a pooled buffer of their own.
_SMALL_FRAME = 64 * 1024
#: What a stream that is not a socket is asked for per receive.
_STREAM_RECEIVE = 256 * 1024
#: At most this many buffers per `writev` (Linux's IOV_MAX).
_IOV_MAX = 1024


class FramingError(Exception):
    """The peer broke Kafka's framing; its connection is closed."""


class BufferPool:
    """Buffers for large frames, reused once nothing refers to them any more.

    `take(size)` returns a bytearray of at least `size` bytes that nobody else holds: an
    idle pooled buffer when one is large enough, else a new one (rounded up to a power of
    two, uninitialised). The pool keeps at most `max_buffers` buffers of at most
    `max_buffer_bytes` each; a larger frame gets a buffer of its own that is dropped after
    use. A pooled buffer is idle when only the pool refers to it: the caller's memoryviews
    of it (and every view sliced from them) hold a reference through their managed buffer
    until they are garbage. Single-threaded: each thread has its own (`for_thread`).
    """

    def __init__(self, max_buffers: int = 4, max_buffer_bytes: int = 4 << 20) -> None:
        self.max_buffers = max_buffers
        self.max_buffer_bytes = max_buffer_bytes
        self._buffers: list[bytearray] = []

    def take(self, size: int) -> bytearray:
        buffers = self._buffers
        getrefcount = sys.getrefcount
        smallest_idle = -1
        for i in range(len(buffers)):
            # Idle: referred to by the list and by getrefcount's argument only.
            if getrefcount(buffers[i]) == 2:
                if len(buffers[i]) >= size:
                    return buffers[i]
                if smallest_idle < 0 or len(buffers[i]) < len(buffers[smallest_idle]):
                    smallest_idle = i
        capacity = max(1 << (size - 1).bit_length(), _SMALL_FRAME) if size > 0 else 0
        if capacity > self.max_buffer_bytes:
            return new_bytearray(size)  # too large to keep around
        new = new_bytearray(capacity)
        if len(buffers) < self.max_buffers:
            buffers.append(new)
        elif smallest_idle >= 0:
            buffers[smallest_idle] = new  # an idle one too small for today's frames
        return new

    @property
    def buffers(self) -> int:
        return len(self._buffers)

    _local = threading.local()

    @classmethod
    def for_thread(cls) -> BufferPool:
        pool: BufferPool | None = getattr(cls._local, "pool", None)
        if pool is None:
            pool = cls._local.pool = cls()
        return pool


class _Scratch(threading.local):
    """The thread's receive buffer: filled by one `readv` and emptied before any await."""

    def __init__(self) -> None:
        self.buf = new_bytearray(_RECEIVE)
        self.view = memoryview(self.buf)


_scratch = _Scratch()


def _fileno(sock: Any) -> int:
    fd: int = sock.fileno()
    if fd < 0:
        raise trio.ClosedResourceError("the connection was closed")
    return fd


class FrameReader:
    """Frames from a stream, each `bytes` or (large ones) a memoryview of a pooled buffer
    that stays valid as long as the caller holds it."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_frame_bytes: int) -> None:
        self._stream = stream
        self._sock = stream.socket if isinstance(stream, trio.SocketStream) else None
        self._max = max_frame_bytes
        self._buf = bytearray()  # received bytes not yet handed out in a frame
        self._pool = BufferPool.for_thread()
        self._waited = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def read_frame(self) -> bytes | memoryview | None:
        """The next frame without its size prefix; None when the peer closed cleanly."""
        self._waited = False
        buf = self._buf
        while len(buf) < _SIZE:
            if not await self._fill():
                if buf:
                    raise FramingError(
                        f"connection closed inside a size prefix ({len(buf)} bytes)")
                return None
        size = int.from_bytes(buf[:_SIZE], "big", signed=True)
        if size < 0:
            raise FramingError(f"negative frame size {size}")
        if size > self._max:
            raise FramingError(
                f"frame of {size} bytes is larger than socket.request.max.bytes={self._max}"
            )
        frame: bytes | memoryview
        end = _SIZE + size
        if size > _SMALL_FRAME and len(buf) < end:
            frame = await self._read_large(size)
        else:
            while len(buf) < end:
                if not await self._fill():
                    raise FramingError(
                        f"connection closed inside a frame ({len(buf) - _SIZE} of {size} bytes)")
            with memoryview(buf) as view:
                frame = bytes(view[_SIZE:end])
            del buf[:end]
        if not self._waited:
            await trio.lowlevel.checkpoint()
        return frame

    async def _fill(self) -> bool:
        """Receive more bytes into `_buf`; False at the end of the stream."""
        sock = self._sock
        if sock is None:
            data = await self._stream.receive_some(_STREAM_RECEIVE)
            self._waited = True
            self._buf += data
            return bool(data)
        scratch = _scratch
        n = await self._recv_into(scratch.view)
        # No await between the receive and this copy: the scratch buffer is ours.
        self._buf += scratch.view[:n]
        return n > 0

    async def _read_large(self, size: int) -> memoryview:
        """A frame larger than `_SMALL_FRAME`: what is buffered, then the rest received
        straight into a pooled buffer."""
        buf = self._buf
        out = memoryview(self._pool.take(size))[:size]
        have = len(buf) - _SIZE
        with memoryview(buf) as view:
            out[:have] = view[_SIZE:]
        buf.clear()
        while have < size:
            n = await self._receive_into(out[have:])
            if n == 0:
                raise FramingError(f"connection closed inside a frame ({have} of {size} bytes)")
            have += n
        return out

    async def _recv_into(self, view: memoryview) -> int:
        """`recv_into` on the socket, waiting only when it has nothing to read."""
        sock = self._sock
        while True:
            try:
                return os.readv(_fileno(sock), (view,))
            except BlockingIOError:
                self._waited = True
                await trio.lowlevel.wait_readable(sock)  # type: ignore[arg-type]
            except OSError as exc:  # as SocketStream.receive_some translates it
                raise trio.BrokenResourceError from exc

    async def _receive_into(self, view: memoryview) -> int:
        if self._sock is not None:
            return await self._recv_into(view)
        data = await self._stream.receive_some(min(len(view), 4 << 20))
        self._waited = True
        view[:len(data)] = data
        return len(data)


def _is_bytes(chunk: Any) -> bool:
    return isinstance(chunk, bytes | bytearray | memoryview)


async def _wait_writable(sock: Any) -> None:
    """Wait until the socket takes more; shielded, so a response is never torn."""
    with trio.CancelScope(shield=True):
        await trio.lowlevel.wait_writable(sock)


async def _write_all(sock: Any, buffers: list[Any]) -> None:
    """Write `buffers` in order: one `writev` when the socket takes them all (the usual
    case: no await at all), else the rest as the socket drains."""
    if len(buffers) > _IOV_MAX:
        buffers = [b"".join(buffers)]
    total = sum(len(b) for b in buffers)
    try:
        sent = os.writev(_fileno(sock), buffers)
    except BlockingIOError:
        sent = 0
    except OSError as exc:  # as SocketStream.send_all translates it
        raise trio.BrokenResourceError from exc
    if sent == total:
        return
    rest = memoryview(buffers[0] if len(buffers) == 1 else b"".join(buffers))[sent:]
    while rest:
        await _wait_writable(sock)
        try:
            sent = os.write(_fileno(sock), rest)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise trio.BrokenResourceError from exc
        rest = rest[sent:]


def _slice_fd(chunk: Any) -> int:
    """The slice's file descriptor. A segment closed since the slice was taken (its topic
    deleted while the answer was being written) cannot finish the frame: the connection is
    closed, as for a peer that went away, and the client fetches again."""
    try:
        fd: int = chunk.fileno()
    except ValueError as exc:  # I/O operation on closed file
        raise trio.BrokenResourceError(f"segment closed while sending: {exc}") from exc
    return fd


async def _sendfile(sock: Any, chunk: Any) -> None:
    offset = chunk.position
    remaining = len(chunk)
    while remaining > 0:
        try:
            # Both descriptors looked up again after every wait: one closed meanwhile must
            # fail, not name a file opened since under the same number.
            sent = os.sendfile(_fileno(sock), _slice_fd(chunk), offset, remaining)
        except BlockingIOError:
            await _wait_writable(sock)
            continue
        except OSError as exc:
            raise trio.BrokenResourceError from exc
        if sent == 0:
            # The file is shorter than the slice promised: the frame cannot be completed.
            raise trio.BrokenResourceError(f"file slice ended {remaining} bytes early")
        offset += sent
        remaining -= sent


async def _copy_slice(stream: trio.abc.SendStream, chunk: Any) -> None:
    fd = _slice_fd(chunk)
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
    """Write one encoded response whole. The caller holds the connection's send lock. On a
    socket every wait is shielded from cancellation; other streams are written inside a
    shielded scope."""
    sock = stream.socket if isinstance(stream, trio.SocketStream) else None
    if sock is None:
        with trio.CancelScope(shield=True):
            await _send_to_stream(stream, chunks)
        return
    for run in _runs(chunks):
        if isinstance(run, list):
            await _write_all(sock, run)
        else:
            await _sendfile(sock, run)


def _runs(chunks: Sequence[Any]) -> Iterator[Any]:
    """The chunks of a response in order: each run of bytes-like ones as one list (one
    `writev`, or one joined send), each file slice alone (one `sendfile` or copy)."""
    pending: list[Any] = []
    for chunk in chunks:
        if _is_bytes(chunk):
            pending.append(chunk)
            continue
        if pending:
            yield pending
            pending = []
        yield chunk
    if pending:
        yield pending


async def _send_to_stream(stream: trio.abc.SendStream, chunks: Sequence[Any]) -> None:
    for run in _runs(chunks):
        if isinstance(run, list):
            await stream.send_all(run[0] if len(run) == 1 else b"".join(run))
        else:
            await _copy_slice(stream, run)
