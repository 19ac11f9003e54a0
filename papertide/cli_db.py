"""The ``papertide db`` commands: move a store to another database and check the copy.

- ``papertide db copy --to URL`` copies the configured store (``--db``,
  ``PAPERTIDE_DATABASE_URL``, else the home's SQLite file) into another database, in
  one transaction, then verifies every table by row count and checksum.
- ``papertide db verify --against URL`` runs the same check between two stores.

The work is done by :mod:`papertide.store.copy`; this module parses, reports progress
on stderr and prints the verification table. Registered on the main group by ``cli.py``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

import click

from papertide.config import replace
from papertide.store import Store, open_store

COPY_EPILOG = """\b
Examples:
  papertide db copy --to postgresql://papertide@db.example.org/papertide
  papertide --db postgresql://papertide@db/papertide db copy --to sqlite:////srv/papertide/papertide.db

Stop the `serve` and `worker` processes that write to the source first: rows written
during the copy are not in it (the verification then reports the tables that differ).
The copy is one transaction on the target: if it fails or is interrupted, the target is
left exactly as it was. A PostgreSQL database must use the C collation (CREATE DATABASE
papertide TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8').

The home's search indexes (index/, embeddings/) are not in the database and stay valid:
paper ids and the change log's sequence numbers are copied as they are, so the target's
watermark equals the source's (checked) and the indexes catch up from the same point.
Generated ids (accounts, comments, collections, subscriptions...) continue after the
source's last one, so no id is ever handed out twice.
"""


@contextmanager
def _other_store(obj, url: str, *, must_exist: bool) -> Iterator[Store]:
    if must_exist and url.startswith("sqlite:///"):
        from pathlib import Path

        path = Path(url[len("sqlite:///") :])
        if not path.is_file():
            raise click.ClickException(f"no store at {path}")
    store = open_store(replace(obj.config, database_url=url))
    try:
        yield store
    finally:
        store.close()


def _print_verification(check) -> None:
    width = max(len("table"), *(len(t.table) for t in check.tables))
    click.echo(f"{'table':<{width}}  {'rows source':>12}  {'rows target':>12}  checksum")
    for t in check.tables:
        sums = "match" if t.source_sum == t.target_sum else f"DIFFERENT ({t.source_sum[:12]} vs {t.target_sum[:12]})"
        click.echo(f"{t.table:<{width}}  {t.source_rows:>12}  {t.target_rows:>12}  {sums}")
    same = "=" if check.source_watermark == check.target_watermark else "!="
    click.echo(f"watermark: source {check.source_watermark} {same} target {check.target_watermark}")


class _Progress:
    """Rows per table on stderr: a line per table, and a bar on a terminal."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm, self.bar = tqdm, None

    def __call__(self, table: str, done: int, total: int) -> None:
        if done == 0:
            self.close()
            self.bar = self._tqdm(desc=table, total=total, unit=" rows", file=sys.stderr, disable=None, leave=False)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        if done == total:
            self.close()
            click.echo(f"  {table}: {total} rows", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def register(cli: click.Group, pass_ctx) -> None:
    @cli.group("db")
    def db() -> None:
        """Move the store to another database (SQLite <-> PostgreSQL) and check copies."""

    @db.command("copy", epilog=COPY_EPILOG)
    @click.option("--to", "to", required=True, metavar="URL", help="Target: postgresql://USER@HOST/DB or sqlite:///PATH.")
    @click.option("--replace", is_flag=True, help="Delete what the target holds first (same transaction).")
    @click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=5000, show_default=True,
                  help="Rows per read and write.")  # fmt: skip
    @pass_ctx
    def copy_cmd(obj, to: str, replace: bool, batch_size: int) -> None:
        """Copy every table of the store (--db, else the home's SQLite) into the database at URL."""
        from papertide.store.copy import copy_store

        progress = _Progress()
        with obj.store() as source, _other_store(obj, to, must_exist=False) as target:
            click.echo(f"copying {source.database.describe()['path']} -> {target.database.describe()['path']}", err=True)
            try:
                report = copy_store(source, target, replace=replace, batch_size=batch_size, progress=progress)
            except KeyboardInterrupt:
                progress.close()
                click.echo("interrupted: nothing was written to the target", err=True)
                sys.exit(130)
            finally:
                progress.close()
        _print_verification(report.verification)
        rate = report.total / report.seconds if report.seconds > 0 else 0.0
        click.echo(f"copied {report.total} rows in {report.seconds:.1f} s ({rate:,.0f} rows/s)")
        if report.changed:
            click.echo(f"the source changed during the copy (tables {', '.join(report.changed)}): "
                       "stop the processes writing to it and copy again with --replace", err=True)  # fmt: skip
        if not report.verification.ok:
            click.echo("verification FAILED: the target differs from the source", err=True)
            sys.exit(1)
        click.echo("verified: every table has the same rows and checksum on both sides")

    @db.command("verify")
    @click.option("--against", required=True, metavar="URL", help="The other store: postgresql://... or sqlite:///PATH.")
    @pass_ctx
    def verify_cmd(obj, against: str) -> None:
        """Compare the store with another one, table by table (row counts and checksums); exit 1 if they differ."""
        from papertide.store.copy import verify_stores

        with obj.store() as source, _other_store(obj, against, must_exist=True) as other:
            check = verify_stores(source, other)
        _print_verification(check)
        if not check.ok:
            click.echo("the stores differ", err=True)
            sys.exit(1)
        click.echo("the stores hold the same data")
