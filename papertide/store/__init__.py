"""All persistence. Nothing outside this package opens a connection or writes SQL.

:func:`open_store` picks the backend from the settings: the embedded SQLite file in
the papertide home by default, or the database named by ``database_url``.
"""

from __future__ import annotations

from papertide.config import Config
from papertide.errors import StoreError
from papertide.store.base import Batch, Change, Store, WriteResult

__all__ = ["Batch", "Change", "Store", "WriteResult", "open_store"]


def open_store(config: Config) -> Store:
    url = config.database_url
    if not url:
        from papertide.store.sqlite import SQLiteStore

        return SQLiteStore(config.db_path)
    if url.startswith("sqlite:///"):
        from papertide.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        from papertide.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=config.database_pool, timeout=config.timeout)
    raise StoreError(f"unsupported database_url {url.split(':')[0]!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")
