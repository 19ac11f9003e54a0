"""Ingest throughput into SQLite next to the floor of merely parsing the same JSON lines.

Generates a synthetic file in the arXiv metadata snapshot's format (bench/synth.py),
then, in one process so the machine's noise hits both alike:

1. floor: read the file and ``json.loads`` every line, nothing else;
2. ingest: ``papertide ingest`` of the same file into a fresh SQLite store
   (reading, normalising, merging, writing papers, authors, categories, change log);
3. re-ingest: the same file again (every record unchanged).

    python bench/ingest_bench.py [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import synth  # noqa: E402

from papertide.config import load_config  # noqa: E402
from papertide.ingest import ingest_files  # noqa: E402
from papertide.store import open_store  # noqa: E402


def floor(path: Path) -> tuple[int, float]:
    t = time.perf_counter()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            json.loads(line)
            n += 1
    return n, time.perf_counter() - t


def run_ingest(path: Path, home: Path) -> tuple[object, float]:
    store = open_store(load_config(home, env={}))
    try:
        t = time.perf_counter()
        report = ingest_files(store, [path], format="arxiv-snapshot")
        return report, time.perf_counter() - t
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = synth.write(Path(tmp) / "snapshot.jsonl", args.records)
        size = path.stat().st_size
        n, t_floor = floor(path)
        report, t_ingest = run_ingest(path, Path(tmp) / "home")
        again, t_again = run_ingest(path, Path(tmp) / "home")
        db = (Path(tmp) / "home" / "papertide.db").stat().st_size
    rate_floor, rate_ingest, rate_again = n / t_floor, n / t_ingest, n / t_again
    print(f"synthetic arXiv snapshot: {n:,} records, {size / 1e6:.1f} MB; store {db / 1e6:.1f} MB")
    print(f"{'step':<28}{'seconds':>10}{'records/s':>12}{'x floor':>9}")
    print(f"{'parse JSON lines (floor)':<28}{t_floor:>10.2f}{rate_floor:>12,.0f}{1:>9.1f}")
    print(f"{'ingest into SQLite':<28}{t_ingest:>10.2f}{rate_ingest:>12,.0f}{t_ingest / t_floor:>9.1f}")
    print(f"{'re-ingest (all unchanged)':<28}{t_again:>10.2f}{rate_again:>12,.0f}{t_again / t_floor:>9.1f}")
    print(f"first run: {report.summary()}")  # type: ignore[attr-defined]
    print(f"second run: {again.summary()}")  # type: ignore[attr-defined]
    ok = rate_ingest >= 5000 and t_ingest / t_floor <= 5
    print(f"target (>= 5,000 records/s and within 5x of the floor): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
