"""The ``papertide`` command: a thin click group over the library.

Each command parses its options, calls one library function and prints the result.
Engine exceptions become one-line messages and exit statuses here and nowhere else:
0 all good, 1 some records were rejected or a source failed part-way, 2 bad usage.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterator

import click

from papertide import __version__
from papertide.config import Config, load_config
from papertide.errors import NotFoundError, PapertideError
from papertide.ingest import IngestReport
from papertide.paper import Paper, parse_paper_id
from papertide.store import Store, open_store

MAX_SHOWN_REJECTS = 50


class Context:
    def __init__(self, home: str | None, db: str | None) -> None:
        self.home, self.db = home, db
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.home, database_url=self.db)
        return self._config

    @contextmanager
    def store(self) -> Iterator[Store]:
        s = open_store(self.config)
        try:
            yield s
        finally:
            s.close()


pass_ctx = click.make_pass_decorator(Context)


class CliGroup(click.Group):
    """Turns papertide's exceptions into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NotFoundError as e:
            raise click.ClickException(str(e)) from None
        except (PapertideError, ValueError) as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=CliGroup)
@click.option("--home", type=click.Path(file_okay=False), envvar="PAPERTIDE_HOME", help="papertide home directory.")
@click.option("--db", "db", metavar="URL", help="Database URL (default: SQLite in the home).")
@click.option("-v", "--verbose", is_flag=True, help="Log network retries and waits.")
@click.version_option(__version__, prog_name="papertide")
@click.pass_context
def cli(ctx: click.Context, home: str | None, db: str | None, verbose: bool) -> None:
    """papertide: research papers you can search, follow and trust."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    ctx.obj = Context(home, db)


# --------------------------------------------------------------------- ingest


class IngestGroup(CliGroup):
    """``papertide ingest PATH...`` reads files; ``papertide ingest arxiv|…`` uses a source."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["files", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[--format F] PATH... | arxiv | arxiv-query | hf-daily | demo")


@cli.group(cls=IngestGroup)
def ingest() -> None:
    """Add papers: from files (format auto-detected) or from arXiv and Hugging Face.

    Files: papertide JSONL, the arXiv metadata snapshot, BEIR corpus.jsonl, saved
    OAI-PMH XML or BibTeX (gzipped too); --format jsonl|arxiv-snapshot|beir|oai-xml|bibtex
    overrides detection and --dataset NAME names a BEIR corpus.

    \b
      papertide ingest papers.jsonl arxiv-metadata-oai-snapshot.json
      papertide ingest arxiv --set cs:cs:CL --from 2024-01-01
      papertide ingest arxiv-query 'ti:"infini-gram"' --max 50
      papertide ingest hf-daily --date 2024-03-17
    """


def _run_ingest(what: str, fn, **kw) -> IngestReport:
    from tqdm import tqdm

    shown = 0

    def on_reject(r) -> None:
        nonlocal shown
        shown += 1
        if shown <= MAX_SHOWN_REJECTS:
            bar.write(f"rejected {r.where}: {r.reason}", file=sys.stderr)

    with tqdm(desc=what, unit=" records", file=sys.stderr, disable=None, leave=False) as bar:
        try:
            report = fn(on_progress=bar.update, on_reject=on_reject, **kw)
        except KeyboardInterrupt:
            bar.close()
            click.echo("interrupted: every completed batch is stored; run the same command again to finish", err=True)
            sys.exit(130)
    if report.rejected > MAX_SHOWN_REJECTS:
        click.echo(f"... and {report.rejected - MAX_SHOWN_REJECTS} more rejected records", err=True)
    for err in report.errors:
        click.echo(f"error: {err}", err=True)
    click.echo(f"{what}: {report.summary()}")
    return report


def _exit_for(report: IngestReport) -> None:
    if not report.ok:
        sys.exit(1)


