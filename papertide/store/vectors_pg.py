"""Paper embeddings in PostgreSQL, searched by pgvector's HNSW index.

On a PostgreSQL store with the ``vector`` extension, dense search can run in the
database instead of in every app server's memory (``vector_search`` setting). This
module is the whole pgvector side, and the only place its SQL lives:

- ``paper_vectors (paper_id, embedding vector(D))``: one unit vector per live paper,
  the same vectors papertide's own dense index holds (``papertide index`` keeps the two
  in step), with an HNSW index on the inner product (``vector_ip_ops``: for unit
  vectors that is the cosine, without the norms' cost);
- ``paper_vectors_state``: one row saying which embedding model the vectors come from,
  their dimension and the store watermark they cover.

Both are made on first use, never by the migrations: the extension may be missing,
and creating it needs rights the store's user may not have (:class:`PgVectorError`
says which). Writes take turns on one :meth:`Tx.serialize` key. A full (re)build loads
a new table and builds its index beside the old one, then swaps them in one short
transaction, so searches keep being answered meanwhile.

Filters. HNSW finds the nearest vectors first and filters afterwards, so a selective
filter loses results (pgvector 0.6 returns at most ``hnsw.ef_search`` rows, then
filters them). :meth:`PgVectors.search` therefore chooses by the filter's size: a few
allowed papers (``EXACT_BELOW``) are scored exactly; a broad filter reads enough HNSW
neighbours that about twice ``k`` of them are expected to pass, with ``ef_search``
twice that (recall@10 0.98 at 5% of 100k papers allowed, 0.998 at 20%); when that
would need more than pgvector's limit of 1,000 or does not yield ``k``, the allowed
papers are scored exactly.
"""

from __future__ import annotations

import logging
import math
import struct
import weakref
from dataclasses import dataclass
from typing import Collection, Iterable, Sequence

import numpy as np
import psycopg
from psycopg import errors as pgerrors
from psycopg.adapt import Dumper
from psycopg.pq import Format

from papertide.errors import StoreError
from papertide.store.db import Database

log = logging.getLogger("papertide.store.vectors_pg")

TABLE = "paper_vectors"
LOCK = "paper_vectors"  # the Tx.serialize key of every write
HNSW_M = 16  # pgvector's defaults; measured on 100k embedding-like vectors in bench/pgvector_bench.py
HNSW_EF_CONSTRUCTION = 64
EF_SEARCH = 100  # neighbours HNSW visits at least (pgvector's default is 40: recall@10 0.986 vs 0.998 here)
EF_SEARCH_MAX = 1000  # pgvector's upper bound for hnsw.ef_search
EXACT_BELOW = 2000  # allowed papers scored exactly without HNSW (~15 ms at 1,000 of 100k here)
FILTER_SLACK = 2.0  # a broad filter reads this many times the neighbours expected to hold k allowed ones
BUILD_MEMORY = 1 << 30  # maintenance_work_mem for a build at most: 100k vectors built in 96 s in memory, 623 s not
GRAPH_BYTES = 2600  # per 384-d vector, for the build's memory estimate (195 MB index for 100k)
COPY_ROWS = 20_000  # rows per COPY buffer


class PgVectorError(StoreError):
    """pgvector cannot be used here: not PostgreSQL, the extension missing, or no right to create it."""


@dataclass(frozen=True)
class VectorState:
    """What the table holds: vectors of ``model`` with ``dim`` dimensions, as of store ``watermark``."""

    model: str
    dim: int
    watermark: int


