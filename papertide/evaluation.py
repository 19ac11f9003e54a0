"""Measuring search quality: nDCG@10, recall@100 and MRR@10 over labelled queries.

The metrics follow trec_eval as BEIR reports them: graded relevance with linear
gain, documents judged 0 count as not relevant, and a query with no relevant
document is left out of the averages. This module also reads BEIR datasets
(``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from papertide.errors import FormatError

Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> relevance
Run = Mapping[str, Sequence[str]]  # query id -> ranked doc ids


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain: sum of gain_i / log2(i + 1) for ranks i = 1, 2, ..."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], rel: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k = DCG of the top k / DCG of the ideal top k (Järvelin & Kekäläinen, 2002)."""
    ideal = dcg(sorted((r for r in rel.values() if r > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([max(rel.get(d, 0), 0) for d in ranked[:k]]) / ideal


def recall_at(ranked: Sequence[str], rel: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, r in rel.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at(ranked: Sequence[str], rel: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document in the top k (0 if none)."""
    for i, d in enumerate(ranked[:k]):
        if rel.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, recall@100 and MRR@10 over the queries with a relevant document."""
    judged = [q for q, rel in qrels.items() if any(r > 0 for r in rel.values())]
    if not judged:
        raise ValueError("no query has a relevant document")
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for q in judged:
        ranked = run.get(q, ())
        totals["ndcg@10"] += ndcg_at(ranked, qrels[q], 10)
        totals["recall@100"] += recall_at(ranked, qrels[q], 100)
        totals["mrr@10"] += mrr_at(ranked, qrels[q], 10)
    out = {name: value / len(judged) for name, value in totals.items()}
    out["queries"] = len(judged)
    return out


# ------------------------------------------------------------------- BEIR


@dataclass
class BeirDataset:
    name: str
    corpus: Path
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> BEIR doc id -> relevance


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """Read a BEIR dataset folder; the corpus itself is streamed later by the file reader."""
    root = Path(directory)
    corpus = root / "corpus.jsonl"
    if not corpus.is_file():
        raise FormatError(f"{root}: no corpus.jsonl (a BEIR dataset has corpus.jsonl, queries.jsonl, qrels/)")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise FormatError(f"{qrels_path}: no such split" + (f" (have: {', '.join(have)})" if have else ""))
    qrels = _read_qrels(qrels_path)
    queries = _read_queries(root / "queries.jsonl", wanted=set(qrels))
    missing = set(qrels) - set(queries)
    if missing:
        raise FormatError(f"{root / 'queries.jsonl'}: {len(missing)} judged queries are missing, e.g. {min(missing)!r}")
    return BeirDataset(root.resolve().name, corpus, queries, qrels)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not row or (n == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise FormatError(f"{path}:{n}: expected query-id, corpus-id, score")
            try:
                score = int(float(row[2]))
            except ValueError:
                raise FormatError(f"{path}:{n}: score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels


def _read_queries(path: Path, wanted: set[str]) -> dict[str, str]:
    if not path.is_file():
        raise FormatError(f"{path}: missing")
    queries = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                qid, text = str(d["_id"]), d["text"]
            except (ValueError, KeyError, TypeError):
                raise FormatError(f"{path}:{n}: expected a JSON object with _id and text") from None
            if qid in wanted:
                queries[qid] = text
    return queries


# -------------------------------------------------------------- running it


def run_queries(index, queries: Mapping[str, str], *, mode: str, depth: int = 100, progress=None) -> dict:
    """The ranked ids for each query (``depth`` of them), as a run for :func:`evaluate`."""
    from papertide.query import parse_query
    from papertide.rank import search

    run = {}
    for qid, text in queries.items():
        try:
            ids, _ = search(index, parse_query(text), k=depth, mode=mode)
        except ValueError:
            ids = []
        run[qid] = ids
        if progress:
            progress(1)
    return run


def run_beir(config, directory: Path, *, mode: str = "hybrid", split: str = "test", progress=None) -> dict:
    """Ingest (once) and index a BEIR dataset in its own store, run its queries, score them.

    The dataset lives in ``<home>/eval/<name>`` so it never mixes with the user's
    papers; a second run reuses the store, the index and the cached embeddings.
    """
    from papertide.config import replace
    from papertide.index import SearchIndex, update_index
    from papertide.ingest import ingest_files
    from papertide.paper import beir_id
    from papertide.store import open_store

    ds = load_beir(directory, split)
    sub = replace(config, home=config.home / "eval" / ds.name, database_url=None)
    store = open_store(sub)
    try:
        report = ingest_files(store, [ds.corpus], format="beir", dataset=ds.name)
        if report.errors:
            raise FormatError("; ".join(report.errors))
        update_index(store, sub)
        index = SearchIndex.open(sub, store)
        run = run_queries(index, ds.queries, mode=mode, progress=progress)
        qrels = {q: {beir_id(ds.name, d): r for d, r in rel.items()} for q, rel in ds.qrels.items()}
        metrics = evaluate(run, qrels)
    finally:
        store.close()
    return {"dataset": ds.name, "split": split, "mode": mode, **metrics}
