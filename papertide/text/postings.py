"""Postings as flat arrays: string tables, and building and merging CSR term -> documents rows.

The BM25 index (:mod:`papertide.text.lexical`) keeps its vocabulary and document keys
as :class:`StringTable` (one UTF-8 byte array plus offsets, so they memory-map) and
its postings as CSR rows (``indptr`` per term; documents and term frequencies per
posting). This module holds the plumbing that has no BM25 in it: tokenized documents
become a :class:`Segment` with one integer sort, and a segment is merged into
existing rows by block copies, so a small update to a big index stays cheap.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from papertide.text.tokens import tokenize


# ------------------------------------------------------------------ strings


class StringTable(Sequence[str]):
    """Strings as one UTF-8 byte array plus offsets: compact, memory-mappable, no pickles."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = blob, offsets
        self._bytes, self._offsets = memoryview(blob), memoryview(offsets)  # fast scalar access

    @classmethod
    def from_list(cls, strings: Sequence[str]) -> "StringTable":
        encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def bytes_at(self, i: int) -> bytes:
        return self._bytes[self._offsets[i] : self._offsets[i + 1]].tobytes()

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.tolist()[i]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"string {i} out of range ({n})")
        return self.bytes_at(i % n).decode("utf-8", "surrogatepass")

    def tolist(self) -> list[str]:
        data, off = self.blob.tobytes(), self.offsets.tolist()
        return [data[off[i] : off[i + 1]].decode("utf-8", "surrogatepass") for i in range(len(off) - 1)]

    def take(self, idx: Iterable[int]) -> list[str]:
        return [self[int(i)] for i in idx]

    def find_sorted(self, s: str, order: np.ndarray | None = None) -> int:
        """Position of ``s`` in a table sorted by bytes (or in ``order``), -1 if absent."""
        key = s.encode("utf-8", "surrogatepass")
        lo, hi = 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.bytes_at(mid if order is None else int(order[mid])) < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(self):
            i = lo if order is None else int(order[lo])
            if self.bytes_at(i) == key:
                return i
        return -1


# ------------------------------------------------------------------ building


class TokenIds(dict):
    """Token -> id, a new id for each new token (so ``map(ids.__getitem__, tokens)`` runs in C)."""

    def __missing__(self, token: str) -> int:
        i = self[token] = len(self)
        return i


@dataclass
class Segment:
    """Freshly tokenized documents as CSR postings over their own sorted vocabulary."""

    keys: list[str]
    terms: list[str]  # sorted
    indptr: np.ndarray
    docs: np.ndarray
    tf: np.ndarray
    length: np.ndarray


