"""Dense vector search at a million papers: recall of the compact path, latency, build time, memory.

The vectors are synthetic but shaped like sentence embeddings, because isotropic Gaussian
noise (every vector equally far from every other) is a case no binary code can serve and
no text corpus produces. :class:`Mixture` draws unit vectors as a weighted sum of

* one **shared mean direction** (MiniLM vectors of any two abstracts have cosine ~0.1-0.2,
  never 0: the cone effect of trained embeddings);
* a **hierarchy of topics**: 32 fields > 2,048 topics > 32,768 micro-topics (about 30
  papers each on average, Zipf-like sizes: a few crowded subjects, a long tail);
* per-paper **noise**.

Every direction is drawn from an **anisotropic** Gaussian (per-axis std ~ (i+1)^-0.35 in
a random rotation: an effective dimension of ~95 of 384, as trained embeddings use their
dimensions unevenly). Typical cosines: same micro-topic ~0.7, same topic ~0.5, same field
~0.3, unrelated ~0.15; the benchmark prints the neighbour cosines it really produced.
Queries are fresh draws of the same mixture (not copies of indexed vectors).

The parent process generates, builds and saves the index; a child process loads it from
disk (memory-mapped, as the service would) and measures queries and resident memory.

    python bench/vectors_bench.py [--n 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from papertide.text.vectors import VectorIndex, normalize

DIM = 384
WEIGHTS = {"mean": 0.45, "field": 0.45, "topic": 0.5, "micro": 0.55, "noise": 0.6}


@dataclass
class Mixture:
    """A fixed random mixture of embedding-like directions; :meth:`sample` draws papers from it."""

    basis: np.ndarray  # (dim, dim): anisotropic scale then rotation
    mean: np.ndarray
    fields: np.ndarray
    topics: np.ndarray
    micro: np.ndarray
    topic_field: np.ndarray
    micro_topic: np.ndarray
    micro_p: np.ndarray  # popularity of each micro-topic

    @classmethod
    def make(cls, seed: int = 0, dim: int = DIM, fields: int = 32, topics: int = 2048, micro: int = 32768) -> "Mixture":
        rng = np.random.default_rng(seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        basis = ((np.arange(1, dim + 1) ** -0.35)[:, None] * rotation).astype(np.float32)

        def directions(n: int) -> np.ndarray:
            return normalize(rng.standard_normal((n, dim), dtype=np.float32) @ basis)

        popularity = rng.permutation(1.0 / np.arange(1, micro + 1) ** 0.6)
        return cls(
            basis,
            directions(1)[0],
            directions(fields),
            directions(topics),
            directions(micro),
            rng.integers(0, fields, topics),
            rng.integers(0, topics, micro),
            popularity / popularity.sum(),
        )

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        m = rng.choice(len(self.micro), n, p=self.micro_p)
        t = self.micro_topic[m]
        noise = normalize(rng.standard_normal((n, len(self.mean)), dtype=np.float32) @ self.basis)
        w = WEIGHTS
        x = w["mean"] * self.mean + w["field"] * self.fields[self.topic_field[t]] + w["topic"] * self.topics[t]
        return normalize(x + w["micro"] * self.micro[m] + w["noise"] * noise)


def generate(n: int, queries: int, seed: int = 0, chunk: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """n papers and some queries from one mixture, generated in chunks (bounded temporaries)."""
    mix = Mixture.make(seed)
    rng = np.random.default_rng(seed + 1)
    x = np.empty((n, DIM), np.float32)
    for s in range(0, n, chunk):
        x[s : s + chunk] = mix.sample(min(chunk, n - s), rng)
    return x, mix.sample(queries, rng)


def rss() -> dict[str, float]:
    """Resident memory of this process in MiB: total, anonymous (heap) and file-backed (memory maps)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            out[name] = int(value.split()[0]) / 1024
    return out


def timed(index: VectorIndex, queries: np.ndarray, **kw) -> tuple[list[np.ndarray], np.ndarray]:
    index.search(queries[0], 10, **kw)  # warm the code path (not the pages)
    docs, times = [], []
    for q in queries:
        t = time.perf_counter()
        d, _ = index.search(q, 10, **kw)
        times.append(time.perf_counter() - t)
        docs.append(d)
    return docs, np.array(times) * 1000


def recall(got: list[np.ndarray], truth: list[np.ndarray]) -> float:
    return float(np.mean([len(set(g.tolist()) & set(t.tolist())) / max(len(t), 1) for g, t in zip(got, truth)]))


def row(*cells: object) -> None:
    print("  ".join(f"{c:>12}" if i else f"{c:<34}" for i, c in enumerate(cells)))


def latency_row(label: str, ms: np.ndarray, got: list[np.ndarray], truth: list[np.ndarray] | None) -> None:
    rec = "1.0000" if truth is None else f"{recall(got, truth):.4f}"
    row(label, f"{np.median(ms):.1f}", f"{np.percentile(ms, 99):.1f}", rec)


