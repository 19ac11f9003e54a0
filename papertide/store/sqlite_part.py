"""What the parts of the SQLite store that share its connection have in common.

The community and mailing stores live in the same database file as the papers and use
:class:`~papertide.store.sqlite.SQLiteStore`'s one connection, its ``BEGIN IMMEDIATE``
transaction helper and its lock; reads take the lock too, so they never see another
thread's transaction half done.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import Callable, Iterable


class SQLitePart:
    def __init__(self, db: sqlite3.Connection, transaction: Callable[[], AbstractContextManager],
                 lock: threading.RLock) -> None:  # fmt: skip
        self._db = db
        self._tx = transaction
        self._lock = lock

    def _all(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _first(self, sql: str, params: Iterable = ()) -> tuple | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None
