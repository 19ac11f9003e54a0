"""The store's interface: what every backend (SQLite now, PostgreSQL later) provides.

Nothing outside ``store/`` opens a connection or writes SQL; everything else asks
a :class:`Store`. Writes come as a :class:`Batch` applied in one transaction, so an
interrupted ingest leaves whole batches or nothing, and a harvest checkpoint is
committed together with the records it covers. Every change to a paper is appended
to a change log whose sequence number is the *watermark* indexes catch up from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Literal

from papertide.paper import Paper, merge
from papertide.sources import Checkpoint, Signal
from papertide.store.community import Community
from papertide.store.limits import Limits
from papertide.store.mailing import Mailing
from papertide.store.rows import row_to_paper


@dataclass
class Batch:
    """Items written together in one transaction."""

    papers: list[Paper] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    checkpoint: Checkpoint | None = None

    def __len__(self) -> int:
        return len(self.papers) + len(self.deleted) + len(self.signals)


@dataclass
class WriteResult:
    """What a write did. ``orphans`` are signals for papers the store does not have."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    signals: int = 0
    orphans: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """One entry of the change log: ``op`` is ``upsert`` or ``delete``."""

    seq: int
    paper_id: str
    op: Literal["upsert", "delete"]
    at: str


@dataclass
class Upsert:
    """A paper to write: the merged record, its content hash, and the stored copy it replaces."""

    paper: Paper
    hash: str
    old: Paper | None


def merge_duplicates(papers: Iterable[Paper]) -> dict[str, Paper]:
    """Several copies of one paper in a batch are merged in order."""
    out: dict[str, Paper] = {}
    for p in papers:
        out[p.id] = merge(out[p.id], p) if p.id in out else p
    return out


def plan_upserts(incoming: dict[str, Paper], existing: dict[str, tuple], result: WriteResult) -> list[Upsert]:
    """Decide what to write; count added, updated and unchanged papers in ``result``.

    ``existing`` maps ids to stored rows (``rows.READ_COLUMNS`` then ``deleted``).
    A copy whose content hash equals the stored one is unchanged without further
    work; otherwise it is merged into the stored paper (see :func:`paper.merge`) and
    written only if the merge changed something.
    """
    plan = []
    for pid, new in incoming.items():
        row = existing.get(pid)
        h = new.content_hash()
        if row is None:
            plan.append(Upsert(new, h, None))
            result.added.append(pid)
            continue
        stored_hash, was_deleted = row[-2], row[-1]
        if h == stored_hash and not was_deleted:
            result.unchanged += 1
            continue
        old = row_to_paper(row[:-1])
        merged = merge(old, new)
        mh = merged.content_hash()
        if mh == stored_hash and not was_deleted:
            result.unchanged += 1
            continue
        plan.append(Upsert(merged, mh, None if was_deleted else old))
        result.updated.append(pid)
    return plan


SortOrder = Literal["submitted", "id", "changed", "added"]


class Store(ABC):
    """Persistence for papers, signals, checkpoints and the change log."""

    # -- writes ------------------------------------------------------------------
    @abstractmethod
    def write(self, batch: Batch) -> WriteResult:
        """Apply a batch atomically: upsert papers (merging with what is stored),
        mark deletions, record signals, save the checkpoint."""

    @abstractmethod
    def set_checkpoint(self, name: str, state: dict) -> None: ...

    # -- reads -------------------------------------------------------------------
    @abstractmethod
    def get(self, paper_id: str) -> Paper:
        """The stored paper; raises :class:`~papertide.errors.NotFoundError`."""

    @abstractmethod
    def get_many(self, ids: Iterable[str]) -> dict[str, Paper]: ...

    @abstractmethod
    def iter_papers(self, *, batch_size: int = 1000) -> Iterator[Paper]:
        """Every live paper, in id order, streamed."""

    @abstractmethod
    def list_papers(self, *, limit: int = 20, offset: int = 0, order: SortOrder = "submitted") -> list[Paper]: ...

    @abstractmethod
    def paper_ids(self, *, author: str | None = None, category: str | None = None, limit: int = 10_000) -> list[str]:
        """Ids of live papers by an author (name matched case- and accent-insensitively)
        or in a category, in id order."""

    @abstractmethod
    def count(self) -> int:
        """Number of live (not deleted) papers."""

    @abstractmethod
    def stats(self) -> dict: ...

    @abstractmethod
    def signals(self, paper_id: str) -> list[Signal]: ...

    def signals_many(self, ids: Iterable[str], *, source: str | None = None) -> dict[str, list[Signal]]:
        """The signals of many papers at once (of one ``source`` if given); papers without any are left out.

        Backends answer it in a few queries; this default asks paper by paper."""
        out: dict[str, list[Signal]] = {}
        for pid in dict.fromkeys(ids):
            found = [s for s in self.signals(pid) if source is None or s.source == source]
            if found:
                out[pid] = found
        return out

    @abstractmethod
    def get_checkpoint(self, name: str) -> dict | None: ...

    # -- change log --------------------------------------------------------------
    @abstractmethod
    def watermark(self) -> int:
        """Sequence number of the latest change (0 for an empty store)."""

    @abstractmethod
    def changes_since(self, seq: int, *, limit: int = 10_000) -> list[Change]:
        """Changes with a sequence number above ``seq``, oldest first."""

    # -- community ---------------------------------------------------------------
    @property
    @abstractmethod
    def community(self) -> Community:
        """Accounts, sessions, votes, listings, comments, collections, submissions and
        moderation, kept in the same database (see :mod:`papertide.store.community`)."""

    @property
    @abstractmethod
    def mailing(self) -> Mailing:
        """Digest subscriptions, their send log and delivery failures, kept in the same
        database (see :mod:`papertide.store.mailing`)."""

    @property
    @abstractmethod
    def limits(self) -> Limits:
        """Rate-limit state shared by every process of the site (see :mod:`papertide.store.limits`)."""

    # -- lifecycle ---------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
