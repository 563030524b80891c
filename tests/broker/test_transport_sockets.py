"""`broker.transport` on real sockets: frames read straight from the descriptor, large
ones into pooled buffers that are never reused while a frame still refers to them, and
responses written whole even when the socket is full or the writer is cancelled."""

from __future__ import annotations

import os
import random
import socket

import pytest
import trio

from broker.transport import BufferPool, FrameReader, FramingError, send_chunks
from protocol.fastscan import new_bytearray
from tests.broker.test_transport import Slice, _frame


def _pair() -> tuple[trio.SocketStream, socket.socket]:
    a, b = socket.socketpair()
    b.setblocking(False)
    return trio.SocketStream(trio.socket.from_stdlib_socket(a)), b


async def _write_in_pieces(sock: socket.socket, data: bytes, seed: int) -> None:
    """Write `data` in random pieces, yielding between them, then close the socket."""
    rng = random.Random(seed)
    pos = 0
    peer = trio.socket.from_stdlib_socket(sock)
    while pos < len(data):
        n = rng.choice([1, 3, 100, 4096, 70_000, 300_000])
        pos += await peer.send(data[pos:pos + n])
        await trio.sleep(0)
    peer.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_frames_of_every_size_come_out_whole_over_a_socket(seed: int) -> None:
    rng = random.Random(seed)
    bodies = [os.urandom(n) for n in (0, 5, 65_535, 65_536, 65_537, 1 << 20, 12, 200_000,
                                      70_000, 3)]
    rng.shuffle(bodies)
    stream, peer = _pair()
    reader = FrameReader(stream, 2 << 20)
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_in_pieces, peer, b"".join(_frame(b) for b in bodies), seed)
        while (frame := await reader.read_frame()) is not None:
            got.append(bytes(frame))
    assert got == bodies
    await stream.aclose()


async def test_a_held_large_frame_is_not_overwritten_by_the_next_one() -> None:
    first, second, third = os.urandom(300_000), os.urandom(300_000), os.urandom(200_000)
    stream, peer = _pair()
    reader = FrameReader(stream, 1 << 20)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_in_pieces, peer,
                           _frame(first) + _frame(second) + _frame(third), 7)
        held = await reader.read_frame()
        kept_view = memoryview(held)[10:20]  # e.g. a decoded request's records field
        del held
        frame2 = await reader.read_frame()
        assert bytes(frame2) == second
        del frame2  # its buffer is idle again; the first one is still referenced
        frame3 = await reader.read_frame()
        assert bytes(frame3) == third
        assert bytes(kept_view) == first[10:20]
        assert await reader.read_frame() is None
    await stream.aclose()


def test_the_pool_reuses_a_buffer_only_once_nothing_refers_to_it() -> None:
    pool = BufferPool(max_buffers=2, max_buffer_bytes=1 << 20)
    a = memoryview(pool.take(100_000))[:100_000]
    b = memoryview(pool.take(100_000))[:100_000]
    assert a.obj is not b.obj and len(a.obj) == 128 * 1024  # a power of two
    first = id(a.obj)
    a_slice = a[5:9]
    del a
    c = memoryview(pool.take(50_000))  # the first is still held through `a_slice`
    assert id(c.obj) != first and pool.buffers == 2  # full: c is not pooled
    del a_slice, c
    d = memoryview(pool.take(50_000))
    assert id(d.obj) == first  # idle again
    assert id(memoryview(pool.take(50_000)).obj) != id(b.obj)  # b is still held


def test_the_pool_keeps_only_small_enough_buffers_and_replaces_idle_small_ones() -> None:
    pool = BufferPool(max_buffers=1, max_buffer_bytes=256 * 1024)
    big = pool.take(300_000)
    assert len(big) == 300_000 and pool.buffers == 0  # too large to keep
    small = memoryview(pool.take(70_000))
    assert len(small.obj) == 128 * 1024 and pool.buffers == 1
    del small
    larger = memoryview(pool.take(200_000))  # the idle small one is replaced
    assert len(larger.obj) == 256 * 1024 and pool.buffers == 1
    del larger
    assert len(pool.take(10)) == 256 * 1024


