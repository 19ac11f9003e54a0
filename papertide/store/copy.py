"""Moving a store to another database, and proving the copy equal: ``papertide db copy``/``db verify``.

A lab's SQLite home grows into a site on PostgreSQL (or a site takes a local SQLite copy
of its PostgreSQL data): every table moves as it is, same rows, same keys, same change
log, so nothing that refers to the data from outside (the home's search indexes, links
to comments, mailed unsubscribe links) notices the move.

- **Schema from the catalogs.** The tables, their columns, primary keys, foreign keys
  and generated-id columns are read from each database (``sqlite_master`` and PRAGMAs,
  ``information_schema`` and ``pg_catalog``), less ``migrations``; both stores are opened
  by the store classes, so both are fully migrated, and any difference is an error.
- **One target transaction.** Parents are copied before children, in batches read from
  one snapshot of the source and written by ``executemany`` (SQLite) or ``COPY``
  (PostgreSQL), and nothing is committed before the last row: an interrupted or refused
  copy leaves the target exactly as it was. A target holding any row is refused unless
  ``replace`` (then it is emptied in the same transaction).
- **Counters follow.** Identity sequences (PostgreSQL) and ``sqlite_sequence`` rows
  (SQLite ``AUTOINCREMENT``) are set to the source's last generated id (at least the
  largest copied), so a new account or comment never gets an id used before.
- **Verification** streams every table from both sides in primary-key order (byte order
  on both: PostgreSQL stores are refused unless their collation is ``C``) and compares the
  row count and a SHA-256 over each row as JSON (ints as ints, floats as their shortest
  round-trip form, text as UTF-8, NULL as ``null``: :class:`Digest`), plus the change-log
  watermark.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from graphlib import CycleError, TopologicalSorter
from typing import Callable, Iterator

import orjson

from papertide.errors import StoreError
from papertide.store.db import Database, Tx
from papertide.store.migrations import MIGRATIONS
from papertide.store.sql import SQLStore

BATCH = 5000  # rows per fetch and per write
SKIPPED = frozenset({"migrations", "paper_vectors", "paper_vectors_state"})  # each store keeps its own record of
# what was applied to it; the pgvector tables are derived from the index, and `papertide index` rebuilds them
_NAME = re.compile(r"[a-z_][a-z0-9_]*")

Progress = Callable[[str, int, int], None]  # (table, rows done, rows in the table)


class CopyError(StoreError):
    """The copy could not be made; the target was left as it was."""


class TargetNotEmptyError(CopyError):
    """The target already holds papertide data (copying would mix two sites)."""


@dataclass(frozen=True)
class Table:
    """One table as its database describes it."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # primary key columns in key order (empty when it has none)
    parents: frozenset[str]  # tables its foreign keys refer to
    counter: str | None  # the generated-id column (identity / AUTOINCREMENT), if any


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass(frozen=True)
class Verification:
    tables: list[TableCheck]
    source_watermark: int
    target_watermark: int

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and self.source_watermark == self.target_watermark


@dataclass
class CopyReport:
    rows: dict[str, int]  # table -> rows copied, in copy order
    seconds: float
    verification: Verification
    changed: list[str] = field(default_factory=list)  # tables the source changed in after the copy read them

    @property
    def total(self) -> int:
        return sum(self.rows.values())


# ------------------------------------------------------------------ schema discovery


def _q(name: str) -> str:
    """A catalog name as a quoted identifier (names are plain lowercase words here)."""
    if not _NAME.fullmatch(name):
        raise CopyError(f"unexpected table or column name {name!r} in the database")
    return f'"{name}"'


def _sqlite_layout(tx: Tx) -> dict[str, Table]:
    tables = {}
    rows = tx.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    for name, ddl in rows:
        if name.startswith("sqlite_") or name in SKIPPED:
            continue
        info = tx.execute(f"PRAGMA table_info({_q(name)})").fetchall()  # cid, name, type, notnull, default, pk
        columns = tuple(r[1] for r in info)
        key = tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        parents = frozenset(r[2] for r in tx.execute(f"PRAGMA foreign_key_list({_q(name)})"))
        counter = key[0] if len(key) == 1 and "AUTOINCREMENT" in (ddl or "").upper() else None
        tables[name] = Table(name, columns, key, parents - {name}, counter)
    return tables


