"""Rate-limit state in the store's database (table ``rate_limits``, m004), for every process at once.

:class:`SQLLimits` is :class:`~papertide.store.limits.Limits` in SQL that SQLite and
PostgreSQL both run. A check reads the key's row, lets the limiter's step decide, and
writes only if the row is still what it read — a compare-and-swap, each statement
committing itself:

- ``UPDATE ... WHERE key = ? AND state = ? AND expires = ? RETURNING key`` (PostgreSQL
  re-checks that condition on the newest row after waiting for a concurrent writer), or
  for a new key ``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key``;
- no row back means another request of some process changed the key first: read and
  decide again. After :data:`SWAPS` lost races the check takes the row's lock instead
  (``SELECT ... FOR UPDATE``, decide, write, in one transaction; on SQLite the write
  transaction excludes other writers anyway), so a hot key still makes progress.

Either way every request is counted exactly once, by all processes together. A refused
request is one read and writes nothing, so a flood of refused requests neither takes
SQLite's write lock nor a PostgreSQL row lock. The optimistic path costs two statements
where the locked one costs four (BEGIN, SELECT, UPDATE, COMMIT): on PostgreSQL each is
a round trip. Its writes go through :meth:`Database.all`: one statement, ``RETURNING``
the rows it changed, committed on its own (autocommit on both backends).

Every :data:`~papertide.store.limits.SWEEP_EVERY` updates, a separate short transaction
deletes at most :data:`~papertide.store.limits.SWEEP_BATCH` expired rows, oldest first,
skipping rows other transactions hold (PostgreSQL ``SKIP LOCKED``), so the table stays
bounded without ever blocking a check. Database errors become
:class:`~papertide.store.limits.LimitsUnavailable`.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from papertide.errors import StoreError
from papertide.store.db import Database, Part, Tx
from papertide.store.limits import (
    KEEP,
    SWEEP_BATCH,
    SWEEP_EVERY,
    Decision,
    Limits,
    LimitsUnavailable,
    R,
    Step,
    check_decision,
    check_key,
    check_time,
)
from papertide.store.rows import dumps

log = logging.getLogger(__name__)

SWAPS = 4  # optimistic attempts before a check takes the row's lock
RACES = 5  # attempts at creating a key that other processes keep creating and deleting meanwhile

_SELECT = "SELECT state, expires FROM rate_limits WHERE key = ?"
_SAME = "key = ? AND state = ? AND expires = ?"  # the row as it was read
_UPDATE_IF = f"UPDATE rate_limits SET state = ?, expires = ? WHERE {_SAME} RETURNING key"
_INSERT_NEW = "INSERT INTO rate_limits (key, state, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING key"
_DELETE_IF = f"DELETE FROM rate_limits WHERE {_SAME} RETURNING key"


def _driver_errors(dialect: str) -> tuple[type[BaseException], ...]:
    """The exceptions a failing database raises on this backend (besides the store's own)."""
    if dialect == "postgresql":
        import psycopg

        return (StoreError, psycopg.Error)
    return (StoreError, sqlite3.Error)


def _load(row: tuple | None, now: float) -> Any:
    """The live state of a row (None: no row, expired, or not JSON)."""
    if row is None or not row[1] > now:
        return None
    try:
        return json.loads(row[0])
    except (TypeError, ValueError):
        return None


class SQLLimits(Part, Limits):
    """Rate-limit state in the ``rate_limits`` table of the store's :class:`Database`."""

    def __init__(self, db: Database, *, sweep_every: int = SWEEP_EVERY, sweep_batch: int = SWEEP_BATCH,
                 swaps: int = SWAPS) -> None:  # fmt: skip
        super().__init__(db)
        if sweep_every < 1 or sweep_batch < 1 or swaps < 0:
            raise ValueError("SQLLimits needs sweep_every >= 1, sweep_batch >= 1 and swaps >= 0")
        self.sweep_every, self.sweep_batch, self.swaps = sweep_every, sweep_batch, swaps
        self._calls = itertools.count(1)  # next() is atomic under the GIL: one count per update
        self._errors = _driver_errors(db.dialect)

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except LimitsUnavailable:
            raise
        except self._errors as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            raise LimitsUnavailable(f"cannot {what} the rate limits in the store: {reason}") from e

    # ------------------------------------------------------------------ checks
    def update(self, key: str, now: float, step: Step[R]) -> R:
        key, now = check_key(key), check_time(now)
        with self._guard("update"):
            decision = self._optimistic(key, now, step) or self._locked(key, now, step)
        if next(self._calls) % self.sweep_every == 0:
            self._sweep_quietly(now)
        return decision.result

    def _optimistic(self, key: str, now: float, step: Step[R]) -> Decision[R] | None:
        """Read, decide, and write only if the row is still what was read (compare-and-swap, each
        one self-committing statement); None after ``swaps`` lost races."""
        for _ in range(self.swaps):
            row = self._first(_SELECT, (key,))
            decision = check_decision(step(_load(row, now)))
            if decision.state is KEEP or self._swap(key, row, decision):
                return decision
        return None

    def _swap(self, key: str, row: tuple | None, decision: Decision) -> bool:
        """Write ``decision`` when ``key``'s row is still ``row``; whether it was."""
        if decision.state is None:
            if row is None:
                return True
            sql, params = _DELETE_IF, (key, *row)
        elif row is None:
            sql, params = _INSERT_NEW, (key, dumps(decision.state), float(decision.expires))
        else:
            sql, params = _UPDATE_IF, (dumps(decision.state), float(decision.expires), key, *row)
        return bool(self._all(sql, params))

    def _locked(self, key: str, now: float, step: Step[R]) -> Decision[R]:
        """The same in a transaction that locks the row: no lost race, however hot the key."""
        for _ in range(RACES):
            with self._tx() as tx:
                decision = self._apply(tx, key, now, step)
            if decision is not None:
                return decision
        raise LimitsUnavailable(f"the rate limit {key!r} was created and deleted {RACES} times during one check")

    @staticmethod
    def _apply(tx: Tx, key: str, now: float, step: Step[R]) -> Decision[R] | None:
        """One locked read-decide-write of ``key``; None when a new row lost the race to create it."""
        row = tx.one(_SELECT + tx.for_update, (key,))
        decision = check_decision(step(_load(row, now)))
        if decision.state is KEEP:
            return decision
        if decision.state is None:
            if row is not None:
                tx.execute("DELETE FROM rate_limits WHERE key = ?", (key,))
            return decision
        state, expires = dumps(decision.state), float(decision.expires)
        if row is not None:
            tx.execute("UPDATE rate_limits SET state = ?, expires = ? WHERE key = ?", (state, expires, key))
            return decision
        return decision if tx.one(_INSERT_NEW, (key, state, expires)) else None

    def state(self, key: str, now: float) -> Any:
        key, now = check_key(key), check_time(now)
        with self._guard("read"):
            return _load(self._first(_SELECT, (key,)), now)

    def forget(self, key: str) -> None:
        key = check_key(key)
        with self._guard("update"), self._tx() as tx:
            tx.execute("DELETE FROM rate_limits WHERE key = ?", (key,))

    # ------------------------------------------------------------- bookkeeping
    def sweep(self, now: float, limit: int | None = None) -> int:
        now = check_time(now)
        limit = self.sweep_batch if limit is None else max(0, int(limit))
        with self._guard("sweep"), self._tx() as tx:
            skip = tx.for_update + " SKIP LOCKED" if tx.for_update else ""
            cur = tx.execute(
                "DELETE FROM rate_limits WHERE key IN "
                f"(SELECT key FROM rate_limits WHERE expires <= ? ORDER BY expires LIMIT ?{skip}) AND expires <= ?",
                (now, limit, now),
            )
            return max(0, cur.rowcount)

    def _sweep_quietly(self, now: float) -> None:
        """A sweep whose failure is logged, never the request's: its check is done."""
        try:
            self.sweep(now)
        except LimitsUnavailable as e:
            log.warning("%s", e)

    def count(self, prefix: str = "") -> int:
        if not isinstance(prefix, str):
            raise TypeError(f"a key prefix must be a string, not {type(prefix).__name__}")
        with self._guard("read"):
            if not prefix:
                return int(self._first("SELECT COUNT(*) FROM rate_limits")[0])
            row = self._first("SELECT COUNT(*) FROM rate_limits WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
            return int(row[0])