def test_new_bytearray_has_the_size_asked_for() -> None:
    assert len(new_bytearray(0)) == 0
    buf = new_bytearray(1 << 20)
    assert isinstance(buf, bytearray) and len(buf) == 1 << 20
    with pytest.raises(ValueError):
        new_bytearray(-1)


async def test_a_peer_closing_inside_a_large_frame_is_a_framing_error() -> None:
    stream, peer = _pair()
    reader = FrameReader(stream, 1 << 20)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_in_pieces, peer, _frame(os.urandom(500_000))[:300_000], 4)
        with pytest.raises(FramingError, match="inside a frame"):
            await reader.read_frame()
    await stream.aclose()


async def test_reading_a_closed_stream_never_touches_its_old_descriptor() -> None:
    stream, peer = _pair()
    reader = FrameReader(stream, 1 << 20)
    await stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await reader.read_frame()
    peer.close()


async def test_closing_the_stream_wakes_a_blocked_read() -> None:
    stream, peer = _pair()
    reader = FrameReader(stream, 1 << 20)

    async def close_soon() -> None:
        await trio.sleep(0.01)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(close_soon)
        with pytest.raises(trio.ClosedResourceError):
            await reader.read_frame()
    peer.close()


async def test_a_reader_that_never_waits_still_lets_others_run() -> None:
    """Frames already buffered are handed out with a checkpoint each, so a client that
    keeps its socket full cannot starve the other connections (or dodge cancellation)."""
    stream, peer = _pair()
    peer.sendall(b"".join(_frame(b"x") for _ in range(50)))
    reader = FrameReader(stream, 1 << 20)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        for _ in range(50):
            assert await reader.read_frame() == b"x"
        nursery.cancel_scope.cancel()
    assert ticks >= 40
    await stream.aclose()
    peer.close()


async def test_a_response_larger_than_the_socket_buffer_is_written_whole_when_cancelled(
        tmp_path) -> None:
    payload = os.urandom(2 << 20)
    path = tmp_path / "segment.log"
    path.write_bytes(payload)
    fd = os.open(path, os.O_RDONLY)
    stream, peer = _pair()
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    head = [os.urandom(300_000), b"mid", os.urandom(100)]
    expected = b"".join(head) + payload + b"tail"
    received = bytearray()
    sent = False
    try:
        async with trio.open_nursery() as nursery:
            async def write() -> None:
                nonlocal sent
                with trio.CancelScope() as scope:
                    scope.cancel()  # already cancelled: the write must still finish whole
                    await send_chunks(stream, [*head, Slice(fd, 0, len(payload)), b"tail"])
                    sent = True
            nursery.start_soon(write)
            speer = trio.socket.from_stdlib_socket(peer)
            while len(received) < len(expected):
                await trio.sleep(0.001)
                received += await speer.recv(50_000)
        assert bytes(received) == expected
        assert sent  # no checkpoint raised Cancelled after the write
    finally:
        os.close(fd)
        await stream.aclose()
        peer.close()


async def test_a_peer_gone_during_sendfile_is_a_broken_connection(tmp_path) -> None:
    """EPIPE/ECONNRESET from `sendfile` or `writev` are connection errors: they end that
    connection only (an unhandled OSError here used to end the whole broker)."""
    path = tmp_path / "segment.log"
    path.write_bytes(os.urandom(4 << 20))
    fd = os.open(path, os.O_RDONLY)
    stream, peer = _pair()
    peer.close()
    try:
        with pytest.raises(trio.BrokenResourceError):
            await send_chunks(stream, [Slice(fd, 0, 4 << 20)])
        with pytest.raises(trio.BrokenResourceError):
            await send_chunks(stream, [b"x" * 100])
    finally:
        os.close(fd)
        await stream.aclose()

