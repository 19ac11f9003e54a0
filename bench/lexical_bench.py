"""Lexical search speed: papertide's BM25 index next to the bm25s package, in one process run.

Builds both indexes over the same synthetic papers (bench/synth.py) and the same
tokens — bm25s gets each paper's tokens with the title written twice, which is
exactly papertide's weighting (title 2, abstract 1, authors 1), with the same k1, b
and Lucene IDF — then times single queries (1 to 5 words drawn from the corpus's
token stream, so common words come up as often as in text) one at a time, and
checks that both return the same top 10.

    python bench/lexical_bench.py              # 100,000 papers
    python bench/lexical_bench.py --million    # 1,000,000 papers (about 20 minutes here)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from array import array
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import synth  # noqa: E402

from papertide.text.lexical import BM25Index, BM25Params, tokenize  # noqa: E402


def synthetic_docs(n: int) -> list[tuple[str, str, str, list[str]]]:
    return [(r["id"], r["title"], r["abstract"], [f"{f} {s}" for s, f, _ in r["authors_parsed"]])
            for r in synth.records(n)]  # fmt: skip


class Vocab(dict):
    """Token -> id for bm25s, a new id for each new token."""

    def __missing__(self, token: str) -> int:
        i = self[token] = len(self)
        return i


def bm25s_corpus(docs, vocab: Vocab) -> list[array]:
    """Token ids per document as papertide weighs them: title twice, abstract, authors."""
    out = []
    for _, title, abstract, authors in docs:
        t = tokenize(title)
        out.append(array("i", map(vocab.__getitem__, t + t + tokenize(abstract) + tokenize("; ".join(authors)))))
    return out


def make_queries(docs, n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    queries = []
    while len(queries) < n:
        _, title, abstract, _ = docs[rng.integers(len(docs))]
        tokens = tokenize(title + " " + abstract)
        if tokens:
            queries.append([tokens[i] for i in rng.integers(0, len(tokens), rng.integers(1, 6))])
    return queries


def latencies(run, queries) -> tuple[np.ndarray, list]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(run(q))
        times.append(time.perf_counter() - t)
    return np.array(times) * 1000, results


def row(name: str, ms: np.ndarray) -> str:
    return f"{name:<38} {np.percentile(ms, 50):8.2f} {np.percentile(ms, 99):8.2f} {ms.mean():8.2f}"


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000, help="number of synthetic papers (default 100,000)")
    ap.add_argument("--million", action="store_true", help="1,000,000 papers")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    n = 1_000_000 if args.million else args.docs
    import bm25s

    t = time.perf_counter()
    docs = synthetic_docs(n)
    print(f"{n:,} synthetic papers generated in {time.perf_counter() - t:.1f} s")
    queries = make_queries(docs, args.queries, args.seed)
    params = BM25Params()

    t = time.perf_counter()
    built = BM25Index.build(docs, params)
    t_build = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = built.save(Path(tmp) / "lexical")
        disk = dir_bytes(path)
        del built
        t = time.perf_counter()
        index = BM25Index.load(path)  # memory-mapped, as papertide serves it
        t_load = time.perf_counter() - t

        vocab = Vocab()
        t = time.perf_counter()
        corpus = bm25s_corpus(docs, vocab)
        t_tok = time.perf_counter() - t
        t = time.perf_counter()
        ref = bm25s.BM25(k1=params.k1, b=params.b, method="lucene")
        ref.index((corpus, vocab), show_progress=False)
        t_ref = time.perf_counter() - t
        del corpus
        ref_bytes = sum(ref.scores[k].nbytes for k in ("data", "indices", "indptr"))

        ms_cold, _ = latencies(lambda q: index.search(q, args.k), queries)  # postings paged in on first use
        latencies(lambda q: ref.retrieve([q], k=args.k, show_progress=False), queries)  # the same warm-up
        ms_pt, res_pt = latencies(lambda q: index.search(q, args.k), queries)
        ms_ref, res_ref = latencies(lambda q: ref.retrieve([q], k=args.k, show_progress=False), queries)
        half = np.random.default_rng(1).random(len(index)) < 0.5
        ms_mask, _ = latencies(lambda q: index.search(q, args.k, allowed=half), queries)
        ms_req, _ = latencies(lambda q: index.search(q, args.k, required=q[:1]), queries)

        sizes = [len(index.term_docs(t)) for q in queries for t in q]
        stats = (f"index: {len(index):,} docs, {index.n_terms:,} terms, {len(index.docs):,} postings; "
                 f"query tokens match {np.mean(sizes):,.0f} docs on average")  # fmt: skip
        changed = [(key, title + " revised", abstract, authors) for key, title, abstract, authors in docs[: n // 100]]
        gone = [d[0] for d in docs[n // 100 : n // 100 + n // 1000]]
        t = time.perf_counter()
        index.update(changed, removed=gone)
        t_tok_update = time.perf_counter() - t
        index.flush()
        t_update = time.perf_counter() - t

        same = 0
        worst = 0.0
        for (d, s), (rd, rs) in zip(res_pt, res_ref):
            worst = max(worst, float(np.max(np.abs(s - rs[0][: len(s)]), initial=0.0)))
            same += set(d.tolist()) == set(rd[0][: len(d)].tolist()) or bool(np.allclose(s, rs[0][: len(s)], rtol=1e-5))

        print(f"\n{stats}")
        print(f"\n{'build':<38} {'seconds':>8}")
        print(f"{'papertide build (tokenize + index)':<38} {t_build:8.1f}")
        print(f"{'papertide load (mmap)':<38} {t_load:8.3f}")
        print(f"{'tokenize for bm25s (papertide tok.)':<38} {t_tok:8.1f}")
        print(f"{'bm25s index (from token ids)':<38} {t_ref:8.1f}")
        print(f"{'papertide update: 1% changed, 0.1% gone':<38} {t_update:8.1f}  ({t_tok_update:.1f} s tokenizing)")
        print(f"\n{'index size':<38} {'MiB':>8}")
        print(f"{'papertide on disk (all files)':<38} {disk / 2**20:8.1f}")
        print(f"{'papertide read by queries (docs+impacts)':<38} {(index.docs.nbytes + index.impacts.nbytes) / 2**20:8.1f}")
        print(f"{'bm25s in memory (data+indices+indptr)':<38} {ref_bytes / 2**20:8.1f}")
        print(f"\n{f'query latency, ms (k={args.k})':<38} {'p50':>8} {'p99':>8} {'mean':>8}")
        print(row("papertide, first pass (cold mmap)", ms_cold))
        print(row("papertide", ms_pt))
        print(row("bm25s (numpy backend)", ms_ref))
        print(row("papertide, allowed mask (half)", ms_mask))
        print(row("papertide, first word required", ms_req))
        print(f"\nsame top-{args.k} as bm25s (ties aside): {same}/{len(queries)}; largest score difference {worst:.2e}")


if __name__ == "__main__":
    main()
