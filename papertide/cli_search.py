"""The search commands of the ``papertide`` CLI: index, search, similar, eval beir.

Thin like the rest of the CLI: parse options, call ``index``/``rank``/``evaluation``,
print. Registered on the main group by ``cli.py``.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import click

from papertide.paper import Paper, parse_paper_id
from papertide.text.ngram import phrase_highlights


def _bar(desc: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(desc=desc, total=total, unit=" papers", file=sys.stderr, disable=None, leave=False)


def _print_hits(papers: dict[str, Paper], ids: list[str], scores, as_json: bool, warnings=(),
                phrases=()) -> None:  # fmt: skip
    marks = {pid: phrase_highlights(p.title, p.abstract, phrases) for pid, p in papers.items()} if phrases else {}
    if as_json:
        out = []
        for pid, s in zip(ids, scores):
            p = papers.get(pid)
            out.append({"id": pid, "title": p.title if p else "", "score": round(float(s), 6),
                        "authors": p.authors if p else [], "submitted": p.submitted if p else None,
                        "categories": p.categories if p else []})  # fmt: skip
            if pid in marks:  # character spans of the exact phrases, to highlight
                out[-1]["highlights"] = marks[pid]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for w in warnings:
        click.echo(f"note: {w}", err=True)
    if not ids:
        click.echo("no papers found")
        return
    for rank, (pid, s) in enumerate(zip(ids, scores), 1):
        p = papers.get(pid)
        if p is None:
            continue
        authors = ", ".join(p.authors[:3]) + (" et al." if len(p.authors) > 3 else "")
        meta = " · ".join(x for x in ((p.submitted or "")[:10], p.primary_category, authors) if x)
        mark = marks.get(pid, {})
        click.echo(f"{rank:>3}. {_marked(p.title, mark.get('title', []))}  [{pid}]  {s:.3f}")
        if meta:
            click.echo(f"     {meta}")
        if mark.get("abstract"):  # show where the phrase is
            a, b = mark["abstract"][0]
            lo, hi = max(0, a - 80), min(len(p.abstract), b + 80)
            snippet = _marked(p.abstract[lo:hi], [(a - lo, b - lo)])
            click.echo(f"     {'…' if lo else ''}{snippet}{'…' if hi < len(p.abstract) else ''}")
        elif p.abstract:
            click.echo(textwrap.indent(textwrap.shorten(p.abstract, 200, placeholder=" …"), "     "))


def _marked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the spans in bold and underlined (plain when not on a terminal)."""
    out, last = [], 0
    for a, b in sorted(spans):
        if a < last:
            continue
        out += [text[last:a], click.style(text[a:b], bold=True, underline=True)]
        last = b
    return "".join(out) + text[last:]


def register(cli: click.Group, pass_ctx) -> None:
    @cli.command("index")
    @click.option("--rebuild", is_flag=True, help="Start from nothing instead of catching up.")
    @pass_ctx
    def index_cmd(obj, rebuild: bool) -> None:
        """Build or catch up the search indexes (only changed papers; cached embeddings reused)."""
        from papertide.index import update_index

        with obj.store() as store, _bar("index") as bar:
            report = update_index(store, obj.config, progress=bar.update, rebuild=rebuild)
        click.echo(report.summary())

    @cli.command("search")
    @click.argument("query", nargs=-1, required=True)
    @click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many results.")
    @click.option("--offset", type=click.IntRange(0, 100_000), default=0, help="Skip this many (paging).")
    @click.option("--mode", type=click.Choice(["hybrid", "lexical", "dense"]), default="hybrid", show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def search_cmd(obj, query: tuple[str, ...], k: int, offset: int, mode: str, as_json: bool) -> None:
        """Search papers. Words, "exact phrases", -excluded, author:, cat:cs (prefix), since:, until:, year:,
        or a pasted arXiv id or URL."""
        from papertide.index import SearchIndex
        from papertide.query import parse_query
        from papertide.rank import search

        q = parse_query(" ".join(query))
        with obj.store() as store:
            index = SearchIndex.open(obj.config, store)
            ids, scores = search(index, q, k=k, offset=offset, mode=mode)
            papers = store.get_many(ids)
        _print_hits(papers, ids, scores, as_json, q.warnings, q.phrases)

    @cli.command("similar")
    @click.argument("paper_id")
    @click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def similar_cmd(obj, paper_id: str, k: int, as_json: bool) -> None:
        """Papers similar in meaning to a stored paper."""
        from papertide.index import SearchIndex
        from papertide.rank import similar

        pid = parse_paper_id(paper_id)
        with obj.store() as store:
            index = SearchIndex.open(obj.config, store)
            ids, scores = similar(index, pid, k=k)
            papers = store.get_many(ids)
        _print_hits(papers, ids, scores, as_json)

    @cli.group("eval")
    def eval_group() -> None:
        """Measure search quality."""

    @eval_group.command("beir")
    @click.argument("directory", type=click.Path(exists=True, file_okay=False))
    @click.option("--mode", type=click.Choice(["hybrid", "lexical", "dense"]), default="hybrid", show_default=True)
    @click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to score against.")
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def eval_beir_cmd(obj, directory: str, mode: str, split: str, as_json: bool) -> None:
        """Score search on a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/): nDCG@10, recall@100, MRR@10.

        The corpus goes into its own store under <home>/eval/<name>, ingested once and reused."""
        from papertide.evaluation import run_beir

        with _bar("eval") as bar:
            metrics = run_beir(obj.config, Path(directory), mode=mode, split=split, progress=bar.update)
        if as_json:
            click.echo(json.dumps(metrics, indent=2))
            return
        click.echo(f"{metrics['dataset']} ({split}, {metrics['queries']} queries, mode {mode}):")
        for name in ("ndcg@10", "recall@100", "mrr@10"):
            click.echo(f"  {name:<11} {metrics[name]:.4f}")
