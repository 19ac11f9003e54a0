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

from papertide.paper import Paper
from papertide.sources import Checkpoint, Signal


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
    def count(self) -> int:
        """Number of live (not deleted) papers."""

    @abstractmethod
    def stats(self) -> dict: ...

    @abstractmethod
    def signals(self, paper_id: str) -> list[Signal]: ...

    @abstractmethod
    def get_checkpoint(self, name: str) -> dict | None: ...

    # -- change log --------------------------------------------------------------
    @abstractmethod
    def watermark(self) -> int:
        """Sequence number of the latest change (0 for an empty store)."""

    @abstractmethod
    def changes_since(self, seq: int, *, limit: int = 10_000) -> list[Change]:
        """Changes with a sequence number above ``seq``, oldest first."""

    # -- lifecycle ---------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
