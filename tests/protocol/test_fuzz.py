"""Untrusted bytes through the frame decoders raise `ProtocolError` and nothing else.

Inputs: random bytes, random bytes behind a valid (api_key, version) prefix so decoding gets
past the header, and valid frames (from the generic round-trip strategies) mutated by
truncation, bit flips, and length/count fields overwritten with extreme values.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.frames import decode_request, decode_response, encode_request, join_chunks
from protocol.messages import REQUESTS, RESPONSES
from tests.protocol.test_roundtrip import struct_strategy

API_VERSIONS = sorted((k, v) for k, c in REQUESTS.items()
                      for v in range(c.MIN_VERSION, c.MAX_VERSION + 1))
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 0xFFFFFFFE]


def _decode_all(frame: bytes, key: int, version: int) -> None:
    for fn in (lambda: decode_request(frame), lambda: decode_response(frame, key, version)):
        try:
            fn()
        except ProtocolError:
            pass


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 or not b:
        return bytes(b[: rng.randrange(len(b) + 1)])
    if kind == 1:
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 2:
        # overwrite a would-be length/count field with an extreme value
        width = rng.choice((1, 2, 4))
        i = rng.randrange(len(b))
        val = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
        b[i : i + width] = val.to_bytes(width, "big")
        return bytes(b)
    i = rng.randrange(len(b) + 1)
    return bytes(b[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8))) + b[i:])


def fuzz_budget(n_random: int, n_frames: int, mutations: int) -> Any:
    @settings(max_examples=n_random, deadline=None, database=None)
    @given(data=st.binary(max_size=200), kv=st.sampled_from(API_VERSIONS),
           corr=st.integers(-(2**31), 2**31 - 1))
    def random_bytes(data: bytes, kv: tuple[int, int], corr: int) -> None:
        key, version = kv
        _decode_all(data, key, version)
        _decode_all(struct.pack(">hhi", key, version, corr) + data, key, version)

    @settings(max_examples=n_frames, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(d=st.data(), kv=st.sampled_from(API_VERSIONS), seed=st.integers(0, 2**32))
    def mutated_frames(d: st.DataObject, kv: tuple[int, int], seed: int) -> None:
        key, version = kv
        body = d.draw(struct_strategy(REQUESTS[key], version))
        frame = join_chunks(encode_request(key, version, 1, "fuzz", body))[4:]
        assert decode_request(frame).body == body
        rng = random.Random(seed)
        for _ in range(mutations):
            _decode_all(mutate(frame, rng), key, version)

    @settings(max_examples=n_frames, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(d=st.data(), key=st.sampled_from(sorted(RESPONSES)), seed=st.integers(0, 2**32))
    def mutated_responses(d: st.DataObject, key: int, seed: int) -> None:
        cls = RESPONSES[key]
        version = d.draw(st.integers(cls.MIN_VERSION, cls.MAX_VERSION))
        body = d.draw(struct_strategy(cls, version))
        frame = struct.pack(">i", 1) + join_chunks(body.encode(version))
        fmin = cls.FLEXIBLE_MIN_VERSION
        if fmin is not None and version >= fmin and key != 18:
            frame = frame[:4] + b"\x00" + frame[4:]
        assert decode_response(frame, key, version) == (1, body)
        rng = random.Random(seed)
        for _ in range(mutations):
            try:
                decode_response(mutate(frame, rng), key, version)
            except ProtocolError:
                pass

    return random_bytes, mutated_frames, mutated_responses


def test_fuzz_small_budget() -> None:
    for t in fuzz_budget(n_random=300, n_frames=150, mutations=10):
        t()


def test_every_prefix_of_every_default_request_is_rejected_cleanly() -> None:
    for key, version in API_VERSIONS:
        frame = join_chunks(encode_request(key, version, 9, "c", REQUESTS[key]()))[4:]
        for cut in range(len(frame)):
            with pytest.raises(ProtocolError):
                decode_request(frame[:cut])


@pytest.mark.slow
def test_fuzz_large_budget() -> None:
    for t in fuzz_budget(n_random=20000, n_frames=5000, mutations=50):
        t()
