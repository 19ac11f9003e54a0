"""The ``papertide ngram`` commands: exact phrase counts, papers, next words, completions, trends.

Thin: parse options, ask :class:`papertide.phrases.Phrases` (or :mod:`papertide.trends`),
print. The engine is built and caught up by ``papertide index``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from papertide.cli_search import _marked
from papertide.text.ngram import highlight, ngram_tokens

WINDOWS = ("day", "week", "month")
PERIODS = ("day", "week", "month")


def _engine(obj):
    from papertide.phrases import Phrases

    return Phrases.open(obj.config)


def _phrase(words: tuple[str, ...]) -> str:
    phrase = " ".join(words)
    if not ngram_tokens(phrase):
        raise click.UsageError("the phrase has no words")
    return phrase


def _dump(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def register(cli: click.Group, pass_ctx) -> None:
    @cli.group("ngram")
    def ngram_group() -> None:
        """Exact phrase statistics over every title and abstract (a suffix-array n-gram index)."""

    @ngram_group.command("count")
    @click.argument("phrase", nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def count_cmd(obj, phrase: tuple[str, ...], as_json: bool) -> None:
        """How many times PHRASE occurs (whole words, any case) in titles and abstracts."""
        text = _phrase(phrase)
        e = _engine(obj)
        n = e.count(text)
        papers = len(e.find(text)) if n else 0
        if as_json:
            _dump({"phrase": text, "tokens": ngram_tokens(text), "count": n, "papers": papers})
        else:
            click.echo(f"{n:,} occurrences in {papers:,} papers")

    @ngram_group.command("docs")
    @click.argument("phrase", nargs=-1, required=True)
    @click.option("-k", "k", type=click.IntRange(1, 100_000), default=20, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def docs_cmd(obj, phrase: tuple[str, ...], k: int, as_json: bool) -> None:
        """The papers containing PHRASE, most occurrences first, with the matches marked."""
        text = _phrase(phrase)
        length = len(ngram_tokens(text))
        found = _engine(obj).find(text)
        ranked = sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:k]
        with obj.store() as store:
            papers = store.get_many([pid for pid, _ in ranked])
        rows = []
        for pid, offsets in ranked:
            p = papers.get(pid)
            if p is None:
                continue
            marks = highlight(p.title, p.abstract, offsets, length)
            rows.append({"id": pid, "title": p.title, "count": len(offsets), "offsets": offsets, "spans": marks})
        if as_json:
            _dump(rows)
            return
        if not rows:
            click.echo("no papers contain it")
        for r in rows:
            p = papers[r["id"]]
            click.echo(f"{r['count']:>4}  {_marked(p.title, r['spans']['title'])}  [{r['id']}]")
            for a, b in r["spans"]["abstract"][:3]:
                lo, hi = max(0, a - 60), min(len(p.abstract), b + 60)
                click.echo(f"      …{_marked(p.abstract[lo:hi], [(a - lo, b - lo)])}…")
        click.echo(f"{len(found):,} papers in all")

    @ngram_group.command("next")
    @click.argument("phrase", nargs=-1, required=True)
    @click.option("-k", "k", type=click.IntRange(1, 10_000), default=10, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def next_cmd(obj, phrase: tuple[str, ...], k: int, as_json: bool) -> None:
        """The words that follow PHRASE, by the ∞-gram rule: the longest suffix of PHRASE that
        occurs followed by a word, and what follows it there."""
        text = _phrase(phrase)
        suffix, dist = _engine(obj).infgram(text)
        top = list(dist.items())[:k]
        if as_json:
            _dump({"phrase": text, "suffix": " ".join(suffix), "next": [{"word": w, "p": round(p, 6)} for w, p in top]})
            return
        if not suffix:
            click.echo("not even the last word occurs in the corpus")
            return
        click.echo(f"after \"{' '.join(suffix)}\" ({len(suffix)} of {len(ngram_tokens(text))} words):")
        for w, p in top:
            click.echo(f"  {p:6.1%}  {w}")

    @ngram_group.command("complete")
    @click.argument("typed")
    @click.option("-k", "k", type=click.IntRange(1, 100), default=10, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def complete_cmd(obj, typed: str, k: int, as_json: bool) -> None:
        """Phrase completions for TYPED (its last word is a prefix unless it ends with a space)."""
        out = _engine(obj).complete(typed, k=k)
        if as_json:
            _dump([{"phrase": p, "count": n} for p, n in out])
            return
        for p, n in out:
            click.echo(f"{n:>8,}  {p}")

    @ngram_group.command("trending")
    @click.option("--window", type=click.Choice(WINDOWS), default="week", show_default=True)
    @click.option("-k", "k", type=click.IntRange(1, 1000), default=20, show_default=True)
    @click.option("--now", "now", metavar="YYYY-MM-DD", help="Last day of the window (default: the newest paper's).")
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def trending_cmd(obj, window: str, k: int, now: str | None, as_json: bool) -> None:
        """2- to 4-word phrases whose share rose most in the last day, week or month
        against the four windows before it (papertide.trends has the formula)."""
        import dataclasses
        from datetime import date

        from papertide import trends
        from papertide.filters import NO_DATE, day_number

        segments = _engine(obj).segments()
        if now is not None:
            day = day_number(now)
            if day == NO_DATE:
                raise click.BadParameter(f"{now!r} is not a date (YYYY-MM-DD)", param_hint="--now")
        else:
            latest = trends.latest_day(segments)
            day = None if latest is None else min(latest, day_number(date.today().isoformat()))
        rows = trends.trending(segments, window, now=day, k=k) if day is not None else []
        if as_json:
            _dump([dataclasses.asdict(t) for t in rows])
            return
        if day is None:
            click.echo("no dated papers")
            return
        (r0, r1), (b0, b1) = trends.periods(window, day)
        click.echo(f"rising in {trends.period_label(r0, 'day')}..{trends.period_label(r1, 'day')} "
                   f"against {trends.period_label(b0, 'day')}..{trends.period_label(b1, 'day')}:")
        if not rows:
            click.echo("  nothing rose enough (too few dated papers in the window or before it)")
        for t in rows:
            click.echo(f"  {t.ratio:6.1f}x  {t.recent:>6,} now  {t.baseline:>6,} before  "
                       f"{t.recent_papers:>5,} papers  {t.phrase}")

    @ngram_group.command("series")
    @click.argument("phrase", nargs=-1, required=True)
    @click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True)
    @click.option("--svg", "svg_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Also write the chart of the series to this SVG file.")
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def series_cmd(obj, phrase: tuple[str, ...], period: str, svg_path: Path | None, as_json: bool) -> None:
        """PHRASE's occurrences per day, week or month of submission."""
        from papertide import trends

        text = _phrase(phrase)
        points = trends.series(_engine(obj).segments(), text, period=period)
        if svg_path is not None:
            svg_path.write_text(trends.svg_chart(points, title=f"“{text}” per {period}"), encoding="utf-8")
        if as_json:
            _dump([{"period": label, "count": n, "tokens": total} for label, n, total in points])
            return
        if not points:
            click.echo("no dated paper contains it")
        for label, n, total in points:
            rate = n / total * 1e6 if total else 0.0
            click.echo(f"{label:>10}  {n:>8,}  {rate:10.1f} per million words")

    @ngram_group.command("merge")
    @pass_ctx
    def merge_cmd(obj) -> None:
        """Fold the delta segment into the main one now (``index`` does it when the delta grows)."""
        from papertide.phrases import update_phrases

        with obj.store() as store:
            click.echo(update_phrases(store, obj.config, merge=True).summary())
