"""Compression codecs of Kafka record batches (magic v2).

How this works: the records section of a compressed batch (everything after `recordsCount`)
is one compressed stream. `compress` and `decompress` turn that stream into the plain
concatenation of records and back. Codec ids are the low three bits of the batch
attributes (`protocol.records.Compression`).

What each codec accepts on input, because real clients disagree on framing:

* gzip: RFC 1952, one or more concatenated members (as `GZIPInputStream` reads them).
* snappy: three framings, recognised by their first bytes:
  - xerial / snappy-java blocks, ``\\x82SNAPPY\\x00`` + int32 version + int32 compat, then
    ``[int32 length][raw snappy block]...`` (the Java client, kafka-python, franz-go);
  - the official snappy framing format, starting ``\\xff\\x06\\x00\\x00sNaPpY``;
  - one raw snappy block (librdkafka, sarama).
* lz4: the LZ4 frame format (magic ``04 22 4D 18``), one or more concatenated frames.
  Magic v2 never uses the broken header checksum of Kafka 0.8/0.9's v0 batches.
* zstd: one or more zstd frames, with or without the content size in the frame header;
  decoded by streaming, so a missing content size is no problem.

What `compress` writes: gzip one member; snappy in xerial framing with 32 KiB blocks (what
snappy-java's `SnappyOutputStream` writes for the Java client); lz4 one frame of independent
64 KiB blocks (the block size Kafka's `Lz4BlockOutputStream` uses); zstd one frame.

`decompress_view` is `decompress` for a caller that only reads the records once (the
produce path's validation): the result is a view of a buffer that belongs to the thread and
is reused by its next call, so a 1-MB batch costs no allocation and no fresh pages. zstd is
decoded with one `readinto` of the library's reader straight into that buffer; lz4 by the C
decoder of `protocol._speedups` (`fastscan.lz4_frames_into`), which handles the frames real
clients write and leaves anything else (checksums, dictionaries, skippable frames, any
damage) to the lz4 library; the other codecs decompress as `decompress` does. Results and
errors are those of `decompress`.

Every decoding failure raises `DecompressionError` (a `ProtocolError`); an unknown codec id
raises plain `ProtocolError`. `max_size` bounds the decompressed output: a stream that would
inflate beyond it raises `DecompressionLimitError` before the memory is spent
(a guard against decompression bombs), so callers can bound memory by what they accept.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable
from typing import cast

import lz4.frame
import snappy
import zstandard

from protocol import fastscan
from protocol.errors import ProtocolError

__all__ = [
    "compress",
    "decompress",
    "decompress_view",
    "DecompressionError",
    "DecompressionLimitError",
    "XERIAL_HEADER",
    "SNAPPY_FRAMING_HEADER",
]


class DecompressionError(ProtocolError):
    """A compressed records section that does not decompress."""


class DecompressionLimitError(DecompressionError):
    """Decompressed data would exceed the caller's `max_size`."""


