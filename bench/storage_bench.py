"""Storage benchmarks: append throughput against raw baselines, index lookups, recovery.

    .venv/bin/python bench/storage_bench.py                 # 1 GiB per run
    .venv/bin/python bench/storage_bench.py --size 256M --lookup-batches 200000

For each batch size (16 KiB and 1 MiB by default) the same bytes are written three ways in
the same run: a raw copy into a preallocated mmap (what our append does at its core), raw
`os.write()` calls, and `PartitionLog.append` (validation, CRC check, offset assignment in
the map, indexes). Then: random-offset lookups over a log of `--lookup-batches` batches
(index binary search + forward header scan, and the whole `read()` path), compaction
throughput (one cleaning pass of a log of up to 256 MiB with 10,000 keys), and the speed of
an unclean-shutdown recovery scan (CRC of every batch, index rebuild). Page cache is warm;
nothing is fsync'd (Kafka does not fsync per append either).
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from protocol.records import build_batch  # noqa: E402
from storage.config import LogConfig  # noqa: E402
from storage.log import PartitionLog  # noqa: E402

MiB = 1024 * 1024


def parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = 1
    for suffix, m in (("K", 1024), ("M", MiB), ("G", 1024 * MiB)):
        if text.endswith(suffix):
            text, mult = text[:-1], m
            break
    return int(float(text) * mult)


def make_batch(size: int) -> bytes:
    """One uncompressed batch of exactly `size` bytes (a single record)."""
    value_len = size - 61 - 20
    for _ in range(8):
        b = build_batch([(b"key", b"x" * value_len, None, 1_700_000_000_000)])
        if len(b) == size:
            return b
        value_len += size - len(b)
    return b


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds


def bench_raw_mmap(dir: str, payload: bytes, count: int) -> float:
    path = os.path.join(dir, "raw.mmap")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    total = len(payload) * count
    os.ftruncate(fd, total)
    mm = mmap.mmap(fd, total)
    n = len(payload)
    t0 = time.perf_counter()
    pos = 0
    for _ in range(count):
        mm[pos : pos + n] = payload
        pos += n
    dt = time.perf_counter() - t0
    mm.close()
    os.close(fd)
    os.unlink(path)
    return dt


def bench_raw_write(dir: str, payload: bytes, count: int) -> float:
    path = os.path.join(dir, "raw.write")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    t0 = time.perf_counter()
    for _ in range(count):
        os.write(fd, payload)
    dt = time.perf_counter() - t0
    os.close(fd)
    os.unlink(path)
    return dt


def bench_append(
    dir: str, payload: bytes, count: int, config: LogConfig
) -> tuple[float, PartitionLog]:
    log = PartitionLog.open(os.path.join(dir, "bench-0"), config)
    append = log.append
    t0 = time.perf_counter()
    for _ in range(count):
        append(payload)
    dt = time.perf_counter() - t0
    return dt, log


def bench_lookups(dir: str, nbatches: int, batch_size: int, samples: int) -> dict[str, float]:
    config = LogConfig()
    payload = make_batch(batch_size)
    log = PartitionLog.open(os.path.join(dir, "lookup-0"), config)
    for _ in range(nbatches):
        log.append(payload)
    rng = random.Random(7)
    offsets = [rng.randrange(0, nbatches) for _ in range(samples)]
    seg = log.segments[-1]
    oi = seg.offset_index()
    out: dict[str, float] = {"entries": oi.entries}
    t0 = time.perf_counter()
    for o in offsets:
        oi.lookup(o)
    out["index_lookup_us"] = (time.perf_counter() - t0) / samples * 1e6
    t0 = time.perf_counter()
    for o in offsets:
        seg.translate_offset(o)
    out["translate_us"] = (time.perf_counter() - t0) / samples * 1e6
    t0 = time.perf_counter()
    for o in offsets:
        log.read(o, 1)
    out["read_us"] = (time.perf_counter() - t0) / samples * 1e6
    # again on the inactive path (trimmed file, headers through a read-only map)
    log.roll()
    t0 = time.perf_counter()
    for o in offsets:
        log.read(o, 1)
    out["read_inactive_us"] = (time.perf_counter() - t0) / samples * 1e6
    log.close(flush=False)
    return out


def bench_recovery(dir: str, payload: bytes, count: int) -> tuple[float, int]:
    d = os.path.join(dir, "recover-0")
    config = LogConfig()
    log = PartitionLog.open(d, config)
    for _ in range(count):
        log.append(payload)
    log.close(flush=False)
    size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if n.endswith(".log"))
    t0 = time.perf_counter()
    again = PartitionLog.open(d, config, had_clean_shutdown=False, recovery_point=0)
    dt = time.perf_counter() - t0
    assert again.log_end_offset == count, (again.log_end_offset, count)
    again.close(flush=False)
    return dt, size


def bench_compaction(
    dir: str, total: int, keys: int, records_per_batch: int, value_size: int, codec: int
) -> tuple[float, int, int, int]:
    """Append `total` bytes of keyed batches (`keys` distinct keys, round robin) to a
    compacted log, roll, and time one full cleaning pass: (seconds, bytes read,
    records read, records kept)."""
    from storage.cleaner import clean_log

    cfg = LogConfig(cleanup_policy=("compact",), file_delete_delay_ms=0, segment_bytes=64 * MiB)
    path = os.path.join(dir, "compact-0")
    log = PartitionLog.open(path, cfg)
    n = 0
    size = 0
    value = b"v" * value_size
    while size < total:
        recs = [
            (b"key-%d" % ((n + i) % keys), value, None, 1_700_000_000_000)
            for i in range(records_per_batch)
        ]
        n += records_per_batch
        b = build_batch(recs, compression=codec)
        log.append(b)
        size += len(b)
    log.roll()
    t0 = time.perf_counter()
    stats = clean_log(log, 1_700_000_000_000)
    dt = time.perf_counter() - t0
    assert stats is not None
    log.close(flush=False)
    shutil.rmtree(path)
    return dt, stats.bytes_read, stats.messages_read, stats.messages_written


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="1G", help="bytes appended per run (default 1G)")
    ap.add_argument("--batch-sizes", default="16K,1M")
    ap.add_argument("--lookup-batches", type=int, default=1_000_000)
    ap.add_argument("--lookup-batch-size", default="1K")
    ap.add_argument("--lookup-samples", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    total = parse_size(args.size)
    scratch = tempfile.mkdtemp(prefix="odradek-bench-", dir=args.dir)
    try:
        print(f"scratch dir {scratch}; {total / MiB:.0f} MiB per run, best of {args.repeat}")
        bench_raw_mmap(scratch, make_batch(MiB), max(1, total // MiB))  # warm the page cache
        print(
            f"{'batch':>8} {'raw mmap MB/s':>14} {'raw write MB/s':>15} {'append MB/s':>12} "
            f"{'vs mmap':>8} {'vs write':>9} {'appends/s':>10}"
        )
        for bs_text in args.batch_sizes.split(","):
            bs = parse_size(bs_text)
            payload = make_batch(bs)
            count = max(1, total // bs)
            nbytes = count * len(payload)
            t_mmap = t_write = t_app = float("inf")
            for _ in range(args.repeat):  # interleaved, best of N
                t_mmap = min(t_mmap, bench_raw_mmap(scratch, payload, count))
                t_write = min(t_write, bench_raw_write(scratch, payload, count))
                t, log = bench_append(scratch, payload, count, LogConfig())
                t_app = min(t_app, t)
                log.close(flush=False)
                shutil.rmtree(os.path.join(scratch, "bench-0"))
            print(
                f"{bs_text:>8} {mbps(nbytes, t_mmap):14.0f} {mbps(nbytes, t_write):15.0f} "
                f"{mbps(nbytes, t_app):12.0f} {t_mmap / t_app:8.0%} {t_write / t_app:9.0%} "
                f"{count / t_app:10.0f}"
            )

        lb = parse_size(args.lookup_batch_size)
        t0 = time.perf_counter()
        res = bench_lookups(scratch, args.lookup_batches, lb, args.lookup_samples)
        print(
            f"\nlookups over {args.lookup_batches} batches of {args.lookup_batch_size} "
            f"({res['entries']:.0f} offset-index entries; "
            f"built in {time.perf_counter() - t0:.1f}s):"
        )
        print(f"  OffsetIndex.lookup           {res['index_lookup_us']:6.2f} us")
        print(
            f"  Segment.translate_offset     {res['translate_us']:6.2f} us  (lookup + header scan)"
        )
        print(f"  PartitionLog.read, active    {res['read_us']:6.2f} us  (whole read path)")
        print(f"  PartitionLog.read, inactive  {res['read_inactive_us']:6.2f} us  (read-only map)")
        shutil.rmtree(os.path.join(scratch, "lookup-0"))

        print("\ncompaction (one pass over the whole log: offset map, filter, rewrite, swap):")
        for codec, name in ((0, "none"), (4, "zstd")):
            for rpb, vs in ((1, 100), (100, 100)):
                dt, nbytes, nread, nkept = bench_compaction(
                    scratch, min(total, 256 * MiB), 10_000, rpb, vs, codec
                )
                print(
                    f"  {name:>5}, {rpb:3d} x {vs}-byte records/batch: {mbps(nbytes, dt):6.1f} MB/s"
                    f"  {nread / dt:9.0f} records/s  ({nread} read, {nkept} kept)"
                )

        payload = make_batch(16 * 1024)
        dt, size = bench_recovery(scratch, payload, max(1, total // len(payload)))
        print(
            f"\nrecovery scan (16K batches, CRC + index rebuild): {mbps(size, dt):.0f} MB/s "
            f"({size / MiB:.0f} MiB in {dt:.2f}s)"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