@ingest.command("files", hidden=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "arxiv-snapshot", "beir", "oai-xml", "bibtex"]))
@click.option("--dataset", help="Dataset name for BEIR ids (default: the corpus file's folder name).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_ctx
def ingest_files_cmd(obj: Context, fmt: str | None, dataset: str | None, paths: tuple[str, ...]) -> None:
    """Ingest files: papertide JSONL, arXiv snapshot, BEIR corpus.jsonl, OAI-PMH XML, BibTeX."""
    from papertide.ingest import ingest_files

    with obj.store() as store:
        report = _run_ingest("ingest", ingest_files, store=store, paths=[Path(p) for p in paths], format=fmt,
                             dataset=dataset)  # fmt: skip
    _exit_for(report)


@ingest.command("demo")
@pass_ctx
def ingest_demo_cmd(obj: Context) -> None:
    """Ingest the bundled demo corpus (43 language-model papers)."""
    from papertide.ingest import ingest_demo

    with obj.store() as store:
        _exit_for(_run_ingest("demo corpus", ingest_demo, store=store))


@ingest.command("arxiv")
@click.option("--set", "set_spec", metavar="SET", help="OAI set: cs, cs:cs:CL, physics:hep-th, … (default: all).")
@click.option("--from", "from_", metavar="DATE", help="Records changed on or after this day (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Records changed on or before this day (YYYY-MM-DD).")
@click.option("--metadata", "prefix", type=click.Choice(["arXiv", "arXivRaw"]), default="arXiv", show_default=True)
@click.option("--restart", is_flag=True, help="Ignore the saved checkpoint of an unfinished harvest.")
@pass_ctx
def ingest_arxiv_cmd(obj: Context, set_spec, from_, until, prefix, restart) -> None:
    """Harvest arXiv metadata over OAI-PMH (resumes an interrupted harvest)."""
    from papertide.ingest import ingest_arxiv

    with obj.store() as store:
        report = _run_ingest("arxiv", ingest_arxiv, store=store, config=obj.config, set_spec=set_spec,
                             prefix=prefix, from_=from_, until=until, restart=restart)  # fmt: skip
    _exit_for(report)


@ingest.command("arxiv-query")
@click.argument("query")
@click.option("--max", "max_results", type=click.IntRange(1, 30_000), default=100, show_default=True)
@click.option("--sort", "sort_by", type=click.Choice(["relevance", "lastUpdatedDate", "submittedDate"]),
              default="relevance", show_default=True)  # fmt: skip
@click.option("--order", "sort_order", type=click.Choice(["descending", "ascending"]), default="descending")
@pass_ctx
def ingest_arxiv_query_cmd(obj: Context, query, max_results, sort_by, sort_order) -> None:
    """Fetch papers matching an arXiv API search query (ti:, au:, abs:, cat:, AND/OR)."""
    from papertide.ingest import ingest_arxiv_query

    with obj.store() as store:
        report = _run_ingest("arxiv-query", ingest_arxiv_query, store=store, config=obj.config, query=query,
                             max_results=max_results, sort_by=sort_by, sort_order=sort_order)  # fmt: skip
    _exit_for(report)


@ingest.command("hf-daily")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="Day on Hugging Face Daily Papers (default: today, UTC).")
@pass_ctx
def ingest_hf_daily_cmd(obj: Context, day: str | None) -> None:
    """Fetch a day of Hugging Face daily papers with their upvotes."""
    from papertide.ingest import ingest_hf_daily

    try:
        when = date.fromisoformat(day) if day else date.today()
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date like 2024-03-17", param_hint="--date") from None
    with obj.store() as store:
        _exit_for(_run_ingest("hf-daily", ingest_hf_daily, store=store, config=obj.config, day=when))


# ---------------------------------------------------------------------- reads


def _paper_line(p: Paper) -> str:
    authors = ", ".join(p.authors[:3]) + (" et al." if len(p.authors) > 3 else "")
    day = (p.submitted or "")[:10]
    bits = [b for b in (day, p.primary_category, authors) if b]
    return f"{p.id}  {p.title}" + (f"\n    {' · '.join(bits)}" if bits else "")


@cli.command("list")
@click.option("-n", "--limit", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--order", type=click.Choice(["submitted", "added", "changed", "id"]), default="submitted", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_cmd(obj: Context, limit: int, offset: int, order: str, as_json: bool) -> None:
    """List stored papers, newest first."""
    with obj.store() as store:
        papers = store.list_papers(limit=limit, offset=offset, order=order)  # type: ignore[arg-type]
        total = store.count()
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in papers], ensure_ascii=False, indent=2))
        return
    for p in papers:
        click.echo(_paper_line(p))
    click.echo(f"({len(papers)} of {total} papers)")