# Codec ids, duplicated from protocol.records.Compression to avoid an import cycle.
_NONE, _GZIP, _SNAPPY, _LZ4, _ZSTD = 0, 1, 2, 3, 4

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
SNAPPY_FRAMING_HEADER = b"\xff\x06\x00\x00sNaPpY"
_XERIAL_BLOCK = 32 * 1024
_CHUNK = 64 * 1024
_INT32 = struct.Struct(">i")
_ZSTD_DCTX = zstandard.ZstdDecompressor()
_ZSTD_CCTX = zstandard.ZstdCompressor(level=3)


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress the records section `data` with `codec` (a `Compression` or its id)."""
    codec = int(codec)
    if codec == _NONE:
        return bytes(data)
    if codec == _GZIP:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if codec == _SNAPPY:
        view = memoryview(data)
        out = [XERIAL_HEADER]
        for i in range(0, len(view), _XERIAL_BLOCK):
            block = snappy.compress(bytes(view[i : i + _XERIAL_BLOCK]))
            out.append(_INT32.pack(len(block)))
            out.append(block)
        return b"".join(out)
    if codec == _LZ4:
        return lz4.frame.compress(
            bytes(data),
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
    if codec == _ZSTD:
        return _ZSTD_CCTX.compress(data)
    raise ValueError(f"unknown compression codec id {codec}")


def decompress(
    codec: int, data: bytes | bytearray | memoryview, max_size: int | None = None
) -> bytes:
    """Decompress a records section; `ProtocolError` on corrupt input or beyond `max_size`.

    `codec` is a `Compression` or its id; an id outside 0..4 raises `ProtocolError`.
    """
    codec = int(codec)
    limit = max_size if max_size is not None else -1
    out = cast(bytes, _decoding(codec, _DECODERS.get(codec), data, limit))
    if limit >= 0 and len(out) > limit:
        raise _too_big(limit)
    return out


def decompress_view(
    codec: int, data: bytes | bytearray | memoryview, max_size: int | None = None
) -> memoryview:
    """`decompress`, into the thread's reusable buffer: the view is valid until the next
    `decompress_view` call on this thread (drop it before then). Same results, same errors.
    """
    codec = int(codec)
    limit = max_size if max_size is not None else -1
    decoder = _VIEW_DECODERS.get(codec)
    if decoder is None:
        out: bytes | memoryview = decompress(codec, data, max_size)
        return memoryview(out)
    view = memoryview(_decoding(codec, decoder, data, limit))
    if limit >= 0 and len(view) > limit:
        raise _too_big(limit)
    return view


def _decoding(codec: int, decoder: Callable[..., bytes | memoryview] | None,
              data: bytes | bytearray | memoryview, limit: int) -> bytes | memoryview:
    """Run `decoder`, turning every failure into the errors `decompress` documents."""
    try:
        if codec == _NONE:
            return bytes(data)
        if decoder is None:
            raise ProtocolError(f"Unknown compression type id: {codec}")
        return decoder(data, limit)
    except DecompressionError:
        raise
    except ProtocolError as e:
        if codec not in (_GZIP, _SNAPPY, _LZ4, _ZSTD):
            raise
        raise DecompressionError(f"Failed to decompress record stream: {e}") from e
    except Exception as e:  # every codec library has its own exception types
        raise DecompressionError(
            f"Failed to decompress record stream: {type(e).__name__}: {e}"
        ) from e


def _too_big(limit: int) -> DecompressionLimitError:
    return DecompressionLimitError(f"decompressed size exceeds the limit of {limit} bytes")


def _gunzip(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    out = bytearray()
    rest = bytes(data)
    if not rest:
        raise ProtocolError("empty gzip stream")
    while rest:
        d = zlib.decompressobj(31)
        chunk = rest
        while True:
            room = limit - len(out) + 1 if limit >= 0 else 0
            out += d.decompress(chunk, room)
            if limit >= 0 and len(out) > limit:
                raise _too_big(limit)
            chunk = d.unconsumed_tail
            if not chunk:
                break
        if not d.eof:
            raise ProtocolError("truncated gzip stream")
        rest = d.unused_data
    return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise ProtocolError("bad snappy length preamble")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _raw_snappy(block: bytes, limit: int) -> bytes:
    if limit >= 0:
        size, _ = _read_uvarint(block, 0)
        if size > limit:
            raise _too_big(limit)
    return snappy.uncompress(block)


def _unsnappy(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    raw = bytes(data)
    if raw.startswith(XERIAL_MAGIC):
        if len(raw) < 16:
            raise ProtocolError("truncated xerial snappy header")
        out = bytearray()
        pos, end = 16, len(raw)
        while pos < end:
            if pos + 4 > end:
                raise ProtocolError("truncated xerial snappy block length")
            (n,) = _INT32.unpack_from(raw, pos)
            pos += 4
            if n < 0 or pos + n > end:
                raise ProtocolError(f"bad xerial snappy block length {n}")
            room = limit - len(out) if limit >= 0 else -1
            out += _raw_snappy(raw[pos : pos + n], room)
            pos += n
        return bytes(out)
    if raw.startswith(SNAPPY_FRAMING_HEADER):
        d = snappy.StreamDecompressor()
        out = bytearray()
        for i in range(0, len(raw), _CHUNK):
            out += d.decompress(raw[i : i + _CHUNK])
            if limit >= 0 and len(out) > limit:
                raise _too_big(limit)
        d.flush()  # raises if the stream ends mid-chunk
        return bytes(out)
    return _raw_snappy(raw, limit)


def _unlz4(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    rest = bytes(data)
    if not rest:
        raise ProtocolError("empty lz4 stream")
    out = bytearray()
    while rest:
        d = lz4.frame.LZ4FrameDecompressor()
        chunk = rest
        while True:
            room = limit - len(out) + 1 if limit >= 0 else -1
            out += d.decompress(chunk, room)
            if limit >= 0 and len(out) > limit:
                raise _too_big(limit)
            if d.eof:
                break
            if not d.needs_input:
                chunk = b""  # more output is buffered inside the decompressor
                continue
            raise ProtocolError("truncated lz4 frame")
        rest = d.unused_data
    return bytes(out)


def _unzstd(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    raw = bytes(data)
    if not raw:
        raise ProtocolError("empty zstd stream")
    out = bytearray()
    with _ZSTD_DCTX.stream_reader(raw, read_across_frames=True, read_size=_CHUNK) as reader:
        while True:
            chunk = reader.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if limit >= 0 and len(out) > limit:
                raise _too_big(limit)
    # stream_reader stops quietly at a truncated frame, so check the frame structure too.
    _zstd_check_frames(raw)
    return bytes(out)


class _Scratch(threading.local):
    """The thread's buffer for `decompress_view`. It grows (by doubling) to the largest
    batch seen, up to `_KEEP_SCRATCH`; a larger one is used once and dropped. A new buffer
    is allocated rather than the old one resized, so a view still held elsewhere keeps the
    old one valid."""

    def __init__(self) -> None:
        self.buf = fastscan.new_bytearray(_FIRST_SCRATCH)

    def grown(self, have: int, needed: int) -> bytearray:
        """A buffer of at least `needed` bytes holding the first `have` bytes of this one."""
        size = len(self.buf)
        while size < needed:
            size *= 2
        new = fastscan.new_bytearray(size)
        new[:have] = memoryview(self.buf)[:have]
        if size <= _KEEP_SCRATCH:
            self.buf = new
        return new


_FIRST_SCRATCH = 1 << 20
_KEEP_SCRATCH = 16 << 20
_scratch = _Scratch()


def _unzstd_view(data: bytes | bytearray | memoryview, limit: int) -> memoryview:
    """Every frame of `data` decoded by one reader straight into the scratch buffer (one
    `readinto` when the buffer is large enough, a last one that returns 0)."""
    if not len(data):
        raise ProtocolError("empty zstd stream")
    buf = _scratch.buf
    reader = _ZSTD_DCTX.stream_reader(data, read_size=len(data), read_across_frames=True)
    n = 0
    while True:
        if n == len(buf):
            buf = _scratch.grown(n, n + 1)
        got = reader.readinto(memoryview(buf)[n:])
        if not got:
            break
        n += got
        if limit >= 0 and n > limit:
            raise _too_big(limit)
    # stream_reader stops quietly at a truncated frame, so check the frame structure too.
    _zstd_check_frames(data)
    return memoryview(buf)[:n]


def _unlz4_view(data: bytes | bytearray | memoryview, limit: int) -> bytes | memoryview:
    """The C decoder into the scratch buffer (again into a larger one when it does not
    fit); whatever it leaves alone, and a limit it would cross, goes to the library."""
    buf = _scratch.buf
    while True:
        n = fastscan.lz4_frames_into(data, buf)
        if n is None:
            return _unlz4(data, limit)
        if n >= 0:
            return memoryview(buf)[:n]
        if limit >= 0 and len(buf) > limit:
            return _unlz4(data, limit)  # beyond the limit: the library's exact answer
        buf = _scratch.grown(0, 2 * len(buf))


_ZSTD_MAGIC = 0xFD2FB528


def _zstd_check_frames(raw: bytes | bytearray | memoryview) -> None:
    """Raise `ProtocolError` unless `raw` is a whole number of complete zstd frames.

    Walks frame and block headers only (RFC 8878 section 3.1), no decompression.
    """
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise ProtocolError("truncated zstd frame")
        magic = int.from_bytes(raw[pos : pos + 4], "little")
        if magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame
            if pos + 8 > end:
                raise ProtocolError("truncated zstd skippable frame")
            pos += 8 + int.from_bytes(raw[pos + 4 : pos + 8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            raise ProtocolError("not a zstd frame")
        try:
            header = zstandard.frame_header_size(raw[pos : pos + 18])
        except zstandard.ZstdError as e:
            raise ProtocolError(f"bad zstd frame header: {e}") from e
        has_checksum = raw[pos + 4] & 0x04
        p = pos + header
        while True:
            if p + 3 > end:
                raise ProtocolError("truncated zstd frame")
            h = int.from_bytes(raw[p : p + 3], "little")
            block_type = (h >> 1) & 3
            if block_type == 3:
                raise ProtocolError("reserved zstd block type")
            p += 3 + (1 if block_type == 1 else h >> 3)
            if h & 1:
                break
        if has_checksum:
            p += 4
        if p > end:
            raise ProtocolError("truncated zstd frame")
        pos = p


_DECODERS: dict[int, Callable[[bytes | bytearray | memoryview, int], bytes]] = {
    _GZIP: _gunzip, _SNAPPY: _unsnappy, _LZ4: _unlz4, _ZSTD: _unzstd,
}
_VIEW_DECODERS: dict[int, Callable[[bytes | bytearray | memoryview, int], bytes | memoryview]] = {
    _LZ4: _unlz4_view, _ZSTD: _unzstd_view,
}
