"""pgvector's HNSW index next to papertide's own vector index, side by side in one process run.

Two parts, on a real PostgreSQL server (a throwaway one from tests/pgcluster.py, or
``--url``, a database the bench may fill):

1. **Synthetic**: ``--n`` embedding-like vectors (bench/vectors_bench.py's mixture) stored
   as papers, loaded by :meth:`PgVectors.rebuild` (binary COPY + HNSW build) and by
   :class:`VectorIndex`; single-query latency p50/p99 and recall@10 / recall@100 of both
   against exact search, by ``hnsw.ef_search``, then under filters of several sizes.
   Query latency is the whole call: for pgvector a pooled connection, a transaction,
   ``SET LOCAL`` and the query over loopback.
2. **Demo corpus**: the 43 demo papers embedded by the real model, indexed by
   ``update_index`` on the PostgreSQL store, searched through ``rank.search`` with
   ``vector_search = "own"`` and ``"pgvector"``: nDCG@10 on the labelled queries
   (tests/fixtures/quality), agreement of the two top-10s, and latency.

    python bench/pgvector_bench.py [--n 100000] [--queries 200] [--no-demo]
                                   [--url postgresql://... --demo-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # pgcluster

from vectors_bench import generate  # noqa: E402

from papertide.paper import Paper  # noqa: E402
from papertide.store.vectors_pg import PgVectors  # noqa: E402
from papertide.text.vectors import VectorIndex  # noqa: E402

FRACTIONS = (0.001, 0.01, 0.05, 0.2, 0.5)


def row(*cells: object) -> None:
    print("  ".join(f"{c:>9}" if i else f"{c:<46}" for i, c in enumerate(cells)), flush=True)


def recall(got: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(g) & set(t)) / max(len(t), 1) for g, t in zip(got, truth)]))


def timed(fn, queries) -> tuple[list[list[str]], np.ndarray]:
    fn(queries[0])  # warm the path
    out, ms = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        ms.append((time.perf_counter() - t) * 1000)
    return out, np.array(ms)


def report(label: str, ms: np.ndarray, got, truth) -> None:
    row(label, f"{np.median(ms):.2f}", f"{np.percentile(ms, 99):.2f}", f"{recall(got, truth):.4f}")


def synthetic(url: str, n: int, n_queries: int) -> None:
    from papertide.ingest import ingest
    from papertide.store.postgres import PostgresStore

    x, queries = generate(n, n_queries)
    ids = [f"pt:{i:016x}" for i in range(n)]
    print(f"\n== synthetic: {n:,} x {x.shape[1]} embedding-like vectors, {n_queries} queries ==")
    store = PostgresStore(url, pool_size=2)
    try:
        t = time.perf_counter()
        ingest(store, (Paper(id=i, title=f"Synthetic paper {i}", abstract="Text.").normalised() for i in ids))
        print(f"papers stored in {time.perf_counter() - t:.1f} s (the table's rows refer to them)")
        pg = PgVectors(store.database)
        t = time.perf_counter()
        pg.rebuild(((ids[s : s + 20_000], x[s : s + 20_000]) for s in range(0, n, 20_000)),
                   model="synthetic", dim=x.shape[1], watermark=store.watermark())  # fmt: skip
        t_pg = time.perf_counter() - t
        size = store.database.first("SELECT pg_relation_size('paper_vectors_hnsw'), pg_table_size('paper_vectors')")
        t = time.perf_counter()
        own = VectorIndex.build(ids, x, model="synthetic")
        t_own = time.perf_counter() - t
        print(f"build: pgvector {t_pg:.1f} s (COPY + HNSW m=16 ef_construction=64; index {size[0] / 1e6:.0f} MB, "
              f"table {size[1] / 1e6:.0f} MB); own index {t_own:.1f} s (codes)")
        _unfiltered(pg, own, queries)
        _filtered(pg, own, ids, queries[:50])
        sample = np.random.default_rng(7).choice(n, 1000, replace=False)
        t = time.perf_counter()
        pg.upsert([ids[i] for i in sample], x[sample][:, ::-1].copy(), model="synthetic")
        print(f"\nincremental: 1,000 vectors replaced in {time.perf_counter() - t:.2f} s (HNSW inserts)")
    finally:
        store.close()


def _unfiltered(pg: PgVectors, own: VectorIndex, queries: np.ndarray) -> None:
    keys = own.keys
    truth10, _ = timed(lambda q: [keys[d] for d in own.search(q, 10, mode="exact")[0]], queries)
    truth100 = [[keys[d] for d in own.search(q, 100, mode="exact")[0]] for q in queries]
    print("\nsingle-query latency (ms) and recall against exact search")
    row("path", "p50", "p99", "recall")
    for k, truth in ((10, truth10), (100, truth100)):
        got, ms = timed(lambda q, k=k: [keys[d] for d in own.search(q, k)[0]], queries)
        report(f"own index (auto), k={k}", ms, got, truth)
        for ef in (40, 100, 200, 400):
            if ef < k:
                continue
            got, ms = timed(lambda q, k=k, ef=ef: [h[0] for h in pg.search(q, k, ef_search=ef)], queries)
            report(f"pgvector hnsw ef_search={ef}, k={k}" + (" <- default" if ef == 100 else ""), ms, got, truth)


def _filtered(pg: PgVectors, own: VectorIndex, ids: list[str], queries: np.ndarray) -> None:
    print("\nfiltered, k=10 (an allowed set of random papers; exact = the truth)")
    row("allowed fraction / path", "p50", "p99", "recall@10")
    rng = np.random.default_rng(5)
    keys = own.keys
    for frac in FRACTIONS:
        mask = rng.random(own.size) < frac
        allowed = {ids[i] for i in np.flatnonzero(mask)}
        truth = [[keys[d] for d in own.search(q, 10, allowed=mask, mode="exact")[0]] for q in queries]
        got, ms = timed(lambda q, mask=mask: [keys[d] for d in own.search(q, 10, allowed=mask)[0]], queries)
        report(f"{frac:g} ({len(allowed):,}) own index", ms, got, truth)
        got, ms = timed(lambda q, allowed=allowed: [h[0] for h in pg.search(q, 10, allowed=allowed)], queries)
        report(f"{frac:g} ({len(allowed):,}) pgvector", ms, got, truth)


def demo(url: str) -> None:
    from papertide.config import load_config
    from papertide.evaluation import evaluate
    from papertide.index import SearchIndex, load_configured_embedder, update_index
    from papertide.ingest import ingest_demo
    from papertide.rank import search
    from papertide.store import open_store

    print("\n== demo corpus: 43 papers, the real embedder, rank.search through both ==")
    with tempfile.TemporaryDirectory(prefix="pgvector-bench-") as home:
        cfg = load_config(home, env={}, database_url=url)
        embedder = load_configured_embedder(cfg, threads=1)
        store = open_store(cfg)
        try:
            ingest_demo(store)
            print(update_index(store, cfg, embedder=embedder).summary())
            indexes = {mode: SearchIndex.open(load_config(home, env={}, database_url=url, vector_search=mode), store,
                                              embedder=embedder) for mode in ("own", "pgvector")}  # fmt: skip
            labelled = json.loads((HERE.parent / "tests/fixtures/quality/demo_queries.json").read_text())["queries"]
            qrels = _qrels(indexes["own"], labelled)
            row("mode / path", "p50 ms", "p99 ms", "nDCG@10")
            tops = {}
            for mode in ("dense", "hybrid"):
                for path, index in indexes.items():
                    run, ms = {}, []
                    for n, item in enumerate(labelled):
                        t = time.perf_counter()
                        run[str(n)] = search(index, item["q"], mode=mode, k=100)[0]
                        ms.append((time.perf_counter() - t) * 1000)
                    tops[mode, path] = [run[str(n)][:10] for n in range(len(labelled))]
                    ndcg = evaluate(run, qrels)["ndcg@10"]
                    row(f"{mode} / {path}", f"{np.median(ms):.1f}", f"{np.percentile(ms, 99):.1f}", f"{ndcg:.4f}")
                same = sum(a == b for a, b in zip(tops[mode, "own"], tops[mode, "pgvector"]))
                print(f"{mode}: identical top-10 lists for {same} of {len(labelled)} queries; "
                      f"recall@10 of pgvector vs own {recall(tops[mode, 'pgvector'], tops[mode, 'own']):.4f}")
        finally:
            store.close()


def _qrels(index, labelled: list[dict]) -> dict[str, dict[str, int]]:
    by_title = {index.store.get(i).title: i for i in index.facts.keys}
    qrels = {}
    for n, item in enumerate(labelled):
        qrels[str(n)] = {next(i for t, i in by_title.items() if t.startswith(prefix)): grade
                         for prefix, grade in item["rel"].items()}  # fmt: skip
    return qrels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--url", help="an empty PostgreSQL database with pgvector (default: a throwaway server)")
    ap.add_argument("--demo-url", help="with --url: another empty one for the demo part (else it is skipped)")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo corpus part (it embeds 43 papers)")
    args = ap.parse_args()
    with ExitStack() as stack:
        if args.url:
            urls = [args.url, args.demo_url]
        else:
            from pgcluster import start_cluster

            cluster = stack.enter_context(start_cluster())
            if not cluster.has_vector:
                sys.exit(f"{cluster.kind} PostgreSQL at {cluster.bindir} has no pgvector")
            print(f"throwaway PostgreSQL {cluster.version} ({cluster.kind})")
            urls = [cluster.new_database(), cluster.new_database()]
        synthetic(urls[0], args.n, args.queries)
        if urls[1] and not args.no_demo:
            demo(urls[1])


if __name__ == "__main__":
    main()