_PG_COLUMNS = """
SELECT table_name, column_name, is_identity = 'YES' OR column_default LIKE 'nextval(%'
FROM information_schema.columns WHERE table_schema = current_schema()
AND table_name IN (SELECT table_name FROM information_schema.tables
                   WHERE table_schema = current_schema() AND table_type = 'BASE TABLE')
ORDER BY table_name, ordinal_position
"""
_PG_KEYS = """
SELECT cl.relname, a.attname FROM pg_constraint c
JOIN pg_class cl ON cl.oid = c.conrelid
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.contype = 'p' AND cl.relnamespace = to_regnamespace(current_schema())
ORDER BY cl.relname, k.ord
"""
_PG_PARENTS = """
SELECT child.relname, parent.relname FROM pg_constraint c
JOIN pg_class child ON child.oid = c.conrelid
JOIN pg_class parent ON parent.oid = c.confrelid
WHERE c.contype = 'f' AND child.relnamespace = to_regnamespace(current_schema())
"""


def _pg_layout(tx: Tx) -> dict[str, Table]:
    columns: dict[str, list[str]] = {}
    counters: dict[str, str] = {}
    for table, column, generated in tx.execute(_PG_COLUMNS):
        columns.setdefault(table, []).append(column)
        if generated:
            counters[table] = column
    keys: dict[str, list[str]] = {}
    for table, column in tx.execute(_PG_KEYS):
        keys.setdefault(table, []).append(column)
    parents: dict[str, set[str]] = {}
    for child, parent in tx.execute(_PG_PARENTS):
        parents.setdefault(child, set()).add(parent)
    tables = {}
    for name, cols in columns.items():
        if name not in SKIPPED:
            refers = frozenset(parents.get(name, set()) - {name})
            tables[name] = Table(name, tuple(cols), tuple(keys.get(name, ())), refers, counters.get(name))
    return tables


def _layout(tx: Tx, dialect: str) -> dict[str, Table]:
    return _sqlite_layout(tx) if dialect == "sqlite" else _pg_layout(tx)


def _compare(source: dict[str, Table], target: dict[str, Table], where: tuple[str, str]) -> None:
    """Refuse two schemas whose tables or columns differ (the copy would lose or invent data)."""
    only_source, only_target = sorted(set(source) - set(target)), sorted(set(target) - set(source))
    if only_source or only_target:
        raise CopyError(
            f"the source ({where[0]}) and the target ({where[1]}) have different tables: "
            f"only in the source: {', '.join(only_source) or 'none'}; only in the target: {', '.join(only_target) or 'none'}"
        )
    for name, table in source.items():
        a, b = set(table.columns), set(target[name].columns)
        if a != b:
            raise CopyError(
                f"table {name} has different columns in the source ({where[0]}) and the target ({where[1]}): "
                f"only in the source: {', '.join(sorted(a - b)) or 'none'}; "
                f"only in the target: {', '.join(sorted(b - a)) or 'none'}"
            )


def parents_first(tables: dict[str, Table]) -> list[str]:
    """Table names ordered so that every table comes after the tables it refers to."""
    graph = TopologicalSorter({name: t.parents & tables.keys() for name, t in tables.items()})
    try:
        graph.prepare()
    except CycleError as e:
        raise CopyError(f"the tables refer to each other in a cycle ({' -> '.join(e.args[1])})") from None
    order: list[str] = []
    while graph.is_active():
        ready = sorted(graph.get_ready())
        order += ready
        graph.done(*ready)
    return order


# ------------------------------------------------------------------- reading


def _where(db: Database) -> str:
    return getattr(db, "where", None) or str(getattr(db, "path", db.dialect))


def _identity(db: Database) -> tuple:
    """What tells two databases apart (a copy onto itself would delete the data it reads)."""
    if db.dialect == "sqlite":
        return ("sqlite", os.path.realpath(db.path))  # type: ignore[attr-defined]
    row = db.first("SELECT current_database(), current_setting('port'), pg_postmaster_start_time()::text")
    return ("postgresql", *row)


