"""Schema migrations: an ordered list of named functions, each applied once.

Add a migration by writing a new ``mNNN_description`` function below the others
and decorating it with ``@migration``; never edit one that has shipped. Applied
migrations are recorded by name in the ``migrations`` table. The SQL sticks to
what SQLite and PostgreSQL both accept, so one list serves both backends; the few
dialect-specific words are filled in by :func:`_run` (``{without_rowid}``: SQLite
stores small link tables clustered on their primary key).
"""

from __future__ import annotations

from typing import Callable, Protocol


class Executor(Protocol):
    def execute(self, sql: str, params: tuple = ...) -> object: ...


Migration = Callable[[Executor, str], None]  # (connection, dialect: "sqlite" or "postgresql")
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


_DIALECT_WORDS = {
    "sqlite": {"without_rowid": "WITHOUT ROWID"},
    "postgresql": {"without_rowid": ""},
}


def _run(db: Executor, dialect: str, script: str) -> None:
    script = script.format(**_DIALECT_WORDS[dialect])
    for statement in script.split(";"):  # so no ";" inside comments or strings
        if statement.strip():
            db.execute(statement)


@migration
def m001_initial(db: Executor, dialect: str) -> None:
    _run(
        db,
        dialect,
        """
        CREATE TABLE papers (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            abstract TEXT NOT NULL,
            authors TEXT NOT NULL,            -- JSON list of names, in order
            categories TEXT NOT NULL,         -- JSON list, primary first
            primary_category TEXT,
            submitted TEXT,                   -- ISO 8601 date or datetime (UTC)
            updated TEXT,
            version INTEGER,
            versions TEXT NOT NULL,           -- JSON list of version/date objects
            doi TEXT,
            journal_ref TEXT,
            comments TEXT,
            license TEXT,
            links TEXT NOT NULL,              -- JSON object
            extra TEXT NOT NULL,              -- JSON object
            source TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            added_at TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            seq BIGINT NOT NULL               -- the change that last touched this row
        );
        CREATE INDEX papers_submitted ON papers (submitted);
        CREATE INDEX papers_doi ON papers (doi);

        -- Lookup tables kept in step with papers.authors / papers.categories by the
        -- store in the same transaction, clustered on the lookup key (one b-tree each).
        CREATE TABLE paper_authors (
            name_key TEXT NOT NULL,           -- case- and accent-folded name, for author pages
            paper_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (name_key, paper_id, position)
        ) {without_rowid};

        CREATE TABLE paper_categories (
            category TEXT NOT NULL,
            paper_id TEXT NOT NULL,
            PRIMARY KEY (category, paper_id)
        ) {without_rowid};

        CREATE TABLE changes (
            seq BIGINT PRIMARY KEY,
            paper_id TEXT NOT NULL,
            op TEXT NOT NULL,                 -- 'upsert' or 'delete'
            at TEXT NOT NULL
        );

        CREATE TABLE signals (
            paper_id TEXT NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
            source TEXT NOT NULL,             -- e.g. 'hf' for Hugging Face daily papers
            upvotes INTEGER NOT NULL,
            day TEXT,                         -- the day the source listed the paper
            data TEXT NOT NULL,               -- JSON object
            observed_at TEXT NOT NULL,
            PRIMARY KEY (paper_id, source)
        );
        CREATE INDEX signals_day ON signals (source, day);

        CREATE TABLE checkpoints (
            name TEXT PRIMARY KEY,
            state TEXT NOT NULL,              -- JSON object
            updated_at TEXT NOT NULL
        )
        """,
    )