@cli.command()
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(obj: Context, paper_id: str, as_json: bool) -> None:
    """Show one paper by arXiv id or URL, DOI, or papertide id."""
    pid = parse_paper_id(paper_id)
    with obj.store() as store:
        p = store.get(pid)
        signals = store.signals(pid)
    if as_json:
        d = p.to_dict() | {"signals": [{"source": s.source, "upvotes": s.upvotes, "day": s.day} for s in signals]}
        click.echo(json.dumps(d, ensure_ascii=False, indent=2))
        return
    click.echo(click.style(p.title, bold=True))
    click.echo(f"{p.id}" + (f"v{p.version}" if p.version else "") + (f"  [{', '.join(p.categories)}]" if p.categories else ""))
    if p.authors:
        click.echo(", ".join(p.authors))
    dates = [f"submitted {p.submitted}" if p.submitted else "", f"updated {p.updated}" if p.updated else ""]
    if any(dates):
        click.echo("; ".join(d for d in dates if d))
    for s in signals:
        click.echo(f"{s.upvotes} upvotes on {s.source}" + (f" ({s.day})" if s.day else ""))
    if p.abstract:
        click.echo("\n" + p.abstract + "\n")
    for label, value in (("comments", p.comments), ("journal", p.journal_ref), ("doi", p.doi), ("license", p.license)):
        if value:
            click.echo(f"{label}: {value}")
    for k, v in p.links.items():
        click.echo(f"{k}: {v}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def stats(obj: Context, as_json: bool) -> None:
    """Counts of what the store holds."""
    with obj.store() as store:
        s = store.stats()
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(f"papers:   {s['papers']} ({s['deleted']} deleted)")
    click.echo(f"authors:  {s['authors']}")
    click.echo(f"signals:  {s['signals']}")
    if s["by_source"]:
        click.echo("sources:  " + ", ".join(f"{k or '?'} {v}" for k, v in s["by_source"].items()))
    if s["top_categories"]:
        click.echo("top categories: " + ", ".join(f"{k} {v}" for k, v in s["top_categories"].items()))
    lo, hi = s["submitted_range"]
    if lo:
        click.echo(f"submitted: {lo[:10]} .. {hi[:10]}")
    click.echo(f"store:    {s['path']} ({s['bytes'] / 1e6:.1f} MB, watermark {s['watermark']})")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "bibtex"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout).")
@pass_ctx
def export(obj: Context, fmt: str, output: str | None) -> None:
    """Export every stored paper as papertide JSONL or BibTeX."""
    from papertide import export as exporter

    write = exporter.write_jsonl if fmt == "jsonl" else exporter.write_bibtex
    with obj.store() as store:
        if output:
            tmp = Path(output + ".part")
            with open(tmp, "w", encoding="utf-8") as out:
                n = write(store.iter_papers(), out)
            tmp.replace(output)  # never leave a half-written export under the real name
            click.echo(f"exported {n} papers to {output}", err=True)
        else:
            write(store.iter_papers(), sys.stdout)


@cli.command()
@pass_ctx
def demo(obj: Context) -> None:
    """Load the bundled demo corpus (offline) and show what is in it."""
    from papertide.ingest import ingest_demo
    from papertide.web.demo import list_demo_papers

    with obj.store() as store:
        report = _run_ingest("demo corpus", ingest_demo, store=store)
        list_demo_papers(store)  # the daily papers of 2024-03-17, the page they came from
        papers = store.list_papers(limit=100, order="added")
        total, where = store.count(), store.stats()["path"]
    click.echo("")
    for p in papers:
        click.echo(_paper_line(p))
    click.echo(f"\n{total} papers in {where}. Try: papertide show {papers[0].id if papers else 'ID'}")
    _exit_for(report)


def _register_more() -> None:
    from papertide import cli_account, cli_db, cli_digest, cli_ngram, cli_search, cli_web

    cli_account.register(cli, pass_ctx)
    cli_search.register(cli, pass_ctx)
    cli_ngram.register(cli, pass_ctx)
    cli_web.register(cli, pass_ctx)
    cli_digest.register(cli, pass_ctx)
    cli_db.register(cli, pass_ctx)


_register_more()


def main() -> None:
    cli(prog_name="papertide")


if __name__ == "__main__":
    main()
