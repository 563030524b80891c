"""`decompress_view` (the produce path's decompression into a reusable buffer) gives what
`decompress` gives, and the C LZ4 decoder behind it is a strict subset of the lz4 library:
whatever it decodes, it decodes to the library's bytes, and whatever the library rejects,
it leaves to the library."""

from __future__ import annotations

import zlib
from typing import Any

import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import compression, fastscan
from protocol.compression import (
    DecompressionError,
    DecompressionLimitError,
    compress,
    decompress,
    decompress_view,
)
from protocol.records import Compression

C_LZ4 = pytest.mark.skipif(fastscan._c_lz4 is None,
                           reason="the C extension protocol._speedups was not built")
CODECS = [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]
RECORDS = b"".join(b"record %06d " % i + b"0123456789abcdef" * 60 for i in range(1000))

payloads = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda chunk, n: chunk * n, st.binary(min_size=1, max_size=40),
              st.integers(1, 5000)),
)
lz4_options = st.fixed_dictionaries({
    "block_size": st.sampled_from([lz4.frame.BLOCKSIZE_MAX64KB, lz4.frame.BLOCKSIZE_MAX256KB,
                                   lz4.frame.BLOCKSIZE_MAX1MB, lz4.frame.BLOCKSIZE_MAX4MB]),
    "block_linked": st.booleans(),
    "store_size": st.booleans(),
    "content_checksum": st.booleans(),
    "block_checksum": st.booleans(),
})


def _library(data: bytes) -> bytes | None:
    try:
        return decompress(Compression.LZ4, data)
    except DecompressionError:
        return None


def _c(data: bytes, capacity: int = 8 << 20) -> bytes | int | None:
    buf = bytearray(capacity)
    n = fastscan.lz4_frames_into(data, buf)
    return bytes(buf[:n]) if n is not None and n >= 0 else n


def _outcome(codec: int, data: bytes, fn: Any, **kw: Any) -> tuple[str, bytes | str]:
    try:
        return "ok", bytes(fn(codec, data, **kw))
    except DecompressionLimitError:
        return "limit", ""
    except DecompressionError:
        return "corrupt", ""


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_view_equals_decompress(codec: Compression) -> None:
    packed = compress(codec, RECORDS)
    view = decompress_view(codec, packed)
    assert isinstance(view, memoryview)
    assert bytes(view) == decompress(codec, packed) == RECORDS


@pytest.mark.parametrize("codec", [Compression.LZ4, Compression.ZSTD], ids=lambda c: c.name)
def test_view_reuses_the_threads_buffer(codec: Compression) -> None:
    """Two batches in a row land in the same buffer: no allocation per batch."""
    packed = compress(codec, RECORDS)
    first = decompress_view(codec, packed)
    owner = first.obj
    del first
    second = decompress_view(codec, compress(codec, RECORDS[::-1]))
    assert second.obj is owner
    assert bytes(second) == RECORDS[::-1]


