"""Query latency per search mode at 10k, 100k and 1M synthetic papers, index loaded.

For each size: synthetic abstracts in the arXiv snapshot's style (bench/synth.py)
make the lexical index; embedding-like synthetic vectors (the clustered mixture of
bench/vectors_bench.py — embedding a million synthetic abstracts with MiniLM would
take hours here) make the dense index; dates and categories make the filter facts.
Each index is saved and loaded from disk as ``papertide search`` does. Queries are
1-5 words drawn from the corpus; the dense and hybrid figures include embedding the
query with papertide's real embedder. One query at a time, one process run.

    python bench/search_bench.py [--sizes 10000,100000,1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from lexical_bench import make_queries, synthetic_docs  # noqa: E402
from vectors_bench import generate  # noqa: E402

from papertide.config import load_config  # noqa: E402
from papertide.filters import DocFacts  # noqa: E402
from papertide.index import SearchIndex, load_configured_embedder  # noqa: E402
from papertide.rank import search  # noqa: E402
from papertide.text.lexical import BM25Index  # noqa: E402
from papertide.text.vectors import VectorIndex  # noqa: E402

CATS = ["cs.CL", "cs.LG", "cs.AI", "cs.IR", "cs.CV", "stat.ML", "math.OC", "cs.NE", "eess.AS", "q-bio.NC"]


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(n: int, root: Path, embedder) -> tuple[SearchIndex, list[str], dict]:
    t = time.perf_counter()
    docs = synthetic_docs(n)
    t_docs = time.perf_counter() - t
    t = time.perf_counter()
    BM25Index.build(docs).save(root / "lexical")
    t_lex = time.perf_counter() - t
    vectors, _ = generate(n, 0)
    t = time.perf_counter()
    VectorIndex.build([d[0] for d in docs], vectors, model=embedder.name).save(root / "dense")
    t_vec = time.perf_counter() - t
    del vectors
    rng = np.random.default_rng(0)
    n_cats = rng.integers(1, 4, n)
    facts = DocFacts(
        [d[0] for d in docs],
        (19_000 + rng.integers(0, 1_000, n)).astype(np.int32),
        np.concatenate([[0], np.cumsum(n_cats)]).astype(np.int64),
        rng.integers(0, len(CATS), int(n_cats.sum())).astype(np.int32),
        CATS,
    )
    facts.save(root / "facts", watermark=0)
    queries = [" ".join(q) for q in make_queries(docs, 200, seed=1)]
    del docs
    t = time.perf_counter()
    index = SearchIndex(BM25Index.load(root / "lexical"), VectorIndex.load(root / "dense"),
                        DocFacts.load(root / "facts")[0], store=None, embedder=embedder)  # fmt: skip
    index.lexical_rows, index.vector_rows  # line up document numbers now, as a server does at start
    t_load = time.perf_counter() - t
    sizes = {
        "lexical MB": dir_bytes(root / "lexical") / 1e6,
        "dense MB": dir_bytes(root / "dense") / 1e6,
        "build s (docs/lexical/dense/load)": f"{t_docs:.0f}/{t_lex:.0f}/{t_vec:.0f}/{t_load:.1f}",
    }
    return index, queries, sizes


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    # the default settings' embedder, on one thread, as SearchIndex loads it for queries
    with tempfile.TemporaryDirectory() as home:
        embedder = load_configured_embedder(load_config(home, env={}), threads=1)
    embedder.embed(["warm up"])
    print(f"{'papers':>9} {'mode':<8} {'p50 ms':>8} {'p99 ms':>8} {'mean':>8}   index")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            index, queries, sizes = build(n, Path(tmp), embedder)
            queries = queries[: args.queries]
            for mode in ("lexical", "dense", "hybrid"):
                ms = []
                for q in queries:
                    t = time.perf_counter()
                    search(index, q, k=10, mode=mode)
                    ms.append((time.perf_counter() - t) * 1000)
                ms = np.array(ms)
                extra = ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in sizes.items())
                print(f"{n:>9,} {mode:<8} {np.percentile(ms, 50):>8.1f} {np.percentile(ms, 99):>8.1f} "
                      f"{ms.mean():>8.1f}   {extra if mode == 'lexical' else ''}", flush=True)  # fmt: skip
            print(f"{'':>9} RSS after loading and querying: {rss_mb():.0f} MB", flush=True)
            del index


if __name__ == "__main__":
    main()
