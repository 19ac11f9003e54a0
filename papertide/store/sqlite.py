"""The embedded default store: one SQLite file in WAL mode under the papertide home.

WAL lets readers (the web app) run while an ingest writes; every write is a
``BEGIN IMMEDIATE`` transaction, so an interrupted ingest leaves whole batches and a
re-run completes it, and writers of all processes take turns: ``busy_timeout`` makes
them wait instead of failing. One store object may be shared by threads (a web
server's workers): one connection holds one transaction, so transactions and reads take
a lock, and a read never sees another thread's transaction half done.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from papertide.errors import StoreError
from papertide.store.db import Cursor, Database, ForeignKeyViolation, Tx, UniqueViolation
from papertide.store.sql import SQLStore


class SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence = ()) -> Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.IntegrityError as e:
            raise _violation(e) from None

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError as e:
            raise _violation(e) from None


def _violation(e: sqlite3.IntegrityError) -> Exception:
    text = str(e)
    if "UNIQUE" in text or "PRIMARY KEY" in text:
        return UniqueViolation(text)
    if "FOREIGN KEY" in text:
        return ForeignKeyViolation(text)
    return e


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # one transaction at a time on the shared connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA cache_size = -65536")  # 64 MiB of page cache for bulk ingests
            self.conn.execute("PRAGMA wal_autocheckpoint = 8192")  # checkpoint every 32 MiB, not 4
        except (sqlite3.DatabaseError, OSError) as e:
            raise StoreError(f"cannot open the store at {self.path}: {e}") from None
        self._tx = SQLiteTx(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._tx
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        with self._lock:  # no other thread's transaction is open on this connection meanwhile
            yield self._tx

    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def describe(self) -> dict:
        return {"backend": "sqlite", "path": str(self.path),
                "bytes": self.path.stat().st_size if self.path.exists() else 0}  # fmt: skip

    def close(self) -> None:
        self.conn.close()


class SQLiteStore(SQLStore):
    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        db = SQLiteDatabase(path, timeout=timeout)
        try:
            super().__init__(db, str(self.path))
        except sqlite3.DatabaseError as e:
            db.close()
            raise StoreError(f"cannot open the store at {self.path}: {e}") from None

    @property
    def db(self) -> sqlite3.Connection:
        """The SQLite connection itself (for SQLite-only checks: PRAGMAs, the file)."""
        return self.database.conn
