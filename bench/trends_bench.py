"""How long trending phrases take on a big window (issue 4: ~100k papers, ~20M tokens, in seconds).

Builds one real n-gram segment (suffix array included) from a synthetic token stream:
Zipf-distributed words (function words and punctuation the most frequent, as in
abstracts), titles of 12 tokens and abstracts of ~186, papers spread evenly over the
recent window and the baseline before it (4 windows, as :func:`papertide.trends.periods`
says), and one phrase planted to rise in the recent window. Then times ``trending`` and
``series`` in this process and prints a table.

    python bench/trends_bench.py [--papers 100000] [--window month] [--dir /tmp/x]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from papertide.text.ngram import NgramIndex, write_segment
from papertide.trends import periods, series, trending

COMMON = ["the", ",", ".", "of", "and", "a", "in", "to", "we", "is", "for", "that", "with", "-", "on",
          "this", "by", "as", "are", "model", "models", "language", "learning", "data", "our"]  # fmt: skip
PLANTED = ["selective", "state", "space", "models"]


def build(directory: Path, papers: int, window: str, seed: int = 0) -> NgramIndex:
    rng = np.random.default_rng(seed)
    words = sorted({*COMMON, *PLANTED, *(f"w{i:06d}" for i in range(200_000))})
    ids = {w: i + 1 for i, w in enumerate(words)}
    by_rank = np.array([ids[w] for w in COMMON] + list(rng.permutation([ids[w] for w in words if w[0] == "w"])),
                       dtype=np.uint32)  # fmt: skip
    (r0, r1), (b0, b1) = periods(window, 20_000)
    n_base = papers * (b1 - b0 + 1) // (r1 - r0 + 1)
    days = np.sort(np.concatenate([rng.integers(b0, b1 + 1, n_base), rng.integers(r0, r1 + 1, papers)]))
    n = len(days)
    title, abstract = 12, rng.integers(150, 222, n)
    lens = title + 1 + abstract + 1
    starts = np.zeros(n + 1, dtype=np.int64)
    starts[1:] = np.cumsum(lens)
    ranks = rng.zipf(1.15, int(starts[-1])) - 1
    ranks[ranks >= len(by_rank)] %= len(by_rank)
    stream = by_rank[ranks]
    stream[starts[1:] - 1] = 0
    stream[starts[:-1] + title] = 0
    planted = np.array([ids[w] for w in PLANTED], dtype=np.uint32)
    recent = days >= r0
    share = np.where(recent, 0.05, 0.005)  # ten times more papers say it lately
    for row in np.flatnonzero(rng.random(n) < share):
        at = starts[row] + title + 1 + 5
        stream[at:at + 4] = planted
    write_segment(directory, stream, words, starts, [f"p{i}" for i in range(n)], days.astype(np.int32))
    return NgramIndex(directory)


def tokens_between(self: NgramIndex, lo: int, hi: int) -> np.ndarray:
    """A contiguous stream read, as proposed for :class:`NgramIndex` (trends uses it when present)."""
    raw = np.frombuffer(self._tokens, dtype=np.uint8, count=(hi - lo) * self.tw, offset=lo * self.tw)
    wide = np.zeros((hi - lo, 4), dtype=np.uint8)
    wide[:, 4 - self.tw:] = raw.reshape(-1, self.tw)
    return wide.view(">u4").ravel().astype(np.uint32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=100_000, help="papers in the recent window")
    ap.add_argument("--window", default="month")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="keep the segment here (reused when present)")
    a = ap.parse_args()
    root = a.dir or Path(tempfile.mkdtemp(prefix="trends-bench-"))
    t = time.perf_counter()
    ix = NgramIndex(root / "seg") if (root / "seg").exists() else build(root / "seg", a.papers, a.window)
    built = time.perf_counter() - t
    segs = [(ix, np.ones(len(ix), dtype=bool))]
    (r0, _), _ = periods(a.window, 20_000)
    recent_rows = np.asarray(ix.doc_days) >= r0
    recent_tokens = int(np.diff(np.asarray(ix.doc_starts))[recent_rows].sum())
    print(f"segment: {len(ix):,} papers, {ix.n_tokens:,} tokens; built or loaded in {built:.1f} s; "
          f"recent window: {int(recent_rows.sum()):,} papers, {recent_tokens:,} tokens\n")
    print(f"| window | stream read | trending s (median of {a.runs}) | min s | series s |")
    print("|---|---|---|---|---|")
    top: list = []
    for read in ("tokens_at", "tokens_between"):
        if read == "tokens_between" and not hasattr(NgramIndex, "tokens_between"):
            NgramIndex.tokens_between = tokens_between  # the proposed contiguous reader
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            top = trending(segs, a.window)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        points = series(segs, "state space models", period="week")
        series_s = time.perf_counter() - t
        print(f"| {a.window} | {read} | {statistics.median(times):.2f} | {min(times):.2f} | {series_s:.3f} |")
    print(f"\ntop: {[(x.phrase, x.recent, x.baseline, round(x.score, 2)) for x in top[:5]]}")
    print(f"series points: {len(points)}, last: {points[-1] if points else None}")


if __name__ == "__main__":
    main()
