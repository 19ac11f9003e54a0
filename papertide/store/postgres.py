"""The store on a PostgreSQL server, for sites that run several app servers and workers.

It is the same store as the embedded SQLite one: the SQL in :mod:`papertide.store.sql`,
:mod:`~papertide.store.community_sql` and :mod:`~papertide.store.mailing_sql` and the
migrations in :mod:`~papertide.store.migrations` run here unchanged. This module only
supplies a :class:`~papertide.store.db.Database` over psycopg 3:

- a connection pool (psycopg_pool) per process, connections in autocommit mode; a
  transaction is ``BEGIN``/``COMMIT`` on one pooled connection, a read one statement;
- ``?`` placeholders become psycopg's ``%s``, booleans are bound as the 0/1 integers
  the schema stores;
- :meth:`Tx.serialize` is a transaction-scoped advisory lock, :attr:`Tx.for_update`
  is ``FOR UPDATE``; unique and foreign-key violations raise the store's own errors;
- text must sort byte-wise as on SQLite (paper ids page by ``id > ?``, dates are text),
  so a database whose collation is not ``C`` is refused with the command that makes one.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterable, Iterator, Sequence
from weakref import WeakKeyDictionary

import psycopg
from psycopg import errors as pgerrors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from papertide.errors import StoreError
from papertide.store.db import Cursor, Database, ForeignKeyViolation, Tx, UniqueViolation
from papertide.store.sql import SQLStore

BYTEWISE_COLLATIONS = ("C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic")


@lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _bind(params: Sequence) -> tuple:
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


def lock_key(key: str) -> int:
    """A stable signed 64-bit advisory lock number for ``key``."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def where(url: str) -> str:
    """The URL's server and database without its password, for messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL server (unreadable URL)"
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    return f"PostgreSQL database {info.get('dbname') or info.get('user') or '?'!r} on {host}{port}"


class PostgresTx(Tx):
    for_update = " FOR UPDATE"

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence = ()) -> Cursor:
        try:
            return self.conn.execute(translate(sql), _bind(params))
        except pgerrors.UniqueViolation as e:
            raise UniqueViolation(str(e).strip()) from None
        except pgerrors.ForeignKeyViolation as e:
            raise ForeignKeyViolation(str(e).strip()) from None

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.executemany(translate(sql), [_bind(r) for r in rows])
        except pgerrors.UniqueViolation as e:
            raise UniqueViolation(str(e).strip()) from None
        except pgerrors.ForeignKeyViolation as e:
            raise ForeignKeyViolation(str(e).strip()) from None

    def serialize(self, key: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(key),))


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 30.0) -> None:
        self.url, self.where = url, where(url)
        self._timeout = timeout
        try:  # one plain connection first: its error names the real problem (refused, auth, no such database)
            with psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
                self._check_server(conn)
        except psycopg.Error as e:
            raise StoreError(f"cannot open the store in {self.where}: {_reason(e)}") from None
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, int(pool_size)),
            kwargs={"autocommit": True},
            timeout=timeout,
            check=_check_if_idle,  # a server restart costs a check, not a failed request
            name="papertide",
            open=False,
        )
        try:
            self.pool.open(wait=True, timeout=timeout)
        except PoolTimeout as e:
            self.pool.close()
            raise StoreError(f"cannot open the store in {self.where}: {e}") from None

    def _check_server(self, conn: psycopg.Connection) -> None:
        collation, encoding = conn.execute(
            "SELECT datcollate, pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        if conn.info.server_version >= 150000:  # an ICU database sorts by its ICU locale, whatever datcollate says
            provider = conn.execute("SELECT datlocprovider FROM pg_database WHERE datname = current_database()")
            if provider.fetchone()[0] == "i":
                collation = "ICU"
        if collation not in BYTEWISE_COLLATIONS:
            raise StoreError(
                f"{self.where} sorts text by the {collation} collation; papertide needs byte order, as on SQLite. "
                "Create the database with: CREATE DATABASE papertide TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'"
            )
        if encoding != "UTF8":
            raise StoreError(f"{self.where} is encoded as {encoding}; papertide needs UTF8")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection() as conn:
                yield conn
                _last_used[conn] = time.monotonic()
        except PoolTimeout:
            raise StoreError(
                f"no connection to {self.where} came free within {self._timeout:g} s "
                f"(pool of {self.pool.max_size}; raise database_pool or the server's max_connections)"
            ) from None
        except psycopg.OperationalError as e:
            raise StoreError(f"{self.where}: {_reason(e)}") from None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            yield PostgresTx(conn)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield PostgresTx(conn)

    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._connection() as conn:
            return conn.execute(translate(sql), _bind(params)).fetchall()

    def describe(self) -> dict:
        size = self.first("SELECT pg_database_size(current_database())")[0]
        return {"backend": "postgresql", "path": self.where, "bytes": int(size)}

    def extension_available(self, name: str) -> bool:
        return self.first("SELECT 1 FROM pg_available_extensions WHERE name = ?", (name,)) is not None

    def close(self) -> None:
        self.pool.close()


_last_used: WeakKeyDictionary[psycopg.Connection, float] = WeakKeyDictionary()
CHECK_AFTER = 2.0  # seconds idle after which a pooled connection is checked before it is lent


def _check_if_idle(conn: psycopg.Connection) -> None:
    """The pool's check before lending a connection: a round trip (``ConnectionPool.check_connection``)
    only for one idle for a while, the kind a server restart or a network cut leaves broken; one in
    steady use goes out at once (the check would double every read's round trips under load)."""
    if time.monotonic() - _last_used.get(conn, 0.0) > CHECK_AFTER:
        ConnectionPool.check_connection(conn)


def _reason(e: psycopg.Error) -> str:
    return " ".join(str(e).split()) or type(e).__name__


class PostgresStore(SQLStore):
    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 30.0) -> None:
        db = PostgresDatabase(url, pool_size=pool_size, timeout=timeout)
        try:
            super().__init__(db, db.where)
        except BaseException:
            db.close()
            raise
