"""The corpus's n-gram engine kept in step with the store: a main segment, a delta, a merge.

A suffix array cannot take new papers in place, so papertide keeps two segments of
:mod:`papertide.text.ngram` under ``<home>/index/ngram``: a large *main* one and a small
*delta* holding the papers added or changed since main was built. A paper changed or
deleted after main was built becomes a *dead* row of main: its occurrences are
subtracted (positions of a match that fall in a dead row are dropped), and its new
version, if any, is in the delta. Every count is therefore exact at all times:
``count = main (live rows) + delta``. When the delta grows past a fraction of main
(:data:`MERGE_RATIO`), :func:`update_phrases` folds both into a new main — from their
token streams, without tokenizing again — and starts an empty delta.

``state.json`` names the current main and delta directories, the dead rows and the
store watermark covered; it is replaced atomically after the segments it names are
written, so a crash leaves the previous consistent state.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from papertide.config import Config
from papertide.errors import FormatError
from papertide.filters import day_number
from papertide.paper import Paper
from papertide.store import Store
from papertide.text.ngram import SEP, Doc, NgramIndex, build_stream, ngram_tokens, write_segment

MERGE_RATIO = 0.1  # fold the delta into main once it holds this share of main's tokens
MIN_MERGE_TOKENS = 200_000
SAMPLE_ABOVE, SAMPLE = 65_536, 16_384  # completions after a frequent context sample its segment  # ...and at least this many (tiny corpora just rebuild the delta)
STATE_FORMAT = "papertide-ngram-state-1"
log = logging.getLogger("papertide.phrases")


def ngram_dir(config: Config) -> Path:
    return config.home / "index" / "ngram"


def paper_doc(p: Paper) -> Doc:
    return Doc(p.id, day_number(p.submitted), p.title or "", p.abstract or "")


@dataclass
class PhrasesReport:
    papers: int = 0
    changed: int = 0
    removed: int = 0
    merged: bool = False
    rebuilt: bool = False
    seconds: float = 0.0
    tokens: int = 0
    bytes: int = 0  # every file of both segments
    core_bytes: int = 0  # token streams and suffix arrays (infini-gram's bytes-per-token measure)

    def summary(self) -> str:
        how = "rebuilt" if self.rebuilt else "merged" if self.merged else "caught up"
        return (f"n-gram index {how}: {self.papers} papers, {self.tokens:,} tokens, "
                f"{self.core_bytes / max(self.tokens, 1):.2f} bytes/token in tokens and suffix array "
                f"({self.bytes / max(self.tokens, 1):.2f} with every file), in {self.seconds:.1f} s")


class Phrases:
    """Main + delta, answering over the live papers of both."""

    def __init__(self, main: NgramIndex, delta: NgramIndex | None, dead: Iterable[int], watermark: int,
                 directory: Path | None = None) -> None:  # fmt: skip
        self.main, self.delta = main, delta
        self.watermark = watermark
        self.directory = directory
        self.dead = np.zeros(len(main), dtype=bool)
        dead = np.fromiter(dead, dtype=np.int64)
        self.dead[dead] = True

    @classmethod
    def open(cls, config: Config) -> "Phrases":
        """The engine under ``<home>/index/ngram``; :class:`FormatError` when absent or damaged."""
        root = ngram_dir(config)
        state = _read_state(root)
        if state is None:
            raise FormatError(f"no n-gram index in {root}: run `papertide index` first")
        main = NgramIndex(root / state["main"])
        delta = NgramIndex(root / state["delta"]) if state.get("delta") else None
        return cls(main, delta, state["dead"], int(state["watermark"]), root)

    # ---------------------------------------------------------------- views

    def segments(self) -> list[tuple[NgramIndex, np.ndarray]]:
        """Each segment with the mask of its live doc rows (what :mod:`papertide.trends` reads)."""
        out = [(self.main, ~self.dead)]
        if self.delta is not None:
            out.append((self.delta, np.ones(len(self.delta), dtype=bool)))
        return out

    @property
    def papers(self) -> int:
        return int((~self.dead).sum()) + (len(self.delta) if self.delta is not None else 0)

    @property
    def tokens(self) -> int:
        return self.main.n_tokens + (self.delta.n_tokens if self.delta is not None else 0)

    def nbytes(self) -> int:
        return self.main.nbytes() + (self.delta.nbytes() if self.delta is not None else 0)

    def _live_positions(self, seg: NgramIndex, live: np.ndarray, lo: int, hi: int) -> np.ndarray:
        pos = seg.positions(lo, hi)
        if live.all() or not len(pos):
            return pos
        rows = np.searchsorted(seg.doc_starts, pos, side="right") - 1
        return pos[live[rows]]

    # -------------------------------------------------------------- queries

    def count(self, phrase: str | Sequence[str]) -> int:
        """Exact occurrences of the phrase in the live titles and abstracts."""
        tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
        if not tokens:
            return 0
        total = 0
        for seg, live in self.segments():
            lo, hi = seg.range(tokens)
            if hi <= lo or live.all():
                total += hi - lo
            elif hi - lo > 4 * len(self._dead_stream):  # cheaper to scan the few dead papers
                total += hi - lo - _occurrences(self._dead_stream, seg.encode(tokens))
            else:
                total += len(self._live_positions(seg, live, lo, hi))
        return total

    @cached_property
    def _dead_stream(self) -> np.ndarray:
        """The token ids of main's dead papers, back to back (each ends with a separator)."""
        rows = np.flatnonzero(self.dead)
        starts = np.asarray(self.main.doc_starts)
        if not len(rows):
            return np.zeros(0, dtype=np.uint32)
        pos = np.concatenate([np.arange(starts[r], starts[r + 1]) for r in rows])
        return self.main.tokens_at(pos)

    def find(self, phrase: str | Sequence[str]) -> dict[str, list[int]]:
        """Live papers containing the phrase, with token offsets (see ``text.ngram.doc_tokens``)."""
        tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
        out: dict[str, list[int]] = {}
        if not tokens:
            return out
        for seg, live in self.segments():
            pos = np.sort(self._live_positions(seg, live, *seg.range(tokens)))
            rows = np.searchsorted(seg.doc_starts, pos, side="right") - 1
            offsets = pos - np.asarray(seg.doc_starts)[rows]
            for r, off in zip(rows.tolist(), offsets.tolist()):
                out.setdefault(seg.keys[r], []).append(off)
        return out

    def next_words(self, phrase: str | Sequence[str], *, prefix: str = "", top: int | None = None) -> dict[str, int]:
        """Counts of the words that follow the phrase (starting with ``prefix`` if given).

        ``top`` keeps only each segment's ``top`` most frequent words (cheap when a short
        prefix matches half the vocabulary), and above :data:`SAMPLE_ABOVE` occurrences
        finds them from evenly spaced suffixes: their counts are then estimates —
        recount them with :meth:`count` when exactness matters, as :meth:`complete` does.
        """
        tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
        counts: dict[str, int] = {}
        for seg, live in self.segments():
            ids = seg.encode(tokens)
            if ids is None:
                continue
            a, b = seg.prefix_ids(prefix) if prefix else (1, len(seg.vocab) + 1)
            lo, hi = seg.prefix_range(ids, a, b)
            if hi <= lo:
                continue
            if not ids:  # no context: every word's count is a table lookup
                n = seg.word_counts(a, b)
                if not live.all():
                    n = n - self._dead_word_counts(seg, live, a, b)
                words, n = np.arange(a, b)[n > 0], n[n > 0]
            elif top is not None and hi - lo > SAMPLE_ABOVE:
                # The segment is sorted by next word: evenly spaced suffixes find every word
                # holding more than 1/SAMPLE of it, so the top words, with estimated counts.
                ks = np.unique(np.linspace(lo, hi - 1, SAMPLE).astype(np.int64))
                nxt = seg.tokens_at(seg.positions_at(ks) + len(ids))
                words, n = np.unique(nxt[nxt != SEP], return_counts=True)
                n = n * (hi - lo) // len(ks)
            else:
                nxt = seg.tokens_at(self._live_positions(seg, live, lo, hi) + len(ids))
                words, n = np.unique(nxt[nxt != SEP], return_counts=True)
            if top is not None and len(n) > top:
                keep = np.argpartition(-n, top)[:top]
                words, n = words[keep], n[keep]
            for w, c in zip(words.tolist(), n.tolist()):
                word = seg.vocab[w - 1]
                counts[word] = counts.get(word, 0) + int(c)
        return counts

    def _dead_word_counts(self, seg: NgramIndex, live: np.ndarray, a: int, b: int) -> np.ndarray:
        ids = self._dead_stream.astype(np.int64)  # only main has dead rows
        ids = ids[(ids >= a) & (ids < b)]
        return np.bincount(ids - a, minlength=b - a)

    def _dominant_next(self, tokens: list[str]) -> tuple[str, int] | None:
        """The word that follows ``tokens`` most often if it may follow in half or more of
        the occurrences, with its exact count. Within a phrase's suffix-array segment the
        suffixes are sorted by their next word, so such a word must hold the middle one:
        one look per segment and one count, however frequent the phrase."""
        candidates = set()
        for seg, _ in self.segments():
            ids = seg.encode(tokens)
            if ids is None:
                continue
            lo, hi = seg.id_range(ids)
            if hi > lo:
                mid = (lo + hi) // 2
                w = int(seg.tokens_at(seg.positions(mid, mid + 1) + len(ids))[0])
                if w != SEP:
                    candidates.add(seg.vocab[w - 1])
        counted = [(w, self.count([*tokens, w])) for w in sorted(candidates)]
        return max(counted, key=lambda x: x[1], default=None)

    def infgram(self, context: str | Sequence[str]) -> tuple[list[str], dict[str, float]]:
        """The ∞-gram estimate of the next word after ``context`` (Liu et al., 2024): the
        longest suffix of the context that occurs followed by a word, and the distribution
        of the words that follow it there. ``([], {})`` when not even the last word occurs."""
        tokens = ngram_tokens(context) if isinstance(context, str) else list(context)
        for start in range(len(tokens)):  # longest suffix first; counts only shrink as it grows
            suffix = tokens[start:]
            if self.count(suffix) == 0:
                continue
            nxt = self.next_words(suffix)
            total = sum(nxt.values())
            if total:
                return suffix, {w: c / total for w, c in sorted(nxt.items(), key=lambda x: -x[1])}
        return [], {}

    def complete(self, typed: str, *, k: int = 10, extend: int = 2) -> list[tuple[str, int]]:
        """Phrase completions of what a user is typing, most frequent first.

        The last word of ``typed`` is a prefix unless ``typed`` ends with a space; the
        words before it are context. Each completion is the typed words with the last
        one completed, extended by up to ``extend`` more words while one continuation
        follows in at least half of the occurrences. Counts are exact.
        """
        tokens = ngram_tokens(typed)
        if not tokens and not typed.strip():
            return []
        if typed[-1:].isspace() or not tokens:
            context, prefix = tokens, ""
        else:
            context, prefix = tokens[:-1], tokens[-1]
        if not context and not prefix:
            return []
        candidates = self.next_words(context, prefix=prefix, top=3 * k)
        candidates = {w: self.count([*context, w]) for w in candidates}  # exact, across segments
        best = sorted(candidates.items(), key=lambda x: (-x[1], x[0]))[:k]
        out = []
        for word, n in best:
            words, current = [*context, word], n
            for _ in range(extend):
                follow = self._dominant_next(words)
                if follow is None or follow[1] * 2 < current or follow[1] < 2:
                    break
                words.append(follow[0])
                current = follow[1]
            out.append((" ".join(words), n))
        return out


