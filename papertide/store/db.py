"""One database backend's connections, as the shared store code sees them.

The store's SQL is written once, with ``?`` placeholders, in :mod:`papertide.store.sql`,
:mod:`~papertide.store.community_sql` and :mod:`~papertide.store.mailing_sql`. A
:class:`Database` runs it on one backend: the embedded SQLite file
(:mod:`papertide.store.sqlite`) or a PostgreSQL server (:mod:`papertide.store.postgres`).
It gives the same guarantees on both:

- :meth:`Database.transaction` is one atomic transaction; an exception rolls it back.
- :meth:`Tx.serialize` makes the transactions that name the same key run one after the
  other (SQLite's writers are serialized anyway; PostgreSQL takes a transaction-scoped
  advisory lock). The change log's sequence numbers and read-merge-write upserts rely on it.
- :attr:`Tx.for_update` locks the rows a ``SELECT`` reads until the transaction ends
  (empty on SQLite, whose write transaction already excludes every other writer).
- A broken unique or foreign-key constraint raises :class:`UniqueViolation` or
  :class:`ForeignKeyViolation`, whatever the driver calls it.
- :meth:`Database.all` and :meth:`Database.first` read with one statement;
  :meth:`Database.reading` gives several reads one consistent snapshot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Iterable, Iterator, Protocol, Sequence

from papertide.errors import StoreError

CHUNK = 500  # ids per IN (...) query


class UniqueViolation(StoreError):
    """An INSERT or UPDATE broke a unique constraint."""


class ForeignKeyViolation(StoreError):
    """A row refers to one that does not exist (or is still referred to)."""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> tuple | None: ...

    def fetchall(self) -> list[tuple]: ...

    def __iter__(self) -> Iterator[tuple]: ...


class Tx(ABC):
    """One open transaction (or snapshot, for :meth:`Database.reading`)."""

    for_update: str = ""  # appended to a SELECT to lock the rows it reads

    @abstractmethod
    def execute(self, sql: str, params: Sequence = ()) -> Cursor: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None: ...

    def serialize(self, key: str) -> None:
        """Wait until no other transaction holding ``key`` is open, then hold it until this one ends."""

    def one(self, sql: str, params: Sequence = ()) -> tuple | None:
        return self.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Sequence = ()) -> object:
        row = self.one(sql, params)
        return None if row is None else row[0]


class Database(ABC):
    dialect: str  # "sqlite" or "postgresql": picks the migrations' dialect words

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction: committed when the block ends, rolled back on an exception."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Tx]:
        """Several reads that see one consistent state of the database."""

    @abstractmethod
    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """The rows of one statement, run on its own (autocommit): a read, or a single-statement
        write whose atomicity is the statement's own (``UPDATE … WHERE state = ? RETURNING``)."""

    def first(self, sql: str, params: Sequence = ()) -> tuple | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    def describe(self) -> dict:
        """What :meth:`Store.stats` reports about where the data lives (backend, place, size)."""

    @abstractmethod
    def close(self) -> None: ...


def marks(n: int) -> str:
    """``?, ?, ?`` for ``n`` values."""
    return ", ".join("?" * n)


def chunks(ids: list) -> Iterator[tuple[list, str]]:
    """Slices of ``ids`` small enough for one ``IN (...)``, with their placeholders."""
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        yield chunk, marks(len(chunk))


class Part:
    """A part of a store (community, mailing) sharing the store's :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _tx(self) -> AbstractContextManager[Tx]:
        return self._db.transaction()

    def _all(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return self._db.all(sql, tuple(params))

    def _first(self, sql: str, params: Iterable = ()) -> tuple | None:
        return self._db.first(sql, tuple(params))
