"""Search quality on the labelled demo queries: each mode, and two ways to fuse.

Prints nDCG@10, recall@100 and MRR@10 for lexical, dense and hybrid search, and for
hybrid the fusion used by default (convex combination of min-max normalised scores,
equal weights) next to reciprocal rank fusion and the convex combination at other
weights — the numbers behind the choice of fusion. The labelled set is tests/fixtures/quality/demo_queries.json.

    python bench/quality_bench.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from papertide.config import load_config  # noqa: E402
from papertide.evaluation import evaluate  # noqa: E402
from papertide.index import SearchIndex, update_index  # noqa: E402
from papertide.ingest import ingest_demo  # noqa: E402
from papertide.query import parse_query  # noqa: E402
from papertide.rank import DEPTH, _dense, _lexical, filter_mask, linear, search  # noqa: E402
from papertide.store import open_store  # noqa: E402
from papertide.text.lexical import tokenize_query  # noqa: E402


def labelled(index: SearchIndex) -> tuple[list[str], dict]:
    items = json.loads((ROOT / "tests" / "fixtures" / "quality" / "demo_queries.json").read_text())["queries"]
    by_title = {index.store.get(i).title: i for i in index.facts.keys}
    qrels = {}
    for n, item in enumerate(items):
        qrels[str(n)] = {next(i for t, i in by_title.items() if t.startswith(p)): g for p, g in item["rel"].items()}
    return [item["q"] for item in items], qrels


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(tmp, env={})
        store = open_store(config)
        ingest_demo(store)
        update_index(store, config)
        index = SearchIndex.open(config, store)
        queries, qrels = labelled(index)
        rows = []
        for mode, fusion in (("lexical", "convex"), ("dense", "convex"), ("hybrid", "convex"), ("hybrid", "rrf")):
            run = {str(n): search(index, q, mode=mode, k=100, fusion=fusion)[0] for n, q in enumerate(queries)}
            label = {"convex": " (default: convex a=0.5)", "rrf": " (RRF k=60)"}[fusion] if mode == "hybrid" else ""
            rows.append((mode + label, evaluate(run, qrels)))
        pairs = []
        for q in queries:
            pq = parse_query(q)
            mask = filter_mask(index, pq)
            tokens = tokenize_query(" ".join((*pq.words, *pq.phrases)))
            pairs.append((_lexical(index, tokens, mask, DEPTH), _dense(index, pq.text, mask, DEPTH)))
        for alpha in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            run = {str(n): linear(lx, dn, alpha)[0] for n, (lx, dn) in enumerate(pairs)}
            rows.append((f"linear a={alpha:.1f} (lexical weight)", evaluate(run, qrels)))
        store.close()
    print(f"labelled demo queries: {len(queries)}")
    print(f"{'ranking':<34}{'nDCG@10':>9}{'R@100':>8}{'MRR@10':>8}")
    for name, m in rows:
        print(f"{name:<34}{m['ndcg@10']:>9.4f}{m['recall@100']:>8.4f}{m['mrr@10']:>8.4f}")


if __name__ == "__main__":
    main()
