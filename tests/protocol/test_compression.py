"""Codec tests: round trips, every framing real clients produce, corrupt input, bombs."""

from __future__ import annotations

import gzip
import io
import os
import struct

import kafka.codec
import lz4.frame
import pytest
import snappy
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.compression import (
    SNAPPY_FRAMING_HEADER,
    XERIAL_HEADER,
    DecompressionError,
    DecompressionLimitError,
    compress,
    decompress,
)
from protocol.errors import ProtocolError
from protocol.records import Compression

CODECS = list(Compression)
COMPRESSED = [c for c in Compression if c != Compression.NONE]
# Compressible, multi-block for snappy (32 KiB blocks) and lz4 (64 KiB blocks).
PAYLOAD = os.urandom(3000) + b"kafka record " * 20000 + os.urandom(500)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_round_trip(codec: Compression) -> None:
    packed = compress(codec, PAYLOAD)
    if codec != Compression.NONE:
        assert len(packed) < len(PAYLOAD)
    assert decompress(codec, packed) == PAYLOAD
    assert decompress(codec, memoryview(packed)) == PAYLOAD


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_round_trip_empty(codec: Compression) -> None:
    assert decompress(codec, compress(codec, b"")) == b""


@settings(max_examples=60, deadline=None)
@given(codec=st.sampled_from(CODECS), data=st.binary(max_size=5000))
def test_round_trip_property(codec: Compression, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data


def test_snappy_writes_xerial_framing_like_the_java_client() -> None:
    packed = compress(Compression.SNAPPY, PAYLOAD)
    assert packed.startswith(XERIAL_HEADER)
    assert struct.unpack(">ii", packed[8:16]) == (1, 1)
    # kafka-python's xerial reader (an independent implementation) reads it.
    assert kafka.codec.snappy_decode(packed) == PAYLOAD


def test_snappy_raw_block_as_librdkafka_writes_it() -> None:
    raw = snappy.compress(PAYLOAD)
    assert not raw.startswith(b"\x82SNAPPY")
    assert decompress(Compression.SNAPPY, raw) == PAYLOAD


def test_snappy_xerial_as_kafka_python_writes_it() -> None:
    packed = kafka.codec.snappy_encode(PAYLOAD, xerial_compatible=True)
    assert packed.startswith(b"\x82SNAPPY\x00")
    assert decompress(Compression.SNAPPY, packed) == PAYLOAD


def test_snappy_xerial_little_endian_version_fields_still_read() -> None:
    # Some producers (redpanda, per kafka-python #2414) write version/compat little-endian.
    packed = bytearray(compress(Compression.SNAPPY, PAYLOAD))
    packed[8:16] = struct.pack("<ii", 1, 1)
    assert decompress(Compression.SNAPPY, bytes(packed)) == PAYLOAD


def test_snappy_official_framing_format() -> None:
    framed = snappy.StreamCompressor().compress(PAYLOAD)
    assert framed.startswith(SNAPPY_FRAMING_HEADER)
    assert decompress(Compression.SNAPPY, framed) == PAYLOAD


def test_lz4_frame_uses_64k_blocks_and_kafka_python_reads_it() -> None:
    packed = compress(Compression.LZ4, PAYLOAD)
    info = lz4.frame.get_frame_info(packed)
    assert info["block_size"] == 64 * 1024
    assert kafka.codec.lz4_decode(packed) == PAYLOAD


def test_lz4_concatenated_frames() -> None:
    packed = lz4.frame.compress(b"one ") + lz4.frame.compress(b"two")
    assert decompress(Compression.LZ4, packed) == b"one two"


def test_gzip_multi_member() -> None:
    packed = gzip.compress(b"first ") + gzip.compress(b"second")
    assert decompress(Compression.GZIP, packed) == b"first second"


def test_zstd_frame_without_content_size() -> None:
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as writer:
        writer.write(PAYLOAD)
    frame = out.getvalue()
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decompress(Compression.ZSTD, frame) == PAYLOAD


def test_zstd_concatenated_frames_and_checksums() -> None:
    cctx = zstandard.ZstdCompressor(write_checksum=True)
    assert decompress(Compression.ZSTD, cctx.compress(b"ab") + cctx.compress(b"cd")) == b"abcd"


def _corruptions(packed: bytes) -> list[bytes]:
    flipped = bytearray(packed)
    flipped[len(flipped) // 2] ^= 0xFF
    return [
        packed[: len(packed) // 2],
        packed[:-1],
        packed[:3],
        b"\x00" * 40,
        b"\xff" * 40,
        b"",
        bytes(flipped),
    ]


@pytest.mark.parametrize("codec", COMPRESSED, ids=lambda c: c.name)
def test_corrupt_input_raises_protocol_error(codec: Compression) -> None:
    packed = compress(codec, PAYLOAD)
    rejected = 0
    for bad in _corruptions(packed):
        try:
            out = decompress(codec, bad)
        except ProtocolError:
            rejected += 1
        else:
            # A flipped byte inside literal data can decode to different bytes; never
            # silently to the original.
            assert out != PAYLOAD
    # Truncations and garbage must all be rejected.
    assert rejected >= 6


@settings(max_examples=200, deadline=None)
@given(codec=st.sampled_from(COMPRESSED), data=st.binary(max_size=300))
def test_garbage_raises_only_protocol_error(codec: Compression, data: bytes) -> None:
    try:
        decompress(codec, data)
    except ProtocolError:
        pass


@pytest.mark.parametrize("codec", COMPRESSED, ids=lambda c: c.name)
def test_max_size_guards_against_bombs(codec: Compression) -> None:
    bomb = compress(codec, b"\x00" * 4_000_000)
    assert len(bomb) < 200_000
    with pytest.raises(DecompressionLimitError):
        decompress(codec, bomb, max_size=100_000)
    assert decompress(codec, bomb, max_size=4_000_000) == b"\x00" * 4_000_000


def test_decompression_errors_are_protocol_errors() -> None:
    assert issubclass(DecompressionError, ProtocolError)
    with pytest.raises(DecompressionError):
        decompress(Compression.GZIP, b"not gzip at all")


def test_unknown_codec_id() -> None:
    with pytest.raises(ProtocolError):
        decompress(5, b"x")
    with pytest.raises(ValueError):
        compress(7, b"x")