@pytest.mark.parametrize("codec", [Compression.LZ4, Compression.ZSTD], ids=lambda c: c.name)
def test_view_grows_past_the_first_buffer(codec: Compression) -> None:
    big = RECORDS * 5  # 5 MB: more than the first 1-MiB buffer
    assert bytes(decompress_view(codec, compress(codec, big))) == big
    # A view held across the next call stays valid (the buffer is replaced, not resized).
    held = decompress_view(codec, compress(codec, RECORDS))
    copy = bytes(held)
    assert bytes(decompress_view(codec, compress(codec, big))) == big
    assert bytes(held) == copy


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_view_errors_equal_decompress(codec: Compression) -> None:
    packed = compress(codec, RECORDS)
    for bad in (b"", packed[: len(packed) // 2], b"garbage" + packed, packed[:-1]):
        assert _outcome(codec, bad, decompress_view) == _outcome(codec, bad, decompress)
    assert _outcome(codec, packed, decompress_view, max_size=1000) == ("limit", "")
    assert _outcome(codec, packed, decompress_view, max_size=len(RECORDS)) == ("ok", RECORDS)


def test_zstd_streamed_frames_without_content_size() -> None:
    """What the Java client and librdkafka write: no content size in the frame header."""
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    packed = cctx.compress(RECORDS) + cctx.compress(b"tail")
    assert zstandard.get_frame_parameters(packed).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert bytes(decompress_view(Compression.ZSTD, packed)) == RECORDS + b"tail"


@C_LZ4
def test_c_decoder_handles_the_frames_clients_write() -> None:
    """Kafka's own framing (our `compress`: independent 64-KiB blocks) and python-lz4's
    defaults (kafka-python, aiokafka) are decoded in C, not by the library."""
    for packed in (compress(Compression.LZ4, RECORDS), lz4.frame.compress(RECORDS),
                   lz4.frame.compress(RECORDS, store_size=True, block_linked=True),
                   lz4.frame.compress(b"x" * 100, store_size=False)):
        assert _c(packed) == _library(packed)
        assert isinstance(_c(packed), bytes)


@C_LZ4
def test_c_decoder_reports_a_full_buffer() -> None:
    packed = compress(Compression.LZ4, RECORDS)
    assert _c(packed, capacity=len(RECORDS) - 1) == -1
    assert _c(packed, capacity=len(RECORDS)) == RECORDS


@C_LZ4
def test_c_decoder_leaves_checksums_and_oddities_to_the_library() -> None:
    for packed in (lz4.frame.compress(RECORDS, content_checksum=True),
                   lz4.frame.compress(RECORDS, block_checksum=True),
                   b"", b"\x50\x2a\x4d\x18\x00\x00\x00\x00" + compress(Compression.LZ4, b"x")):
        assert _c(packed) is None
    header_damaged = bytearray(compress(Compression.LZ4, RECORDS))
    header_damaged[6] ^= 0xFF  # the header checksum byte
    assert _c(bytes(header_damaged)) is None
    assert _library(bytes(header_damaged)) is None


@C_LZ4
@settings(max_examples=150, deadline=None)
@given(data=payloads, options=lz4_options, extra=st.booleans())
def test_c_decoder_agrees_with_the_library(data: bytes, options: dict[str, Any],
                                           extra: bool) -> None:
    packed = lz4.frame.compress(data, **options)
    if extra:
        packed += lz4.frame.compress(b"second frame")
    got = _c(packed)
    assert got is None or got == _library(packed)
    if data and not options["content_checksum"] and not options["block_checksum"]:
        assert got == _library(packed)


@C_LZ4
@settings(max_examples=300, deadline=None)
@given(data=payloads, at=st.integers(0, 10**6), value=st.integers(0, 255),
       cut=st.integers(0, 20))
def test_c_decoder_never_accepts_what_the_library_rejects(data: bytes, at: int, value: int,
                                                          cut: int) -> None:
    damaged = bytearray(compress(Compression.LZ4, data))
    damaged[at % len(damaged)] = value
    if cut:
        del damaged[-cut:]
    got = _c(bytes(damaged))
    if got is not None and got != -1:
        assert got == _library(bytes(damaged))


@C_LZ4
@settings(max_examples=300, deadline=None)
@given(blocks=st.lists(st.binary(min_size=1, max_size=60), min_size=1, max_size=3),
       linked=st.booleans())
def test_c_decoder_on_arbitrary_block_bytes(blocks: list[bytes], linked: bool) -> None:
    """Random sequences inside a valid frame header: decoded as the library decodes them,
    or left to it."""
    header = lz4.frame.compress(b"", block_linked=linked, content_checksum=False)[:7]
    frame = header + b"".join(len(b).to_bytes(4, "little") + b for b in blocks) + bytes(4)
    got = _c(frame)
    if got is not None and got != -1:
        assert got == _library(frame)


def test_without_the_c_decoder_the_library_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastscan, "_c_lz4", None)
    packed = compress(Compression.LZ4, RECORDS)
    assert bytes(decompress_view(Compression.LZ4, packed)) == RECORDS
    assert compression.fastscan.lz4_frames_into(packed, bytearray(10)) is None


def test_gzip_view_is_plain_decompress() -> None:
    packed = zlib.compress(RECORDS, wbits=31)
    assert bytes(decompress_view(Compression.GZIP, packed)) == RECORDS
