"""Fingerprint speed, each figure beside a baseline measured in the same run.

    python -P benchmarks/fingerprint.py                      # 1 GiB file in a temporary directory
    python -P benchmarks/fingerprint.py --dir /scratch/nbgov  # keep (and reuse) the file there
    python -P benchmarks/fingerprint.py --size-mib 256 --rows 1000000 --runs 7

- file: fingerprint_file on a page-cached file, against BLAKE3 over the same bytes already in
  memory with the same threading (the hash's own best case, no I/O at all).
  Target: >= 0.70 of that baseline.
- cache: FileFingerprinter re-fingerprinting the unchanged file. Target: < 1 ms.
- small pages: the same file when its page cache was filled by 4 KiB writes (one page per
  mapping fault instead of large folios); informational, shows what the page cache costs.
- frame: fingerprint_object on a DataFrame with string columns, against
  pandas.util.hash_pandas_object(df).values (64-bit per row, not cryptographic).

The file is written in large chunks, flushed, dropped from the page cache and read once, so its
pages are cached the way a dataset read from disk is. Run with -P (or from outside the repository)
so the installed nbgov is measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import blake3

from nbgov.fingerprint import THREADED_MIN_BYTES, FileFingerprinter, fingerprint_file, fingerprint_object

MIB = 1 << 20
GB = 1e9


def median_seconds(run: Callable[[], object], runs: int) -> float:
    """Median wall time of *runs* calls, after one untimed warm-up call."""
    run()
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


@contextmanager
def bench_directory(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="nbgov-fingerprint-") as tmp:
        yield Path(tmp)


def drop_from_page_cache(path: Path) -> None:
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # only clean pages can be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def write_random_file(path: Path, size: int, write_size: int) -> None:
    import numpy as np

    rng = np.random.default_rng(20240601)
    with open(path, "wb", buffering=0) as file:
        left = size
        while left:
            block = memoryview(rng.bytes(min(64 * MIB, left)))
            for start in range(0, len(block), write_size):
                file.write(block[start:start + write_size])
            left -= len(block)


def read_all(path: Path) -> int:
    """Read the whole file into one reused 16 MiB buffer; return the byte count."""
    total = 0
    buffer = memoryview(bytearray(16 * MIB))
    with open(path, "rb", buffering=0) as file:
        while got := file.readinto(buffer):
            total += got
    return total


def prepare_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        print(f"reusing {path}")
    else:
        print(f"writing {size // MIB} MiB of random bytes to {path} ...", flush=True)
        write_random_file(path, size, 64 * MIB)
    drop_from_page_cache(path)
    read_all(path)  # warm: the pages are now cached as a read from disk caches them


def in_memory_rates(path: Path, runs: int) -> tuple[str, float, float]:
    """BLAKE3 over the file's bytes held in memory: digest, bytes/s with AUTO threads and with one."""
    data = path.read_bytes()
    auto = blake3.blake3.AUTO
    threaded = len(data) / median_seconds(lambda: blake3.blake3(data, max_threads=auto).digest(), runs)
    one_thread = len(data) / median_seconds(lambda: blake3.blake3(data).digest(), max(1, runs // 2))
    return blake3.blake3(data, max_threads=auto).hexdigest(), threaded, one_thread


def bench_file(path: Path, runs: int) -> None:
    size = path.stat().st_size
    read = size / median_seconds(lambda: read_all(path), runs)
    expected, baseline, one_thread = in_memory_rates(path, runs)
    auto = blake3.blake3.AUTO
    library = size / median_seconds(lambda: blake3.blake3(max_threads=auto).update_mmap(path).digest(), runs)
    assert fingerprint_file(path).digest == expected, "fingerprint_file disagrees with blake3"
    ours = size / median_seconds(lambda: fingerprint_file(path), runs)
    ratio = ours / baseline
    print(f"file     {size // MIB} MiB, page-cached, {os.cpu_count()} CPUs, blake3 {blake3.__version__}")
    print(f"  raw read (16 MiB readinto)                      {read / GB:6.2f} GB/s")
    print(f"  blake3 in memory, one thread                    {one_thread / GB:6.2f} GB/s")
    print(f"  blake3 in memory, AUTO threads (baseline)       {baseline / GB:6.2f} GB/s")
    print(f"  blake3 update_mmap(path), AUTO threads          {library / GB:6.2f} GB/s   "
          f"{library / baseline:4.2f} x baseline")
    print(f"  fingerprint_file                                {ours / GB:6.2f} GB/s   "
          f"{ratio:4.2f} x baseline   target >= 0.70: {verdict(ratio >= 0.70)}")


def bench_cache(path: Path, calls: int = 2000) -> None:
    fingerprints = FileFingerprinter()
    fingerprints.fingerprint(path)
    fingerprints.fingerprint(path)
    if fingerprints.hits == 0:
        # Modified less than two seconds ago, so not remembered yet (racy timestamps): once more.
        time.sleep(2.1)
        fingerprints.fingerprint(path)
    clock = time.perf_counter_ns
    timings = []
    for _ in range(calls):
        start = clock()
        fingerprints.fingerprint(path)
        timings.append(clock() - start)
    median_ms = statistics.median(timings) / 1e6
    p99_ms = sorted(timings)[int(calls * 0.99)] / 1e6
    baseline_ms = median_seconds(lambda: os.stat(path), 200) * 1e3
    print(f"cache    FileFingerprinter, unchanged file: median {median_ms:.4f} ms  p99 {p99_ms:.4f} ms   "
          f"baseline os.stat {baseline_ms:.4f} ms   ({fingerprints.hits} hits, {fingerprints.misses} misses)")
    print(f"         target < 1 ms: {verdict(median_ms < 1)}")


def bench_small_pages(path: Path, runs: int) -> None:
    """Refill the page cache through 4 KiB writes and measure again (informational)."""
    view = memoryview(path.read_bytes())
    with open(path, "wb", buffering=0) as file:  # truncated: no page of the old file stays cached
        for start in range(0, len(view), 4096):
            file.write(view[start:start + 4096])
    del view
    size = path.stat().st_size
    expected, baseline, _ = in_memory_rates(path, runs)
    assert fingerprint_file(path).digest == expected, "fingerprint_file disagrees with blake3"
    ours = size / median_seconds(lambda: fingerprint_file(path), runs)
    print(f"small pages  page cache filled by 4 KiB writes: fingerprint_file {ours / GB:6.2f} GB/s   "
          f"{ours / baseline:4.2f} x baseline ({baseline / GB:.2f} GB/s)   informational")


def sample_frame(rows: int, strings: str):  # -> pandas.DataFrame
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    words = np.array([f"category-{i:05d}" for i in range(5000)], dtype=object)
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "amount": rng.normal(1000, 250, rows),
        "term": rng.integers(12, 360, rows),
        "category": words[rng.integers(0, 5000, rows)],
        "city": words[rng.integers(0, 400, rows)],
        "note": [f"application {i} reviewed" for i in range(rows)],
    })
    text = ["category", "city", "note"]
    return frame.astype(dict.fromkeys(text, "str" if strings == "str" else object))


