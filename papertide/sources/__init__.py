"""Where papers come from.

Every source is an iterator of *items*: a :class:`~papertide.paper.Paper` to store,
a :class:`Deleted` marker, a :class:`Signal` (e.g. upvotes), a :class:`Rejected`
record that could not be read (with where and why), or a :class:`Checkpoint` that
the ingest loop commits together with the items before it, so an interrupted
harvest resumes where it stopped. Sources never touch the store; ``ingest.py``
feeds their items to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from papertide.paper import Paper


@dataclass(slots=True)
class Deleted:
    """The source says this paper was withdrawn from it (OAI-PMH ``status="deleted"``)."""

    id: str
    where: str = ""


@dataclass(slots=True)
class Rejected:
    """A record that could not be read. ``where`` is ``file:line`` or a record id."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(slots=True)
class Signal:
    """A popularity signal for a paper from one source, e.g. Hugging Face upvotes.

    ``day`` is the day the source listed the paper (HF: the day it was added to
    Daily Papers). ``data`` holds other source facts (submitter, comment count).
    """

    paper_id: str
    source: str
    upvotes: int
    day: str | None = None
    data: dict = field(default_factory=dict)


@dataclass(slots=True)
class Checkpoint:
    """Resumable state of a long-running source, stored atomically with what came before it."""

    name: str
    state: dict


Item = Union[Paper, Deleted, Rejected, Signal, Checkpoint]

__all__ = ["Checkpoint", "Deleted", "Item", "Paper", "Rejected", "Signal"]