@contextmanager
def _snapshot(db: Database) -> Iterator[Tx]:
    """Reads that all see one state of ``db``, whatever other processes write meanwhile."""
    with db.reading() as tx:  # PostgreSQL: a REPEATABLE READ, READ ONLY transaction
        if db.dialect != "sqlite":
            yield tx
            return
        tx.execute("BEGIN")  # SQLite in WAL mode: the first read fixes the snapshot
        try:
            yield tx
        finally:
            tx.execute("ROLLBACK")


def _batches(tx: Tx, dialect: str, sql: str, size: int) -> Iterator[list[tuple]]:
    """The rows of ``sql`` in lists of ``size``, never the whole result in memory."""
    conn = tx.conn  # type: ignore[attr-defined]
    if dialect == "sqlite":
        cursor = conn.execute(sql)
        while rows := cursor.fetchmany(size):
            yield rows
        return
    with conn.cursor(name="papertide_copy") as cursor:  # a server-side cursor
        cursor.itersize = size
        cursor.execute(sql)
        while rows := cursor.fetchmany(size):
            yield rows


def _select(table: Table) -> str:
    """All rows in key order; a table without a key by all its columns, NULLs first on both backends
    (not for keys: PostgreSQL would sort instead of walking the key's index)."""
    order = ", ".join(_q(c) for c in table.key) or ", ".join(f"{_q(c)} NULLS FIRST" for c in table.columns)
    return f"SELECT {', '.join(_q(c) for c in table.columns)} FROM {_q(table.name)} ORDER BY {order}"


def _json_default(value: object) -> object:
    """Values JSON has no type for, as the same value on both backends would read."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}  # no row value is a JSON object: cannot pass for text
    raise TypeError(f"cannot checksum a {type(value).__name__} value")


class Digest:
    """Row count and SHA-256 of rows fed in order; equal rows give equal digests on any backend.

    Each row is hashed as a JSON array (orjson: ints as ints, floats as their shortest
    round-trip form, text as UTF-8, NULL as ``null``), rows separated by commas, so the
    digest does not depend on how the rows were batched. Infinite floats, which JSON
    lacks, also hash as ``null``; the schema's only float column (``rate_limits.expires``)
    is NOT NULL, so that can never make a NULL and an infinity look alike.
    """

    def __init__(self) -> None:
        self.rows = 0
        self._sha = hashlib.sha256()

    def feed(self, rows: list[tuple]) -> None:
        if rows:
            self._sha.update(orjson.dumps(rows, default=_json_default)[1:-1] + b",")
            self.rows += len(rows)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _digest_table(tx: Tx, dialect: str, table: Table, size: int) -> Digest:
    digest = Digest()
    with closing(_batches(tx, dialect, _select(table), size)) as batches:
        for rows in batches:
            digest.feed(rows)
    return digest


def _counter_positions(tx: Tx, dialect: str, tables: dict[str, Table]) -> dict[str, int]:
    """The last id each table's counter handed out (ids above the largest row may be gone)."""
    if dialect == "sqlite":
        if not tx.one("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"):
            return {}
        return {name: int(seq) for name, seq in tx.execute("SELECT name, seq FROM sqlite_sequence")}
    out = {}
    for t in tables.values():
        if t.counter:
            value = tx.scalar("SELECT pg_sequence_last_value(pg_get_serial_sequence(?, ?)::regclass)",
                              (_q(t.name), t.counter))  # fmt: skip
            out[t.name] = int(value or 0)
    return out


# ------------------------------------------------------------------- writing


