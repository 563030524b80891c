"""The C records scanner agrees with the pure-Python one, and validation gives the same
answers with and without it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import fastscan, validation
from protocol.errors import ProtocolError
from protocol.records import (
    Compression,
    Header,
    Record,
    build_batch,
    read_batch_header,
    records_section,
)

pytestmark = pytest.mark.skipif(not fastscan.AVAILABLE,
                                reason="the C extension protocol._speedups was not built")

NOW = 1_700_000_000_000

records_strategy = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=20)),
        st.one_of(st.none(), st.binary(max_size=40)),
        st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))),
                 max_size=3),
        st.integers(-5, 10**13),
    ),
    min_size=1, max_size=20,
)


def _batch(records: list, codec: Compression = Compression.NONE) -> bytes:
    return build_batch(
        [Record(offset=i, timestamp=ts, key=k, value=v, headers=[Header(hk, hv) for hk, hv in h])
         for i, (k, v, h, ts) in enumerate(records)],
        compression=codec)


def _python_summary(data: bytes, count: int, base: int) -> tuple[int, int, bool, bool]:
    from protocol.records import _scan
    scanned = _scan(data, count)
    stamps = [base + d for _, d, _ in scanned]
    non_null = [t for t in stamps if t != -1]
    return (min(non_null) if non_null else 2**63 - 1, max(stamps) if stamps else -(2**63),
            all(o == i for i, (o, _, _) in enumerate(scanned)),
            any(k for _, _, k in scanned))


@settings(max_examples=150, deadline=None)
@given(records=records_strategy)
def test_well_formed_records_are_summarised_like_python(records) -> None:
    batch = _batch(records)
    header = read_batch_header(batch)
    data = records_section(batch, 0, header)
    summary = fastscan.scan_summary(data, header.records_count, header.base_timestamp)
    assert summary is not None
    assert summary == _python_summary(data, header.records_count, header.base_timestamp)


@settings(max_examples=300, deadline=None)
@given(records=records_strategy, flips=st.lists(st.tuples(st.integers(0, 10**6),
                                                          st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 10**6), count_delta=st.integers(-2, 2))
def test_mangled_records_never_get_a_summary_python_would_refuse(records, flips, cut,
                                                                 count_delta) -> None:
    batch = _batch(records)
    header = read_batch_header(batch)
    data = bytearray(records_section(batch, 0, header))
    for where, value in flips:
        if data:
            data[where % len(data)] = value
    if data and cut % 3 == 0:
        del data[cut % len(data):]
    count = header.records_count + count_delta
    summary = fastscan.scan_summary(bytes(data), count, header.base_timestamp)
    if summary is None:
        return  # the caller asks Python, which decides
    # Whatever C accepted, Python accepts too, with the same summary.
    assert summary == _python_summary(bytes(data), count, header.base_timestamp)


def _validate(batch: bytes, **kwargs) -> object:
    return validation.validate_produce_records(batch, now=NOW, **kwargs)


@settings(max_examples=100, deadline=None)
@given(records=records_strategy,
       codec=st.sampled_from(list(Compression)),
       compacted=st.booleans(),
       after=st.sampled_from([validation.LONG_MAX, 3_600_000, 0]),
       before=st.sampled_from([validation.LONG_MAX, 10**12, 0]))
def test_validation_is_the_same_with_and_without_the_c_scanner(
        monkeypatch_module, records, codec, compacted, after, before) -> None:
    batch = _batch(records, codec)
    kwargs = dict(compacted=compacted, timestamp_after_max_ms=after,
                  timestamp_before_max_ms=before)
    fast = _validate(batch, **kwargs)
    monkeypatch_module.setattr(fastscan, "AVAILABLE", False)
    try:
        slow = _validate(batch, **kwargs)
    finally:
        monkeypatch_module.setattr(fastscan, "AVAILABLE", True)
    assert fast == slow


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_trailing_bytes_go_to_the_python_scanner_which_refuses_them() -> None:
    from protocol.records import _scan
    batch = _batch([(b"k", b"v", [], NOW)])
    header = read_batch_header(batch)
    data = records_section(batch, 0, header) + b"\x00"
    assert fastscan.scan_summary(data, 1, header.base_timestamp) is None
    with pytest.raises(ProtocolError):
        _scan(data, 1)