class PgVectors:
    """The pgvector table of one PostgreSQL store (its :class:`~papertide.store.db.Database`)."""

    def __init__(self, database: Database) -> None:
        if database.dialect != "postgresql":
            raise PgVectorError(f"pgvector needs a PostgreSQL store; this one is {database.dialect}")
        self.database = database
        self._dumper: type[Dumper] | None = None  # pgvector's oid differs per database
        self._ready: weakref.WeakSet = weakref.WeakSet()  # connections with the vector dumper registered

    # ------------------------------------------------------------ availability
    @staticmethod
    def supported(database: Database) -> bool:
        """Whether ``database`` is PostgreSQL with the ``vector`` extension installed or installable."""
        if database.dialect != "postgresql":
            return False
        return database.first("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'") is not None

    def installed(self) -> bool:
        return self.database.first("SELECT 1 FROM pg_extension WHERE extname = 'vector'") is not None

    def install(self) -> None:
        """Create the extension if it is not there yet (PgVectorError without the right to)."""
        if self.installed():
            return
        if not self.supported(self.database):
            raise PgVectorError(
                f"{self._where()} has no pgvector (extension 'vector' is not available): install pgvector "
                "on the server, or set vector_search = 'own'")
        try:
            with self.database.transaction() as tx:
                tx.serialize(LOCK)
                tx.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except (psycopg.Error, StoreError) as e:  # InsufficientPrivilege, or a race with another creator
            if self.installed():
                return
            raise PgVectorError(
                f"cannot create the extension 'vector' in {self._where()} ({' '.join(str(e).split())}): "
                "have a superuser (or the database owner, pgvector being trusted from PostgreSQL 13) run "
                "CREATE EXTENSION vector; in it, or set vector_search = 'own'") from None

    def _where(self) -> str:
        return getattr(self.database, "where", "the PostgreSQL store")

    # ------------------------------------------------------------------- state
    def state(self) -> VectorState | None:
        """The table's state, or None when it was never built (or the extension is missing)."""
        if not self._tables_exist():
            return None
        row = self.database.first("SELECT model, dim, watermark FROM paper_vectors_state")
        return None if row is None else VectorState(row[0], int(row[1]), int(row[2]))

    def model(self) -> str | None:
        """The embedding model the vectors come from; None before the first build."""
        s = self.state()
        return None if s is None else s.model

    def count(self) -> int:
        if not self._tables_exist():
            return 0
        return int(self.database.first("SELECT count(*) FROM paper_vectors")[0])

    def _tables_exist(self, tx=None) -> bool:
        sql = "SELECT to_regclass('paper_vectors') IS NOT NULL AND to_regclass('paper_vectors_state') IS NOT NULL"
        row = tx.one(sql) if tx is not None else self.database.first(sql)
        return bool(row and row[0])

    # ------------------------------------------------------------------ writes
    def rebuild(self, batches: Iterable[tuple[Sequence[str], np.ndarray]], *, model: str, dim: int,
                watermark: int) -> int:  # fmt: skip
        """Replace everything with the vectors of ``batches`` ((ids, float matrix) pairs), built
        beside the live table and swapped in at the end; returns the number of vectors."""
        self.install()
        n = 0
        with self.database.transaction() as tx:
            tx.serialize(LOCK)
            conn = tx.conn
            conn.execute("DROP TABLE IF EXISTS paper_vectors_next")
            conn.execute(f"CREATE TABLE paper_vectors_next (paper_id TEXT NOT NULL, embedding vector({int(dim)}) "
                         "NOT NULL, CONSTRAINT paper_vectors_next_pkey PRIMARY KEY (paper_id))")
            for ids, x in batches:
                n += self._copy(conn, "paper_vectors_next", ids, x, dim)
            conn.execute("ALTER TABLE paper_vectors_next ADD CONSTRAINT paper_vectors_next_paper_fkey "
                         "FOREIGN KEY (paper_id) REFERENCES papers (id) ON DELETE CASCADE")
            self._build_index(conn, "paper_vectors_next", n, dim)
            conn.execute("DROP TABLE IF EXISTS paper_vectors")  # waits for running searches, then blocks them
            conn.execute("ALTER TABLE paper_vectors_next RENAME TO paper_vectors")
            for old, new in (("paper_vectors_next_pkey", "paper_vectors_pkey"),
                             ("paper_vectors_next_paper_fkey", "paper_vectors_paper_fkey")):  # fmt: skip
                conn.execute(f"ALTER TABLE paper_vectors RENAME CONSTRAINT {old} TO {new}")
            conn.execute("ALTER INDEX paper_vectors_next_hnsw RENAME TO paper_vectors_hnsw")
            self._put_state(tx, model, dim, watermark)
            conn.execute("ANALYZE paper_vectors")
        return n

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, *, model: str) -> int:
        """Add or replace the vectors of ``ids`` (the table must hold ``model``'s vectors)."""
        x = self._check(ids, vectors)
        if not len(ids):
            return 0
        with self.database.transaction() as tx:
            tx.serialize(LOCK)
            self._check_model(tx, model, x.shape[1])
            conn = tx.conn
            conn.execute(f"CREATE TEMP TABLE paper_vectors_in (paper_id TEXT NOT NULL, "
                         f"embedding vector({x.shape[1]}) NOT NULL) ON COMMIT DROP")
            self._copy(conn, "paper_vectors_in", ids, x, x.shape[1])
            conn.execute("INSERT INTO paper_vectors (paper_id, embedding) SELECT paper_id, embedding "
                         "FROM paper_vectors_in ON CONFLICT (paper_id) DO UPDATE SET embedding = excluded.embedding")
        return len(ids)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove the vectors of ``ids`` (absent ones are ignored); returns how many were removed."""
        ids = list(ids)
        if not ids:
            return 0
        with self.database.transaction() as tx:
            tx.serialize(LOCK)
            if not self._tables_exist(tx):
                return 0
            return tx.conn.execute("DELETE FROM paper_vectors WHERE paper_id = ANY(%s)", (ids,)).rowcount

    def mark(self, watermark: int, *, model: str) -> None:
        """Record that the table now covers the store up to ``watermark``."""
        with self.database.transaction() as tx:
            tx.serialize(LOCK)
            dim = self._check_model(tx, model, None)
            self._put_state(tx, model, dim, watermark)

    def drop(self) -> None:
        """Remove the table and its state (the extension stays)."""
        with self.database.transaction() as tx:
            tx.serialize(LOCK)
            tx.execute("DROP TABLE IF EXISTS paper_vectors_next")
            tx.execute("DROP TABLE IF EXISTS paper_vectors")
            tx.execute("DROP TABLE IF EXISTS paper_vectors_state")

    def _check_model(self, tx, model: str, dim: int | None) -> int:
        if not self._tables_exist(tx):
            raise PgVectorError("the pgvector table was never built: run `papertide index`")
        have_model, have_dim = tx.one("SELECT model, dim FROM paper_vectors_state")
        if have_model != model or (dim is not None and dim != have_dim):
            raise PgVectorError(f"the pgvector table holds {have_model} vectors ({have_dim}-d), not {model} "
                                f"({dim or have_dim}-d): rebuild it")
        return int(have_dim)

    @staticmethod
    def _put_state(tx, model: str, dim: int, watermark: int) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS paper_vectors_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
                   "model TEXT NOT NULL, dim INTEGER NOT NULL, watermark BIGINT NOT NULL, updated_at TIMESTAMPTZ)")
        tx.execute("INSERT INTO paper_vectors_state VALUES (1, ?, ?, ?, now()) ON CONFLICT (id) DO UPDATE SET "
                   "model = excluded.model, dim = excluded.dim, watermark = excluded.watermark, "
                   "updated_at = excluded.updated_at", (model, int(dim), int(watermark)))

    @staticmethod
    def _build_index(conn, table: str, n: int, dim: int) -> None:
        """The HNSW index, its graph built in memory when it fits in ``BUILD_MEMORY``.

        A parallel build shares that memory through /dev/shm; where that is small (64 MB in
        a default Docker container) the build fails, and is done again by one process.
        """
        need = max(64 << 20, min(BUILD_MEMORY, n * GRAPH_BYTES * max(dim, 1) // 384))
        have = conn.execute("SELECT setting::bigint * 1024 FROM pg_settings WHERE name = 'maintenance_work_mem'")
        if need > have.fetchone()[0]:
            conn.execute(f"SET LOCAL maintenance_work_mem = '{need // 1024}kB'")
        create = (f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_ip_ops) "
                  f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
        try:
            with conn.transaction():  # a savepoint: a failed build leaves the transaction usable
                conn.execute(create)
        except (pgerrors.DiskFull, pgerrors.OutOfMemory) as e:
            log.warning("parallel HNSW build failed (%s); building it in one process", " ".join(str(e).split()))
            conn.execute("SET LOCAL max_parallel_maintenance_workers = 0")
            conn.execute(create)

    @staticmethod
    def _check(ids: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != len(ids):
            raise ValueError(f"vectors must be a ({len(ids)}, dim) matrix for {len(ids)} ids, not {x.shape}")
        if len(set(ids)) != len(ids):
            raise ValueError("ids repeat within one batch")
        return x

    def _copy(self, conn, table: str, ids: Sequence[str], vectors: np.ndarray, dim: int) -> int:
        """Load rows by binary COPY (~80x faster than INSERTs of vectors written as text here)."""
        x = _unit(self._check(ids, vectors))
        if x.shape[1] != dim:
            raise ValueError(f"vectors have {x.shape[1]} dimensions, the table {dim}")
        with conn.cursor() as cur, cur.copy(f"COPY {table} (paper_id, embedding) FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))  # signature, flags, no header extension
            for start in range(0, len(ids), COPY_ROWS):
                cp.write(_copy_rows(ids[start : start + COPY_ROWS], x[start : start + COPY_ROWS]))
            cp.write(struct.pack(">h", -1))
        return len(ids)

    # ------------------------------------------------------------------ search
    def search(self, query: np.ndarray, k: int, *, allowed: Collection[str] | None = None,
               ef_search: int | None = None) -> list[tuple[str, float]]:  # fmt: skip
        """The ``k`` papers whose vectors are closest to ``query``: (paper id, cosine), best first.

        ``allowed``: only these papers (any collection with ``len`` and ``in``; iterated only
        when scored exactly). ``ef_search``: neighbours HNSW visits (default
        max(``EF_SEARCH``, k); at most 1,000, beyond which the search is exact).
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        q = _unit(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        ef = max(int(ef_search or EF_SEARCH), int(k))
        try:
            with self.database.transaction() as tx:
                return self._search(tx.conn, q, int(k), allowed, ef)
        except pgerrors.UndefinedTable:
            raise PgVectorError("the pgvector table was never built: run `papertide index`") from None
        except pgerrors.DataException as e:  # a query of another dimension
            raise ValueError(f"query vector of {len(q)} dimensions: {' '.join(str(e).split())}") from None

    def _search(self, conn, q: np.ndarray, k: int, allowed: Collection[str] | None,
                ef: int) -> list[tuple[str, float]]:  # fmt: skip
        """Choose HNSW, HNSW read deeper and filtered, or exact, by the filter's size."""
        self._register(conn)
        if allowed is None:
            if ef > EF_SEARCH_MAX:
                return self._exact(conn, q, k, None)
            return self._nearest(conn, q, k, ef)
        m = len(allowed)
        if m == 0:
            return []
        if m <= EXACT_BELOW:
            return self._exact(conn, q, k, allowed)
        size = self._size(conn)
        want = math.ceil(min(k, m) / max(m / max(size, m), 1e-9) * FILTER_SLACK)
        if want <= EF_SEARCH_MAX:  # HNSW's list is least exact at its tail: visit twice what is read
            hits = [h for h in self._nearest(conn, q, want, max(2 * want, ef)) if h[0] in allowed]
            if len(hits) >= min(k, m):
                return hits[:k]
        return self._exact(conn, q, k, allowed)

    def _nearest(self, conn, q: np.ndarray, k: int, ef: int) -> list[tuple[str, float]]:
        conn.execute(f"SET LOCAL hnsw.ef_search = {int(min(ef, EF_SEARCH_MAX))}")
        v = _Vector(q)
        rows = conn.execute("SELECT paper_id, -(embedding <#> %b) FROM paper_vectors "
                            "ORDER BY embedding <#> %b LIMIT %s", (v, v, int(k))).fetchall()
        return [(pid, float(s)) for pid, s in rows]

    def _exact(self, conn, q: np.ndarray, k: int, allowed: Collection[str] | None) -> list[tuple[str, float]]:
        """Exact scores; the materialized CTE keeps the planner off the HNSW index."""
        where, params = ("", ()) if allowed is None else ("WHERE paper_id = ANY(%s)", (list(allowed),))
        rows = conn.execute(
            f"WITH scored AS MATERIALIZED (SELECT paper_id, embedding <#> %b AS d FROM paper_vectors {where}) "
            "SELECT paper_id, -d FROM scored ORDER BY d, paper_id LIMIT %s", (_Vector(q), *params, int(k))).fetchall()
        return [(pid, float(s)) for pid, s in rows]

    @staticmethod
    def _size(conn) -> int:
        """The table's row count as the planner knows it (exact when never analysed)."""
        est = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'paper_vectors'::regclass").fetchone()[0]
        if est is None or est <= 0:
            return int(conn.execute("SELECT count(*) FROM paper_vectors").fetchone()[0])
        return int(est)

    def _register(self, conn) -> None:
        """Teach this connection to send :class:`_Vector` in pgvector's binary format."""
        if conn in self._ready:
            return
        if self._dumper is None:
            row = conn.execute("SELECT to_regtype('vector')::oid").fetchone()
            if row is None or row[0] is None:
                raise PgVectorError(f"{self._where()} has no 'vector' type: run `papertide index` to build "
                                    "the pgvector table, or set vector_search = 'own'")
            self._dumper = type("VectorDumper", (_VectorDumper,), {"oid": int(row[0])})
        conn.adapters.register_dumper(_Vector, self._dumper)
        self._ready.add(conn)


class _Vector:
    """A query vector, already in pgvector's binary form (int16 dim, int16 0, big-endian float4s):
    sent so, a query costs ~80 µs less than as '[...]' text here."""

    __slots__ = ("data",)

    def __init__(self, x: np.ndarray) -> None:
        self.data = struct.pack(">hh", len(x), 0) + x.astype(">f4").tobytes()


class _VectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: _Vector) -> bytes:
        return obj.data


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), as papertide's own index keeps them."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)


def _copy_rows(ids: Sequence[str], x: np.ndarray) -> bytes:
    """Tuples of a binary COPY: 2 fields, paper_id (text) and embedding (pgvector's binary form)."""
    dim = x.shape[1]
    vec_head = struct.pack(">ihh", 4 + 4 * dim, dim, 0)
    parts: list[bytes] = []
    for pid, row in zip(ids, x.astype(">f4")):
        b = pid.encode()
        parts += (struct.pack(">hi", 2, len(b)), b, vec_head, row.tobytes())
    return b"".join(parts)