class _Writer:
    """Fills the target inside its one open transaction."""

    def __init__(self, tx: Tx, dialect: str, where: str) -> None:
        self.tx, self.dialect, self.where = tx, dialect, where

    def prepare(self, tables: dict[str, Table], order: list[str], replace: bool) -> None:
        """Keep other writers out, then check the target is empty (or empty it)."""
        if self.dialect == "sqlite":
            self.tx.execute("PRAGMA defer_foreign_keys = ON")  # checked at commit; reset by it
        else:
            self.tx.execute(f"LOCK TABLE {', '.join(_q(n) for n in order)} IN EXCLUSIVE MODE")
        held = {n: self.tx.scalar(f"SELECT COUNT(*) FROM {_q(n)}") for n in order}
        held = {n: c for n, c in held.items() if c}
        if not held:
            return
        if not replace:
            listed = ", ".join(f"{n}: {c} rows" for n, c in held.items())
            raise TargetNotEmptyError(
                f"{self.where} already holds papertide data ({listed}); copy into an empty database, "
                "or replace what it holds (--replace)"
            )
        if self.dialect == "sqlite":
            for name in reversed(order):
                self.tx.execute(f"DELETE FROM {_q(name)}")
        else:
            self.tx.execute(f"TRUNCATE {', '.join(_q(n) for n in order)}")

    def write(self, table: Table, rows: list[tuple]) -> None:
        cols = ", ".join(_q(c) for c in table.columns)
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(table.columns))
            self.tx.executemany(f"INSERT INTO {_q(table.name)} ({cols}) VALUES ({marks})", rows)
            return
        conn = self.tx.conn  # type: ignore[attr-defined]
        with conn.cursor() as cursor, cursor.copy(f"COPY {_q(table.name)} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def set_counters(self, tables: dict[str, Table], positions: dict[str, int]) -> None:
        for t in tables.values():
            if not t.counter:
                continue
            largest = self.tx.scalar(f"SELECT MAX({_q(t.counter)}) FROM {_q(t.name)}") or 0
            last = max(int(largest), positions.get(t.name, 0))
            if self.dialect == "sqlite":
                self.tx.execute("DELETE FROM sqlite_sequence WHERE name = ?", (t.name,))
                if last:
                    self.tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (t.name, last))
            elif last:
                self.tx.execute("SELECT setval(pg_get_serial_sequence(?, ?), ?, true)", (_q(t.name), t.counter, last))
            else:
                self.tx.execute("SELECT setval(pg_get_serial_sequence(?, ?), 1, false)", (_q(t.name), t.counter))