def bench_frame(rows: int, runs: int) -> None:
    import pandas as pd

    for strings in ("str", "object"):
        frame = sample_frame(rows, strings)
        nbytes = int(frame.memory_usage(deep=True).sum())
        ours = median_seconds(lambda: fingerprint_object(frame), runs)  # noqa: B023 - used at once
        base = median_seconds(lambda: pd.util.hash_pandas_object(frame).values, runs)  # noqa: B023
        coverage = fingerprint_object(frame).coverage
        print(f"frame    {rows:,} rows, 3 numeric + 3 {strings!r} string columns, {nbytes / 1e6:,.0f} MB: "
              f"fingerprint_object ({coverage}) {ours * 1e3:6.1f} ms = {nbytes / ours / GB:5.2f} GB/s   "
              f"baseline hash_pandas_object {base * 1e3:6.1f} ms   {base / ours:4.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, help="keep the test file here and reuse it next time "
                                                 "(default: a temporary directory, deleted afterwards)")
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024 MiB)")
    parser.add_argument("--rows", type=int, default=1_500_000, help="DataFrame rows (default 1,500,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure; the median is shown")
    args = parser.parse_args()
    if args.size_mib * MIB < THREADED_MIN_BYTES:
        parser.error(f"--size-mib must be at least {THREADED_MIN_BYTES // MIB} to measure the threaded path")
    with bench_directory(args.dir) as directory:
        path = directory / f"nbgov-fingerprint-{args.size_mib}MiB.bin"
        prepare_file(path, args.size_mib * MIB)
        bench_file(path, args.runs)
        bench_cache(path)
        bench_small_pages(path, args.runs)
    bench_frame(args.rows, args.runs)


if __name__ == "__main__":
    main()