# ------------------------------------------------------------------ on disk


def _occurrences(stream: np.ndarray, ids: Sequence[int]) -> int:
    """Occurrences of the id sequence in ``stream`` by a vectorised scan."""
    m = len(ids)
    if m == 0 or len(stream) < m:
        return 0
    hit = stream[:len(stream) - m + 1] == ids[0]
    for j in range(1, m):
        hit &= stream[j:len(stream) - m + 1 + j] == ids[j]
    return int(hit.sum())


def _read_state(root: Path) -> dict | None:
    try:
        state = json.loads((root / "state.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("the n-gram state in %s cannot be read (%s); rebuilding", root, e)
        return None
    if state.get("format") != STATE_FORMAT:
        return None
    return state


def _write_state(root: Path, main: str, delta: str | None, dead: Sequence[int], watermark: int) -> None:
    state = {"format": STATE_FORMAT, "main": main, "delta": delta, "dead": [int(x) for x in dead],
             "watermark": int(watermark)}
    tmp = root / f".state.{uuid.uuid4().hex}.json"
    tmp.write_text(json.dumps(state))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, root / "state.json")
    for entry in root.iterdir():  # segments no state names any more
        if entry.is_dir() and entry.name not in (main, delta) and not entry.name.startswith("."):
            shutil.rmtree(entry, ignore_errors=True)


def _new_name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def _docs(store: Store, ids: Sequence[str]) -> list[Doc]:
    docs: list[Doc] = []
    for start in range(0, len(ids), 5_000):
        found = store.get_many(list(ids[start:start + 5_000]))
        docs.extend(paper_doc(found[i]) for i in ids[start:start + 5_000] if i in found)
    return docs


def update_phrases(store: Store, config: Config, *, rebuild: bool = False, merge: bool | None = None,
                   progress: Callable[[int], None] | None = None) -> PhrasesReport:  # fmt: skip
    """Bring the n-gram engine up to the store's watermark.

    New and changed papers go to the delta; replaced and deleted ones become dead rows
    of main. ``merge=True`` folds the delta into main now, ``False`` never, None when
    the delta has grown past :data:`MERGE_RATIO` of main.
    """
    from papertide.index import _changed_since

    t0 = time.perf_counter()
    root = ngram_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    target = store.watermark()
    state = None if rebuild else _read_state(root)
    report = PhrasesReport()
    if state is not None:
        try:
            engine = Phrases.open(config)
        except FormatError as e:
            log.warning("%s; rebuilding the n-gram index", e)
            state = None
    if state is None:
        name = _new_name("main")
        docs = (paper_doc(p) for p in store.iter_papers())
        stream, vocab, starts, keys, days = build_stream(_counted(docs, progress))
        write_segment(root / name, stream, vocab, starts, keys, days, watermark=target)
        _write_state(root, name, None, [], target)
        report.rebuilt = True
        report.changed = len(keys)
    elif engine.watermark != target:
        upserted, deleted = _changed_since(store, engine.watermark)
        main_rows = {k: i for i, k in enumerate(engine.main.keys)}
        dead = set(np.flatnonzero(engine.dead).tolist())
        delta_keys = list(engine.delta.keys) if engine.delta is not None else []
        for pid in (*upserted, *deleted):
            if pid in main_rows:
                dead.add(main_rows[pid])
        gone = set(deleted)
        changed = set(upserted)
        delta_keys = [k for k in delta_keys if k not in gone and k not in changed] + upserted
        docs = _docs(store, delta_keys)
        report.changed, report.removed = len(upserted), len(deleted)
        if progress:
            progress(len(upserted) + len(deleted))
        delta_name = _new_name("delta")
        stream, vocab, starts, keys, days = build_stream(docs)
        write_segment(root / delta_name, stream, vocab, starts, keys, days, watermark=target)
        _write_state(root, state["main"], delta_name, sorted(dead), target)
    engine = Phrases.open(config)
    want_merge = merge if merge is not None else (
        engine.delta is not None
        and engine.delta.n_tokens >= max(MIN_MERGE_TOKENS, MERGE_RATIO * engine.main.n_tokens))
    if want_merge and (engine.delta is not None or engine.dead.any()):
        merge_segments(engine, root, target)
        engine = Phrases.open(config)
        report.merged = True
    report.papers, report.tokens, report.bytes = engine.papers, engine.tokens, engine.nbytes()
    report.core_bytes = sum(seg.nbytes(("tokens.bin", "sa.bin")) for seg, _ in engine.segments())
    report.seconds = time.perf_counter() - t0
    return report


def _counted(docs: Iterable[Doc], progress: Callable[[int], None] | None) -> Iterable[Doc]:
    for i, d in enumerate(docs, 1):
        yield d
        if progress and i % 1000 == 0:
            progress(1000)


def merge_segments(engine: Phrases, root: Path, watermark: int) -> None:
    """Fold the live rows of main and all of the delta into one new main segment."""
    parts = []
    for seg, live in engine.segments():
        starts = np.asarray(seg.doc_starts)
        lengths = np.diff(starts)
        stream = seg.stream()
        keep = np.repeat(live, lengths)
        parts.append((seg, stream[keep], lengths[live], [k for k, ok in zip(seg.keys, live.tolist()) if ok],
                      np.asarray(seg.doc_days)[live]))
    vocab = sorted(set().union(*(p[0].vocab for p in parts)))
    new_id = {w: i for i, w in enumerate(vocab, 1)}
    streams = []
    for seg, stream, *_ in parts:
        remap = np.zeros(len(seg.vocab) + 1, dtype=np.uint32)
        remap[1:] = [new_id[w] for w in seg.vocab]
        streams.append(remap[stream])
    lengths = np.concatenate([p[2] for p in parts])
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    keys = [k for p in parts for k in p[3]]
    days = np.concatenate([p[4] for p in parts]).astype(np.int32)
    name = _new_name("main")
    write_segment(root / name, np.concatenate(streams), vocab, starts, keys, days, watermark=watermark)
    _write_state(root, name, None, [], watermark)