def _reason(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _refused_line(e: BaseException) -> int | None:
    """PostgreSQL's COPY names the line (row of the batch) it refused: "COPY t, line 3, column c"."""
    match = re.search(r"\bline (\d+)", getattr(getattr(e, "diag", None), "context", None) or "")
    return int(match.group(1)) if match else None


def _keys(table: Table, rows: list[tuple]) -> str:
    """The primary keys of the first and last of ``rows``, for messages."""
    at = [table.columns.index(c) for c in table.key or table.columns]

    def key(row: tuple) -> str:
        values = tuple(row[i] for i in at)
        return repr(values[0]) if len(values) == 1 else repr(values)

    return key(rows[0]) if len(rows) == 1 else f"{key(rows[0])} .. {key(rows[-1])}"


# --------------------------------------------------------------------- the API


def _check_pair(source: SQLStore, target: SQLStore) -> tuple[str, str]:
    where = (_where(source.database), _where(target.database))
    if _identity(source.database) == _identity(target.database):
        raise CopyError(f"the source and the target are the same database ({where[0]})")
    wanted = [m.__name__ for m in MIGRATIONS]
    for label, store, place in (("source", source, where[0]), ("target", target, where[1])):
        applied = set(store.applied_migrations())
        missing = [m for m in wanted if m not in applied]
        if missing or len(applied) != len(wanted):
            raise CopyError(
                f"the {label} ({place}) is not at this papertide's schema: missing migrations "
                f"{', '.join(missing) or 'none'}, unknown ones {', '.join(sorted(applied - set(wanted))) or 'none'}"
            )
    return where


def _layouts(source: SQLStore, target: SQLStore, where: tuple[str, str]) -> tuple[dict, dict]:
    with _snapshot(source.database) as tx:
        src = _layout(tx, source.database.dialect)
    with _snapshot(target.database) as tx:
        tgt = _layout(tx, target.database.dialect)
    _compare(src, tgt, where)
    return src, tgt


def copy_store(source: SQLStore, target: SQLStore, *, replace: bool = False, batch_size: int = BATCH,
               progress: Progress | None = None) -> CopyReport:  # fmt: skip
    """Copy every row of ``source`` into ``target`` in one transaction, then verify both sides."""
    where = _check_pair(source, target)
    src_tables, tgt_tables = _layouts(source, target, where)
    order = parents_first(tgt_tables)
    sdb, tdb = source.database, target.database
    started = time.monotonic()
    copied: dict[str, Digest] = {}
    with tdb.transaction() as wtx, _snapshot(sdb) as rtx:
        writer = _Writer(wtx, tdb.dialect, where[1])
        writer.prepare(tgt_tables, order, replace)
        for name in order:
            copied[name] = _copy_table(rtx, sdb.dialect, writer, src_tables[name], batch_size, progress)
        writer.set_counters(tgt_tables, _counter_positions(rtx, sdb.dialect, src_tables))
    seconds = time.monotonic() - started
    check = _verify(source, target, src_tables, tgt_tables, order, batch_size)
    changed = [c.table for c in check.tables
               if (c.source_rows, c.source_sum) != (copied[c.table].rows, copied[c.table].hexdigest())]  # fmt: skip
    return CopyReport({n: copied[n].rows for n in order}, seconds, check, changed)


def _copy_table(rtx: Tx, dialect: str, writer: _Writer, table: Table, size: int,
                progress: Progress | None) -> Digest:  # fmt: skip
    total = int(rtx.scalar(f"SELECT COUNT(*) FROM {_q(table.name)}"))
    digest = Digest()
    if progress:
        progress(table.name, 0, total)
    batch: list[tuple] = []  # the rows being written when something fails
    try:
        with closing(_batches(rtx, dialect, _select(table), size)) as batches:  # its cursor closes first
            for batch in batches:
                writer.write(table, batch)
                digest.feed(batch)
                batch = []
                if progress:
                    progress(table.name, digest.rows, total)
    except Exception as e:
        if not isinstance(e, (StoreError, ValueError, OSError)) and not _is_driver_error(e):
            raise
        raise _failed(table, digest.rows, batch, e, writer.where) from None
    return digest


def _failed(table: Table, done: int, rows: list[tuple], e: BaseException, where: str) -> CopyError:
    if not rows:
        span = "reading the source"
    else:
        span = f"rows {done + 1}-{done + len(rows)}, keys {_keys(table, rows)}"
        line = _refused_line(e)
        if line is not None and 0 < line <= len(rows):
            span += f"; refused: the row with key {_keys(table, [rows[line - 1]])}"
    return CopyError(f"copying table {table.name} failed ({span}): {_reason(e)}; nothing was written to {where}")


def _is_driver_error(e: Exception) -> bool:
    import sqlite3

    if isinstance(e, sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(e, psycopg.Error)


def verify_stores(source: SQLStore, target: SQLStore, *, batch_size: int = BATCH) -> Verification:
    """Compare every table of two stores by row count and checksum, and their watermarks."""
    where = _check_pair(source, target)
    src_tables, tgt_tables = _layouts(source, target, where)
    return _verify(source, target, src_tables, tgt_tables, parents_first(tgt_tables), batch_size)


def _verify(source: SQLStore, target: SQLStore, src_tables: dict[str, Table], tgt_tables: dict[str, Table],
            order: list[str], size: int) -> Verification:  # fmt: skip
    sides = []
    for store, tables in ((source, src_tables), (target, tgt_tables)):
        db = store.database
        with _snapshot(db) as tx:
            # both sides list the columns in the source's order, so equal rows hash alike
            digests = {n: _digest_table(tx, db.dialect, _as_source(tables[n], src_tables[n]), size) for n in order}
        sides.append((digests, store.watermark()))  # what the home's indexes catch up from
    (src, src_mark), (tgt, tgt_mark) = sides
    checks = [TableCheck(n, src[n].rows, tgt[n].rows, src[n].hexdigest(), tgt[n].hexdigest()) for n in order]
    return Verification(checks, src_mark, tgt_mark)


def _as_source(table: Table, source: Table) -> Table:
    """``table`` read with the source's column and key order."""
    return Table(table.name, source.columns, source.key, table.parents, table.counter)
