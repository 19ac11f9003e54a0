"""The store, written once over a :class:`~papertide.store.db.Database`.

:class:`SQLStore` implements :class:`~papertide.store.base.Store` in SQL that SQLite and
PostgreSQL both run; each backend module (:mod:`papertide.store.sqlite`,
:mod:`papertide.store.postgres`) only opens its :class:`Database` and hands it here, so
the two behave alike by construction. Every write of papers is one transaction that
first takes the ``papers`` key (:meth:`Tx.serialize`): writers read, merge and write in
turn, and the change log's sequence numbers (``MAX(seq) + 1``) are handed out in commit
order, so an index catching up from a watermark never skips a change committed later.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from papertide.errors import NotFoundError, StoreError
from papertide.paper import Paper, title_key
from papertide.sources import Signal
from papertide.store.base import Batch, Change, SortOrder, Store, WriteResult, merge_duplicates, plan_upserts
from papertide.store.community_sql import SQLCommunity
from papertide.store.db import Database, Tx, chunks, marks
from papertide.store.limits_sql import SQLLimits
from papertide.store.mailing_sql import SQLMailing
from papertide.store.migrations import MIGRATIONS
from papertide.store.rows import (
    PAPER_COLUMNS,
    READ_COLUMNS,
    author_rows,
    category_rows,
    dumps,
    now_iso,
    paper_to_row,
    row_to_paper,
)

_UPSERT_SQL = (
    f"INSERT INTO papers ({', '.join(PAPER_COLUMNS)}, deleted, added_at, modified_at, seq) "
    f"VALUES ({marks(len(PAPER_COLUMNS))}, 0, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in PAPER_COLUMNS[1:])
    + ", deleted = 0, modified_at = excluded.modified_at, seq = excluded.seq"
)


class SQLStore(Store):
    """Papers, signals, checkpoints and the change log, plus the community and mailing parts."""

    def __init__(self, db: Database, where: str) -> None:
        self.database = db
        self._where = where  # named in errors: the file or the server
        self._hint = "INDEXED BY papers_submitted " if db.dialect == "sqlite" else ""
        self._migrate()
        self._community = SQLCommunity(db)
        self._mailing = SQLMailing(db)
        self._limits = SQLLimits(db)

    @property
    def community(self) -> SQLCommunity:
        """The community data in this database."""
        return self._community

    @property
    def mailing(self) -> SQLMailing:
        """Digest subscriptions, send log and mail events in this database."""
        return self._mailing

    @property
    def limits(self) -> SQLLimits:
        """Rate-limit state in this database, shared by every process using it."""
        return self._limits

    # ------------------------------------------------------------------ plumbing
    def _migrate(self) -> None:
        """Apply the migrations not applied yet, each in its own transaction; concurrent
        openers (several app servers starting at once) take turns on the ``migrate`` key."""
        with self.database.transaction() as tx:
            tx.serialize("migrate")
            tx.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in tx.execute("SELECT name FROM migrations")}
        unknown = done - {m.__name__ for m in MIGRATIONS}
        if unknown:
            raise StoreError(
                f"{self._where} was written by a newer papertide (migrations {', '.join(sorted(unknown))}); "
                "upgrade papertide"
            )
        for m in MIGRATIONS:
            if m.__name__ in done:
                continue
            with self.database.transaction() as tx:
                tx.serialize("migrate")
                if tx.one("SELECT 1 FROM migrations WHERE name = ?", (m.__name__,)):
                    continue  # another process applied it while this one waited
                m(tx, self.database.dialect)
                tx.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (m.__name__, now_iso()))

    def applied_migrations(self) -> list[str]:
        return [r[0] for r in self.database.all("SELECT name FROM migrations ORDER BY name")]

    def close(self) -> None:
        self.database.close()

    # -------------------------------------------------------------------- writes
    @staticmethod
    def _existing(tx: Tx, ids: list[str]) -> dict[str, tuple]:
        """Stored rows (READ_COLUMNS + deleted) for the given ids."""
        found: dict[str, tuple] = {}
        for chunk, qs in chunks(ids):
            for row in tx.execute(f"SELECT {READ_COLUMNS}, deleted FROM papers WHERE id IN ({qs})", chunk):
                found[row[0]] = row
        return found

    def write(self, batch: Batch) -> WriteResult:
        result = WriteResult()
        now = now_iso()
        with self.database.transaction() as db:
            db.serialize("papers")
            incoming = merge_duplicates(batch.papers)
            plan = plan_upserts(incoming, self._existing(db, list(incoming)), result)
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            rows, changes = [], []
            for up in plan:
                seq += 1
                rows.append(paper_to_row(up.paper, up.hash) + (now, now, seq))
                changes.append((seq, up.paper.id, "upsert", now))
            if rows:
                self._unlink(db, [up.old for up in plan if up.old is not None])
                db.executemany(_UPSERT_SQL, rows)
                db.executemany(
                    "INSERT INTO paper_authors (name_key, paper_id, position) VALUES (?, ?, ?)",
                    [r for up in plan for r in author_rows(up.paper)],
                )
                db.executemany(
                    "INSERT INTO paper_categories (category, paper_id) VALUES (?, ?)",
                    [r for up in plan for r in category_rows(up.paper)],
                )
            gone = self._existing(db, list(dict.fromkeys(batch.deleted)))
            for pid, row in gone.items():
                if row[-1]:
                    continue  # already deleted
                seq += 1
                db.execute("UPDATE papers SET deleted = 1, modified_at = ?, seq = ? WHERE id = ?", (now, seq, pid))
                self._unlink(db, [row_to_paper(row[:-1])])
                changes.append((seq, pid, "delete", now))
                result.deleted.append(pid)
            if changes:
                db.executemany("INSERT INTO changes (seq, paper_id, op, at) VALUES (?, ?, ?, ?)", changes)
            self._write_signals(db, batch.signals, result, now)
            if batch.checkpoint is not None:
                self._put_checkpoint(db, batch.checkpoint.name, batch.checkpoint.state, now)
        return result

    @staticmethod
    def _unlink(db: Tx, papers: list[Paper]) -> None:
        """Remove stored papers' rows from the author and category lookup tables."""
        if not papers:
            return
        db.executemany(
            "DELETE FROM paper_authors WHERE name_key = ? AND paper_id = ? AND position = ?",
            [r for p in papers for r in author_rows(p)],
        )
        db.executemany(
            "DELETE FROM paper_categories WHERE category = ? AND paper_id = ?",
            [r for p in papers for r in category_rows(p)],
        )

    def _write_signals(self, db: Tx, signals: list[Signal], result: WriteResult, now: str) -> None:
        if not signals:
            return
        present = set(self._existing(db, list({s.paper_id for s in signals})))
        rows = []
        for s in signals:
            if s.paper_id not in present:
                result.orphans.append(s.paper_id)
                continue
            rows.append((s.paper_id, s.source, int(s.upvotes), s.day, dumps(s.data), now))
        db.executemany(
            "INSERT INTO signals (paper_id, source, upvotes, day, data, observed_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (paper_id, source) DO UPDATE SET upvotes = excluded.upvotes, "
            "day = COALESCE(excluded.day, signals.day), data = excluded.data, observed_at = excluded.observed_at",
            rows,
        )
        result.signals += len(rows)

    @staticmethod
    def _put_checkpoint(db: Tx, name: str, state: dict, now: str) -> None:
        db.execute(
            "INSERT INTO checkpoints (name, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (name, dumps(state), now),
        )

    def set_checkpoint(self, name: str, state: dict) -> None:
        with self.database.transaction() as db:
            self._put_checkpoint(db, name, state, now_iso())

    # --------------------------------------------------------------------- reads
    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.database.all(sql, params)

    def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self.database.first(sql, params)

    def get(self, paper_id: str) -> Paper:
        row = self._one(f"SELECT {READ_COLUMNS} FROM papers WHERE id = ? AND deleted = 0", (paper_id,))
        if row is None:
            raise NotFoundError(f"no paper {paper_id!r} in the store")
        return row_to_paper(row)

    def get_many(self, ids: Iterable[str]) -> dict[str, Paper]:
        ids = list(dict.fromkeys(ids))
        with self.database.reading() as tx:
            rows = self._existing(tx, ids)
        return {pid: row_to_paper(r[:-1]) for pid, r in rows.items() if not r[-1]}

    def iter_papers(self, *, batch_size: int = 1000) -> Iterator[Paper]:
        last = ""
        while True:
            rows = self._rows(
                f"SELECT {READ_COLUMNS} FROM papers WHERE deleted = 0 AND id > ? ORDER BY id LIMIT ?",
                (last, batch_size),
            )
            if not rows:
                return
            for r in rows:
                yield row_to_paper(r)
            last = rows[-1][0]

    def list_papers(self, *, limit: int = 20, offset: int = 0, order: SortOrder = "submitted") -> list[Paper]:
        orders = {
            # undated papers last on both backends; on SQLite walking the index (INDEXED BY)
            # keeps the newest page ~0.2 ms at 100k papers instead of a full sort
            "submitted": "submitted DESC NULLS LAST, id",
            "id": "id",
            "changed": "seq DESC",
            "added": "added_at, seq",
        }
        if order not in orders:
            raise ValueError(f"order must be one of {', '.join(orders)}, not {order!r}")
        rows = self._rows(
            f"SELECT {READ_COLUMNS} FROM papers {self._hint if order == 'submitted' else ''}"
            f"WHERE deleted = 0 ORDER BY {orders[order]} LIMIT ? OFFSET ?",
            (int(limit), int(offset)),
        )
        return [row_to_paper(r) for r in rows]

    def paper_ids(self, *, author: str | None = None, category: str | None = None, limit: int = 10_000) -> list[str]:
        if (author is None) == (category is None):
            raise ValueError("give exactly one of author or category")
        if author is not None:
            sql, key = "SELECT DISTINCT paper_id FROM paper_authors WHERE name_key = ?", title_key(author)
        else:
            sql, key = "SELECT paper_id FROM paper_categories WHERE category = ?", category
        return [r[0] for r in self._rows(sql + " ORDER BY paper_id LIMIT ?", (key, int(limit)))]

    def count(self) -> int:
        return self._one("SELECT COUNT(*) FROM papers WHERE deleted = 0")[0]

    def stats(self) -> dict:
        q, one = self._rows, self._one
        by_source = dict(q("SELECT source, COUNT(*) FROM papers WHERE deleted = 0 GROUP BY source ORDER BY 2 DESC"))
        top_cats = q(
            "SELECT primary_category, COUNT(*) FROM papers WHERE deleted = 0 AND primary_category IS NOT NULL "
            "GROUP BY primary_category ORDER BY 2 DESC, 1 LIMIT 10"
        )
        first, last = one("SELECT MIN(submitted), MAX(submitted) FROM papers WHERE deleted = 0")
        return {
            "papers": self.count(),
            "deleted": one("SELECT COUNT(*) FROM papers WHERE deleted = 1")[0],
            "authors": one("SELECT COUNT(DISTINCT name_key) FROM paper_authors")[0],
            "signals": one("SELECT COUNT(*) FROM signals")[0],
            "by_source": by_source,
            "top_categories": dict(top_cats),
            "submitted_range": [first, last],
            "watermark": self.watermark(),
            **self.database.describe(),
        }

    def signals(self, paper_id: str) -> list[Signal]:
        rows = self._rows(
            "SELECT paper_id, source, upvotes, day, data FROM signals WHERE paper_id = ? ORDER BY source", (paper_id,)
        )
        return [Signal(pid, src, up, day, json.loads(data)) for pid, src, up, day, data in rows]

    def signals_many(self, ids: Iterable[str], *, source: str | None = None) -> dict[str, list[Signal]]:
        ids = list(dict.fromkeys(ids))
        where, extra = ("AND source = ?", (source,)) if source is not None else ("", ())
        out: dict[str, list[Signal]] = {}
        for chunk, qs in chunks(ids):
            sql = (f"SELECT paper_id, source, upvotes, day, data FROM signals "
                   f"WHERE paper_id IN ({qs}) {where} ORDER BY paper_id, source")
            for pid, src, up, day, data in self._rows(sql, (*chunk, *extra)):
                out.setdefault(pid, []).append(Signal(pid, src, up, day, json.loads(data)))
        return out

    def get_checkpoint(self, name: str) -> dict | None:
        row = self._one("SELECT state FROM checkpoints WHERE name = ?", (name,))
        return json.loads(row[0]) if row else None

    # ---------------------------------------------------------------- change log
    def watermark(self) -> int:
        return self._one("SELECT COALESCE(MAX(seq), 0) FROM changes")[0]

    def changes_since(self, seq: int, *, limit: int = 10_000) -> list[Change]:
        rows = self._rows(
            "SELECT seq, paper_id, op, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (int(seq), int(limit))
        )
        return [Change(*r) for r in rows]
