"""Papers to table rows and back, shared by every SQL backend.

List and object fields are kept as JSON text so that one schema serves SQLite and
PostgreSQL alike; authors and categories are also exploded into their own tables
for lookups (author pages, category filters).
"""

from __future__ import annotations

import json

import orjson
from datetime import datetime, timezone

from papertide.paper import Paper, Version, title_key

PAPER_COLUMNS = (
    "id",
    "title",
    "abstract",
    "authors",
    "categories",
    "primary_category",
    "submitted",
    "updated",
    "version",
    "versions",
    "doi",
    "journal_ref",
    "comments",
    "license",
    "links",
    "extra",
    "source",
    "content_hash",
)

# Columns read back into a Paper (content_hash is read alongside for the upsert fast path).
READ_COLUMNS = ", ".join(PAPER_COLUMNS)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(value: object) -> str:
    """Compact JSON text for the JSON columns."""
    return orjson.dumps(value).decode()


def paper_to_row(p: Paper, content_hash: str) -> tuple:
    """Values in :data:`PAPER_COLUMNS` order."""
    return (
        p.id,
        p.title,
        p.abstract,
        dumps(p.authors),
        dumps(p.categories),
        p.primary_category,
        p.submitted,
        p.updated,
        p.version,
        dumps([{"version": v.version, "date": v.date} for v in p.versions]),
        p.doi,
        p.journal_ref,
        p.comments,
        p.license,
        dumps(p.links),
        dumps(p.extra),
        p.source,
        content_hash,
    )


def row_to_paper(row: tuple | list) -> Paper:
    """Inverse of :func:`paper_to_row` for a row selected with :data:`READ_COLUMNS`."""
    (pid, title, abstract, authors, categories, _primary, submitted, updated, version, versions,
     doi, journal_ref, comments, license_, links, extra, source, _hash) = row  # fmt: skip
    return Paper(
        id=pid,
        title=title,
        abstract=abstract,
        authors=json.loads(authors),
        categories=json.loads(categories),
        submitted=submitted,
        updated=updated,
        version=version,
        versions=[Version(v["version"], v.get("date")) for v in json.loads(versions)],
        doi=doi,
        journal_ref=journal_ref,
        comments=comments,
        license=license_,
        links=json.loads(links),
        extra=json.loads(extra),
        source=source,
    )


def author_rows(p: Paper) -> list[tuple]:
    """(name_key, paper_id, position) for the author lookup table."""
    return [(title_key(name), p.id, i) for i, name in enumerate(p.authors)]


def category_rows(p: Paper) -> list[tuple]:
    """(category, paper_id) for the category lookup table."""
    return [(c, p.id) for c in p.categories]

