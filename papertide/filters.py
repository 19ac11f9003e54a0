"""Per-paper facts that searches filter on, as flat arrays: dates and categories.

Every search mode takes the same filters (``cat:``, ``since:``/``until:``/``year:``,
``author:``), so they are computed once, as a boolean mask over the papers of the
index, from a few memory-mapped arrays built next to the text indexes: the day each
paper was first submitted and its categories (CSR: ``cat_ptr``/``cat_ids`` into a
vocabulary). Author filters are rare and selective; they ask the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from datetime import date
from pathlib import Path
from typing import Iterable

import numpy as np

from papertide.flatdir import publish, resolve
from papertide.paper import Paper

FORMAT = 1
_EPOCH = date(1970, 1, 1).toordinal()
NO_DATE = -1


def day_number(iso: str | None) -> int:
    """Days since 1970-01-01 of an ISO date or datetime; NO_DATE when unknown."""
    if not iso:
        return NO_DATE
    try:
        return date.fromisoformat(iso[:10]).toordinal() - _EPOCH
    except ValueError:
        return NO_DATE


def _as_day(d: date) -> int:
    return d.toordinal() - _EPOCH


@dataclass
class DocFacts:
    """Facts per document, aligned with ``keys`` (the index's document order)."""

    keys: list[str]
    days: np.ndarray  # int32 (n,)
    cat_ptr: np.ndarray  # int64 (n + 1,)
    cat_ids: np.ndarray  # int32 (nnz,)
    categories: list[str]  # vocabulary; cat_ids index it

    @classmethod
    def build(cls, papers: Iterable[Paper]) -> "DocFacts":
        keys, days, ptr, ids = [], [], [0], []
        vocab: dict[str, int] = {}
        for p in papers:
            keys.append(p.id)
            days.append(day_number(p.submitted))
            for c in p.categories:
                ids.append(vocab.setdefault(c, len(vocab)))
            ptr.append(len(ids))
        return cls(
            keys,
            np.asarray(days, dtype=np.int32),
            np.asarray(ptr, dtype=np.int64),
            np.asarray(ids, dtype=np.int32),
            list(vocab),
        )

    def __len__(self) -> int:
        return len(self.keys)

    def merged(self, papers: Iterable[Paper], *, removed: Iterable[str] = ()) -> "DocFacts":
        """These facts with ``papers`` added or replaced and ``removed`` dropped (order: kept, then new)."""
        papers = list(papers)
        drop = set(removed) | {p.id for p in papers}
        keep = np.array([k not in drop for k in self.keys], dtype=bool)
        rows = np.flatnonzero(keep)
        fresh = DocFacts.build(papers)
        vocab = list(self.categories)
        code = {c: i for i, c in enumerate(vocab)}
        remap = np.array([code.setdefault(c, len(code)) for c in fresh.categories], dtype=np.int32)
        vocab = list(code)
        lengths = np.diff(self.cat_ptr)[rows]
        kept_ids = self.cat_ids[keep[self._entry_rows]] if len(self.cat_ids) else self.cat_ids
        ids = np.concatenate([kept_ids, remap[fresh.cat_ids] if len(fresh.cat_ids) else fresh.cat_ids])
        ptr = np.concatenate([[0], np.cumsum(np.concatenate([lengths, np.diff(fresh.cat_ptr)]))])
        return DocFacts(
            [self.keys[i] for i in rows] + fresh.keys,
            np.concatenate([self.days[rows], fresh.days]).astype(np.int32),
            ptr.astype(np.int64),
            ids.astype(np.int32),
            vocab,
        )

    # ------------------------------------------------------------------ masks
    def date_mask(self, since: date | None, until: date | None) -> np.ndarray:
        """Papers submitted in [since, until]; papers without a date never match a date filter."""
        mask = self.days != NO_DATE
        if since is not None:
            mask &= self.days >= _as_day(since)
        if until is not None:
            mask &= self.days <= _as_day(until)
        return mask

    def category_mask(self, wanted: Iterable[str]) -> np.ndarray:
        """Papers in any of the wanted categories; ``cs`` covers ``cs.CL``, ``cs.AI``, …"""
        wanted = [w.lower() for w in wanted]
        hit = np.array(
            [any(c.lower() == w or c.lower().startswith(w + ".") for w in wanted) for c in self.categories],
            dtype=bool,
        )
        mask = np.zeros(len(self.keys), dtype=bool)
        if hit.any() and len(self.cat_ids):
            mask[self._entry_rows[hit[self.cat_ids]]] = True
        return mask

    @cached_property
    def _entry_rows(self) -> np.ndarray:
        """The document of each entry of ``cat_ids``."""
        return np.repeat(np.arange(len(self.keys), dtype=np.int32), np.diff(self.cat_ptr))

    @cached_property
    def positions(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def key_mask(self, ids: Iterable[str]) -> np.ndarray:
        mask = np.zeros(len(self.keys), dtype=bool)
        mask[[self.positions[i] for i in ids if i in self.positions]] = True
        return mask

    # ---------------------------------------------------------------- storage
    def save(self, directory: str | Path, *, watermark: int) -> None:
        with publish(directory) as tmp:
            np.save(tmp / "days.npy", self.days)
            np.save(tmp / "cat_ptr.npy", self.cat_ptr)
            np.save(tmp / "cat_ids.npy", self.cat_ids)
            (tmp / "keys.json").write_text(json.dumps(self.keys, ensure_ascii=False))
            params = {"format": FORMAT, "count": len(self.keys), "categories": self.categories, "watermark": watermark}
            (tmp / "params.json").write_text(json.dumps(params, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> tuple["DocFacts", int]:
        directory = resolve(directory)
        params = json.loads((directory / "params.json").read_text())
        facts = cls(
            json.loads((directory / "keys.json").read_text()),
            np.load(directory / "days.npy", mmap_mode="r"),
            np.load(directory / "cat_ptr.npy", mmap_mode="r"),
            np.load(directory / "cat_ids.npy", mmap_mode="r"),
            params["categories"],
        )
        return facts, int(params["watermark"])