class Pending:
    """Documents tokenized since the index was last brought up to date, and keys to remove.

    Tokenizing is the only per-document Python work; the counting is left to
    :meth:`segment`, so many small updates cost one merge.
    """

    def __init__(self, weights: tuple[float, float, float], old_keys: list[str]):
        self.fields = [(i, w) for i, w in enumerate(weights) if w > 0]  # (title, abstract, authors)
        self.ids, self.occurrences, self.counts = TokenIds(), array("i"), array("q")
        self.keys: list[str] = []
        self.position: dict[str, int] = {}  # key -> its live pending document
        self.dropped: set[int] = set()  # pending documents replaced or removed again
        self.old_keys, self.where = old_keys, {k: i for i, k in enumerate(old_keys)}
        self.removed: set[int] = set()  # indexed documents to drop

    def exists(self, key: str) -> bool:
        return key in self.position or (key in self.where and self.where[key] not in self.removed)

    def drop(self, key: str) -> None:
        if key in self.position:
            self.dropped.add(self.position.pop(key))
        if key in self.where:
            self.removed.add(self.where[key])

    def add(self, doc: tuple) -> None:
        key, title, abstract, authors = doc
        if not isinstance(key, str) or not key:
            raise ValueError(f"document key must be a non-empty string, got {key!r}")
        texts = (title, abstract, authors if isinstance(authors, str) else "; ".join(authors or ()))
        fields = [tokenize(texts[i]) for i, _ in self.fields]  # (before any change: it may raise)
        self.drop(key)
        self.position[key] = len(self.keys)
        self.keys.append(key)
        for tokens in fields:
            self.occurrences.extend(map(self.ids.__getitem__, tokens))
            self.counts.append(len(tokens))

    def segment(self) -> Segment:
        """Count with one sort: each token occurrence becomes the integer ``term | doc | field``;
        sorted, equal (term, doc, field) triples form runs whose lengths are the field term
        frequencies, already in posting order (term, then doc)."""
        per_field = np.frombuffer(self.counts, dtype=np.int64).reshape(len(self.keys), len(self.fields))
        occurrences, keys = np.frombuffer(self.occurrences, dtype=np.int32), self.keys
        if self.dropped:
            live = np.ones(len(keys), dtype=bool)
            live[list(self.dropped)] = False
            occurrences = occurrences[np.repeat(live, per_field.sum(axis=1))]
            per_field, keys = per_field[live], [k for k, x in zip(keys, live.tolist()) if x]
        n, used = len(keys), np.bincount(occurrences, minlength=len(self.ids)) > 0
        terms = [t for t, u in zip(self.ids, used.tolist()) if u]
        order = sorted(range(len(terms)), key=terms.__getitem__)
        rank = np.full(len(self.ids), -1, dtype=np.int64)
        rank[np.flatnonzero(used)[order]] = np.arange(len(terms))
        length = np.zeros(n, dtype=np.float64)
        for j, (_, w) in enumerate(self.fields):
            length += w * per_field[:, j]
        doc_bits = max(n, 1).bit_length()
        if doc_bits + 2 + max(len(terms), 1).bit_length() > 63:
            raise ValueError("too many documents and terms for one update: update in smaller batches")
        slot = (np.arange(n, dtype=np.int64)[:, None] << 2 | np.arange(len(self.fields), dtype=np.int64)).ravel()
        sort_key = rank[occurrences] << (doc_bits + 2) | np.repeat(slot, per_field.ravel())
        sort_key.sort()
        first = np.flatnonzero(np.diff(sort_key, prepend=-1))  # one run per (term, doc, field)
        weights = np.array([w for _, w in self.fields], dtype=np.float64)
        weighted = weights[sort_key[first] & 3] * np.diff(first, append=len(sort_key))
        pair = sort_key[first] >> 2  # (term, doc)
        start = np.flatnonzero(np.diff(pair, prepend=-1))
        tf = np.add.reduceat(weighted, start) if len(start) else weighted
        pair = pair[start]
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair >> doc_bits, minlength=len(terms)), out=indptr[1:])
        docs = (pair & ((1 << doc_bits) - 1)).astype(np.int32)
        return Segment(keys, [terms[i] for i in order], indptr, docs, tf.astype(np.float32), length)


def merge_vocab(old: list[str], new: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Union of two sorted vocabularies and where each old and new term lands in it."""
    pos = [bisect_left(old, s) for s in new]
    exists = [p < len(old) and old[p] == s for p, s in zip(pos, new)]
    fresh_pos = np.array([p for p, e in zip(pos, exists) if not e], dtype=np.int64)
    old_at = np.arange(len(old), dtype=np.int64) + np.searchsorted(fresh_pos, np.arange(len(old)), side="right")
    fresh_at = fresh_pos + np.arange(len(fresh_pos))
    new_at = np.empty(len(new), dtype=np.int64)
    ex = np.array(exists, dtype=bool)
    new_at[ex] = old_at[np.array(pos, dtype=np.int64)[ex]] if ex.any() else []
    new_at[~ex] = fresh_at
    merged = np.empty(len(old) + len(fresh_pos), dtype=object)
    merged[old_at] = old
    merged[new_at] = new
    return merged.tolist(), old_at, new_at


def place_rows(dest_docs, dest_tf, indptr, at, offset, docs, tf, src_indptr) -> None:
    """Copy CSR rows (src row i -> destination row at[i], from column ``offset[i]`` on).

    Consecutive rows that move by the same amount are copied as one block, so adding a
    few documents to a big index copies a few large blocks.
    """
    shift = indptr[at] + offset - src_indptr[:-1]
    if len(shift) == 0:
        return
    cuts = np.flatnonzero(np.diff(shift)) + 1
    if len(cuts) * 64 > len(docs):  # many small moves: one scatter
        dest = np.arange(len(docs), dtype=np.int64) + np.repeat(shift, np.diff(src_indptr))
        dest_docs[dest], dest_tf[dest] = docs, tf
        return
    for r0, r1 in zip([0, *cuts.tolist()], [*cuts.tolist(), len(shift)]):
        s, e = int(src_indptr[r0]), int(src_indptr[r1])
        d = s + int(shift[r0])
        dest_docs[d : d + e - s], dest_tf[d : d + e - s] = docs[s:e], tf[s:e]
