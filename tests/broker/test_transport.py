import os
import socket

import pytest
import trio
import trio.testing

from broker.transport import FrameReader, FramingError, send_chunks


class Slice:
    """A file slice as storage hands them out: fileno(), position, len()."""

    def __init__(self, fd: int, position: int, length: int) -> None:
        self._fd, self.position, self._length = fd, position, length

    def fileno(self) -> int:
        return self._fd

    def __len__(self) -> int:
        return self._length


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


class PiecewiseStream(trio.abc.ReceiveStream):
    """Hands out `data` at most `piece` bytes per receive, as a slow network would."""

    def __init__(self, data: bytes, piece: int) -> None:
        self._data, self._piece, self._pos = data, piece, 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        n = self._piece if max_bytes is None else min(self._piece, max_bytes)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def _read_all(data: bytes, piece: int, max_bytes: int = 1 << 20) -> list[bytes]:
    reader = FrameReader(PiecewiseStream(data, piece), max_bytes)
    frames: list[bytes] = []
    while (frame := await reader.read_frame()) is not None:
        frames.append(frame)
    return frames


@pytest.mark.parametrize("piece", [1, 3, 7, 4096, 1 << 20])
async def test_frames_split_anywhere_come_out_whole(piece: int) -> None:
    bodies = [b"", b"a", b"hello" * 1000, bytes(range(256)) * 300]
    data = b"".join(_frame(b) for b in bodies)
    assert await _read_all(data, piece) == bodies


async def test_size_over_limit_is_refused_before_reading_the_frame() -> None:
    with pytest.raises(FramingError, match="socket.request.max.bytes"):
        await _read_all((1000).to_bytes(4, "big"), 4, max_bytes=999)


async def test_negative_size_is_refused() -> None:
    with pytest.raises(FramingError, match="negative"):
        await _read_all((-5).to_bytes(4, "big", signed=True) + b"xxxxx", 9)


async def test_truncated_frame_is_a_framing_error() -> None:
    with pytest.raises(FramingError, match="inside a frame"):
        await _read_all(_frame(b"0123456789")[:9], 2)
    with pytest.raises(FramingError, match="inside a size prefix"):
        await _read_all(b"\x00\x00", 1)


async def test_send_chunks_copies_file_slices_on_streams_without_a_socket(tmp_path) -> None:
    path = tmp_path / "segment.log"
    path.write_bytes(bytes(range(256)) * 64)
    fd = os.open(path, os.O_RDONLY)
    try:
        send, receive = trio.testing.memory_stream_one_way_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_chunks, send, [b"ab", b"cd", Slice(fd, 10, 5000), b"ef"])
            got = b""
            while len(got) < 5006:
                got += await receive.receive_some()
        assert got == b"abcd" + path.read_bytes()[10:5010] + b"ef"
    finally:
        os.close(fd)


async def test_send_chunks_uses_sendfile_on_sockets(tmp_path) -> None:
    payload = os.urandom(3 << 20)
    path = tmp_path / "segment.log"
    path.write_bytes(payload)
    fd = os.open(path, os.O_RDONLY)
    a, b = socket.socketpair()
    try:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        peer = trio.SocketStream(trio.socket.from_stdlib_socket(b))
        received = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_chunks, stream, [b"head", Slice(fd, 1, len(payload) - 1)])
            while len(received) < len(payload) + 3:
                received += await peer.receive_some(1 << 16)
        assert bytes(received) == b"head" + payload[1:]
    finally:
        os.close(fd)
        a.close()
        b.close()


async def test_a_slice_longer_than_its_file_breaks_the_connection(tmp_path) -> None:
    path = tmp_path / "short.log"
    path.write_bytes(b"x" * 10)
    fd = os.open(path, os.O_RDONLY)
    a, b = socket.socketpair()
    try:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        with pytest.raises(trio.BrokenResourceError):
            await send_chunks(stream, [Slice(fd, 0, 20)])
    finally:
        os.close(fd)
        a.close()
        b.close()
