"""Record batches captured from real clients decode to exactly the records they sent.

``tests/golden/batches/<client>-<codec>.bin`` is the records field of one Produce request as the
client wrote it (``tests/golden/capture.py``); the ``.json`` beside it lists what was sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

records = pytest.importorskip("protocol.records")

BATCHES = Path(__file__).resolve().parents[1] / "golden" / "batches"
CASES = sorted(p.stem for p in BATCHES.glob("*.json"))


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def test_captures_cover_four_clients_and_five_codecs() -> None:
    clients = {c.rsplit("-", 1)[0] for c in CASES}
    codecs = {c.rsplit("-", 1)[1] for c in CASES}
    assert len(clients) >= 3, clients
    assert codecs == {"none", "gzip", "snappy", "lz4", "zstd"}


@pytest.mark.parametrize("case", CASES)
def test_batch_decodes_to_sent_records(case: str) -> None:
    buf = (BATCHES / f"{case}.bin").read_bytes()
    expected: dict[str, Any] = json.loads((BATCHES / f"{case}.json").read_text())

    batches = list(records.iter_batches(buf))
    assert len(batches) == expected["batches"]
    end = batches[-1][0] + batches[-1][1].size
    assert end == len(buf), "bytes left after the last batch"

    decoded = []
    for pos, header in batches:
        assert header.magic == 2
        assert records.batch_crc_ok(buf, pos, header)
        assert int(header.compression) == expected["compression"]
        assert not header.is_control and not header.is_transactional
        batch_records = list(records.iter_records(buf, pos, header))
        assert len(batch_records) == header.records_count
        decoded += batch_records

    want = expected["records"]
    assert len(decoded) == len(want)
    for i, (got, sent) in enumerate(zip(decoded, want, strict=True)):
        assert got.offset == i  # producers number records from base offset 0
        assert got.key == _bytes(sent["key"]), i
        assert got.value == _bytes(sent["value"]), i
        assert [(h.key, h.value) for h in got.headers] == [
            (k, _bytes(v)) for k, v in sent["headers"]
        ], i
        assert got.timestamp == sent["timestamp"], i


@pytest.mark.parametrize("case", CASES)
def test_batch_is_readable_from_memoryview_and_offset(case: str) -> None:
    """The same bytes at a non-zero position in a bigger buffer decode the same."""
    raw = (BATCHES / f"{case}.bin").read_bytes()
    buf = memoryview(b"\x00" * 7 + raw)
    direct = [(h, list(records.iter_records(raw, p, h))) for p, h in records.iter_batches(raw)]
    shifted = [
        (h, list(records.iter_records(buf, p, h))) for p, h in records.iter_batches(buf, 7)
    ]
    assert shifted == direct