def child(directory: Path) -> None:
    """Load the saved index and measure: this is the process a server would be."""
    before = rss()
    t = time.perf_counter()
    index = VectorIndex.load(directory)
    t_load = time.perf_counter() - t
    mem_load = rss()
    queries = np.load(directory.parent / "queries.npy")
    rss_change = f"{before['VmRSS']:.0f} -> {mem_load['VmRSS']:.0f} MiB"
    print(f"\nloaded {len(index):,} vectors in {t_load:.2f} s; RSS {rss_change}")
    cold, t_cold = timed(index, queries, mode="compact")
    mem_compact = rss()
    exact, t_exact = timed(index, queries, mode="exact")
    mem_exact = rss()
    compact, t_compact = timed(index, queries, mode="compact")

    print("\nsingle-query latency (ms), k=10")
    row("path", "p50", "p99", "recall@10")
    latency_row("exact (float32 dot, all rows)", t_exact, exact, None)
    latency_row("compact, first queries after load", t_cold, cold, exact)
    latency_row("compact, warm", t_compact, compact, exact)
    top = np.stack([np.sort(index._full[:] @ q)[::-1][[0, 9, 99, 999]] for q in queries[:20]]).mean(0)
    print("neighbour cosines of the queries (mean of 20): @1 {:.3f} @10 {:.3f} @100 {:.3f} @1000 {:.3f}".format(*top))

    print("\ntuning the candidate stage (rescore_factor x k candidates, refine_factor x k float rescored)")
    row("setting (default: rescore 40)", "p50", "p99", "recall@10")
    for rf, cdim in ((10, None), (20, None), (40, None), (80, None), (40, 256), (80, 256), (160, 128)):
        index.rescore_factor, index.candidate_dim = rf, cdim
        got, ms = timed(index, queries, mode="compact")
        latency_row(f"rescore {rf}, bits {cdim or DIM}", ms, got, exact)
    index.rescore_factor, index.candidate_dim = 40, None

    print("\nexact or compact by collection size (the first n vectors; auto is exact below exact_below=50,000)")
    row("n", "exact p50", "compact p50", "recall@10")
    for n in (10_000, 50_000, 200_000):
        small = VectorIndex.build(index.keys[:n], index._full[:n])
        truth, ms_exact = timed(small, queries[:100], mode="exact")
        got, ms_compact = timed(small, queries[:100], mode="compact")
        row(f"{n:,}", f"{np.median(ms_exact):.1f}", f"{np.median(ms_compact):.1f}", f"{recall(got, truth):.4f}")
        del small

    print("\nfiltered queries (allowed mask), auto mode")
    row("allowed fraction", "p50", "p99", "recall@10")
    rng = np.random.default_rng(5)
    for frac in (0.5, 0.1, 0.03, 0.01, 0.001):
        allowed = rng.random(index.size) < frac
        got, ms = timed(index, queries[:50], allowed=allowed)
        truth, _ = timed(index, queries[:50], allowed=allowed, mode="exact")
        assert all(allowed[g].all() for g in got)
        latency_row(f"{frac:g} ({int(allowed.sum()):,} docs)", ms, got, truth)

    print("\nresident memory (MiB)")
    row("after", "VmRSS", "anonymous", "file-backed")
    for label, mem in (("load", mem_load), ("compact queries", mem_compact), ("+ exact queries", mem_exact)):
        row(label, f"{mem['VmRSS']:.0f}", f"{mem['RssAnon']:.0f}", f"{mem['RssFile']:.0f}")
    print("file-backed = pages of the memory-mapped files: the page cache, shared and reclaimable;")
    print("anonymous = this process's own memory (keys, temporaries).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    with tempfile.TemporaryDirectory(prefix="vectors-bench-") as tmp:
        t = time.perf_counter()
        x, queries = generate(args.n, args.queries)
        took = time.perf_counter() - t
        print(f"generated {args.n:,} x {DIM} embedding-like vectors + {args.queries} queries in {took:.1f} s")
        sample = x[np.random.default_rng(9).choice(args.n, 2000, replace=False)]
        off = sample @ sample.T
        print(f"cosine of random pairs: mean {off[np.triu_indices(2000, 1)].mean():.3f}")
        np.save(Path(tmp) / "queries.npy", queries)
        t = time.perf_counter()
        index = VectorIndex.build([f"p{i}" for i in range(args.n)], x, model="synthetic")
        t_build = time.perf_counter() - t
        del x
        t = time.perf_counter()
        index.save(Path(tmp) / "index")
        t_save = time.perf_counter() - t
        print(f"build {t_build:.1f} s (calibrate + int8 + binary codes), save {t_save:.1f} s")
        params = json.loads((Path(tmp) / "index" / "params.json").read_text())
        print("\nfiles")
        row("file", "MB", "bytes/vector")
        for p in sorted((Path(tmp) / "index").iterdir()):
            bpv = params["files"].get(p.name, {}).get("bytes_per_vector", "")
            row(p.name, f"{p.stat().st_size / 1e6:.1f}", bpv)
        del index
        subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "index")], check=True)


if __name__ == "__main__":
    main()
