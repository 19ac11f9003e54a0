"""Trending phrases and a phrase's frequency over time (charted by :mod:`papertide.charts`).

"Is *state space model* rising?" — answered from the n-gram segments
(:mod:`papertide.text.ngram`), each with a boolean mask of its live doc rows
(:meth:`papertide.phrases.Phrases.segments`), so replaced or deleted papers never count.

**Periods** (:func:`periods`). *Recent*: the last 1, 7 or 30 days up to ``now``
(inclusive). *Baseline*: the period just before, 4 windows long and at least 28 days — at
least 4x the recent one, so its rate is the better known of the two (a log-ratio's
variance is ~``1/r + 1/b``); whole weeks, so weekday mix does not bias a daily window; and
short enough to mean "just before", so a slow rise over years is not news.

**Share**: occurrences per word token (separators excluded) — the rate of a multinomial
model of the text, and what :func:`series` charts. One paper repeating a phrase cannot
make it trend: a candidate needs ``min_count`` recent occurrences in ``min_papers`` papers.

**Score** (:func:`_scores`). ``r``, ``b``: recent and baseline counts; ``R``, ``B``: their
token totals; ``pi0 = R / (R + B)``, the share of a phrase's occurrences expected in the
recent period if its rate did not change. A Beta prior of ``PRIOR`` pseudo-occurrences
centred on ``pi0`` (``a_r = PRIOR*pi0``, ``a_b = PRIOR*(1-pi0)``) gives the smoothed log
rate ratio ``L = log((r + a_r) / (b + a_b)) - log(R / B)`` (0 for an unseen phrase:
smoothing shrinks toward "no change") with standard error ``s = sqrt(1/(r + a_r) + 1/(b +
a_b))`` (normal approximation of the Beta posterior's logit). Score = ``L - 1.645 s``, the
one-sided 95% lower bound: the rise we are confident of. Seen twice, never before: ``L``
is large but ``s`` ~1, so it ranks below fifty occurrences at 3x the old rate. Only
phrases with score > 0 are listed.

**Phrases**: 2- to 4-token runs inside one title or abstract (separators end each),
first and last tokens words outside :data:`EDGE_STOP` ("of the", "in a" never trend),
inner tokens words or joining marks ``- / ' + &`` ("large - scale models" counts,
"models . we" not). **Nested variants** (:func:`_suppress`): walking down the ranking, a
phrase is dropped when a listed one contains it or is contained in it with a count within
``NEST_RATIO`` (0.8) of its own — mostly the same occurrences ("selective state space
models" hides "state space models" only when nearly every one is selective).

**Counting** (:func:`_count_window`) is vectorised, level by level as in Apriori: an
n-gram is frequent only if its (n-1)-prefix is, so each level sorts only the positions
whose prefix survived. A key is ``prefix << word_bits | last word`` over the window's
frequent words, ``prefix`` the index of the frequent (n-1)-gram: exact, no hash
collisions. The baseline is read in chunks and looks those keys up in a hash table.
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np

from papertide.charts import svg_chart  # noqa: F401  (re-exported: the chart of a series)
from papertide.text.ngram import SEP, NgramIndex, ngram_tokens

Segments = Sequence[tuple[NgramIndex, np.ndarray]]

WINDOWS = {"day": 1, "week": 7, "month": 30}
PERIODS = ("day", "week", "month")
BASELINE_WINDOWS = 4  # the baseline is this many windows long...
MIN_BASELINE_DAYS = 28  # ...and at least this many days (whole weeks)
PRIOR = 2.0  # pseudo-occurrences of the Beta prior, split between the periods by their token share
Z = 1.645  # one-sided 95% lower bound
NEST_RATIO = 0.8  # nested phrases with counts this close are the same occurrences
CHUNK_TOKENS = 8_000_000  # papers are read in chunks of about this many tokens
SPAN_TOKENS = 4096  # runs of papers at least this long on average are read as slices
JOINERS = frozenset("-/'+&")
EDGE_STOP = frozenset("""
a an the this that these those such some any each every all both either neither no not
of in on at to for from by with without into onto over under about above below between
among through during within across against via per than as like upon toward towards and
or but nor so yet if then else when while where which who whom whose what how why is are
was were be been being am has have had having do does did can could may might must shall
should will would it its they them their we our us you your he she his her i my me one
also more most very much many only just other another same here there thus hence however
therefore e g eg ie et al vs s t
""".split())  # function words: a phrase may hold them ("state of the art") but not start or end with them


@dataclass(frozen=True)
class Trend:
    """A rising phrase: counts in the recent and baseline periods, and its score.

    ``ratio`` is the smoothed rate ratio exp(L) (recent share / baseline share).
    """

    phrase: str
    recent: int
    baseline: int
    recent_papers: int
    score: float
    ratio: float


def _check(value: str, valid: Sequence[str], what: str) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(valid)}")


def periods(window: str, now: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The recent and baseline periods of a window as inclusive day ranges ``(first, last)``."""
    _check(window, list(WINDOWS), "window")
    days = WINDOWS[window]
    base = max(BASELINE_WINDOWS * days, MIN_BASELINE_DAYS)
    return (now - days + 1, now), (now - days - base + 1, now - days)


# ----------------------------------------------------------------- vocabulary and tokens


class _Vocab:
    """One id space over several segments' vocabularies (each segment numbers its own words).

    The largest segment's ids are kept as they are; the others' words are looked up in it,
    and words it lacks get new ids after its last.
    """

    def __init__(self, indexes: Sequence[NgramIndex]) -> None:
        base = max(indexes, key=lambda ix: len(ix.vocab))
        self.base, self.extra, extra_ids = base, [], {}
        self.maps: dict[int, np.ndarray] = {}
        for ix in indexes:
            if ix is base:
                self.maps[id(ix)] = np.arange(len(base.vocab) + 1, dtype=np.uint32)
                continue
            m = np.zeros(len(ix.vocab) + 1, dtype=np.uint32)
            for i, w in enumerate(ix.vocab, 1):
                g = base.ids.get(w)
                if g is None:
                    g = extra_ids.get(w)
                    if g is None:
                        g = extra_ids[w] = len(base.vocab) + 1 + len(self.extra)
                        self.extra.append(w)
                m[i] = g
            self.maps[id(ix)] = m
        self.size = len(base.vocab) + len(self.extra)  # ids 1..size, 0 the separator

    def word(self, g: int) -> str:
        nb = len(self.base.vocab)
        return self.base.vocab[g - 1] if g <= nb else self.extra[g - nb - 1]


def _live(ix: NgramIndex, live: np.ndarray) -> np.ndarray:
    live = np.asarray(live, dtype=bool)
    if live.shape != (len(ix),):
        raise ValueError(f"a live mask of {live.shape} for a segment of {len(ix)} papers")
    return live


def _rows(ix: NgramIndex, live: np.ndarray, first: int, last: int) -> np.ndarray:
    """Live doc rows of a segment submitted in the days [first, last]."""
    days = np.asarray(ix.doc_days)
    return np.flatnonzero(_live(ix, live) & (days >= first) & (days <= last))


def _read(ix: NgramIndex, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Token ids of the stream spans [lo[i], hi[i]), concatenated.

    Long spans are read as slices when the segment offers ``tokens_between(lo, hi)`` (a
    contiguous read, ~6x faster than gathering positions); otherwise by ``tokens_at``.
    """
    lens = hi - lo
    between = getattr(ix, "tokens_between", None)
    if between is not None and lens.sum() >= SPAN_TOKENS * len(lo):
        return np.concatenate([between(int(a), int(b)) for a, b in zip(lo, hi)])
    pos = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(lo - (np.cumsum(lens) - lens), lens)
    return ix.tokens_at(pos)


def _gather(ix: NgramIndex, rows: np.ndarray, vmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``vmap`` of the token ids of the docs ``rows`` (separators kept), and each doc's length."""
    starts = np.asarray(ix.doc_starts)
    lo, hi = starts[rows], starts[rows + 1]
    breaks = np.flatnonzero(lo[1:] != hi[:-1]) + 1  # runs of adjacent docs read as one span
    tokens = _read(ix, lo[np.r_[0, breaks]], hi[np.r_[breaks - 1, len(rows) - 1]])
    return vmap[tokens], hi - lo


def _chunks(segments: Segments, maps: dict[int, np.ndarray], first: int, last: int,
            size: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """(mapped tokens, doc lengths) of the live docs of [first, last], in doc-aligned chunks
    of about ``size`` tokens (:data:`CHUNK_TOKENS`)."""
    size = size or CHUNK_TOKENS
    for ix, live in segments:
        rows = _rows(ix, live, first, last)
        if len(rows):
            starts = np.asarray(ix.doc_starts)
            ends = np.cumsum(starts[rows + 1] - starts[rows])
            cuts = np.searchsorted(ends, np.arange(size, int(ends[-1]), size), side="right")
            for part in np.split(rows, np.unique(cuts)):
                if len(part):
                    yield _gather(ix, part, maps[id(ix)])


# ------------------------------------------------------------------------ counting


def _bits(n: int) -> int:
    """Bits that hold every integer in [0, n]."""
    return max(1, int(n).bit_length())


class _Words:
    """The words that may be part of a frequent phrase (>= min_count recent occurrences, and a
    word or a joining mark), numbered 0..F-1 in ``dense``; F stands for every other token."""

    def __init__(self, vocab: _Vocab, counts: np.ndarray, min_count: int) -> None:
        keep, edge = [], []
        for g in np.flatnonzero(counts >= min_count).tolist():
            w = vocab.word(g) if g != SEP else ""
            is_word = w[:1].isalnum()
            if is_word or w in JOINERS:
                keep.append(g)
                edge.append(is_word and w not in EDGE_STOP)
        self.n = len(keep)
        self.bits = _bits(self.n)
        self.globals = np.array(keep, dtype=np.int64)
        self.dense = np.full(vocab.size + 1, self.n, dtype=np.int32)
        self.dense[self.globals] = np.arange(self.n, dtype=np.int32)
        self.edge = np.zeros(self.n + 1, dtype=bool)  # may start or end a phrase
        self.edge[: self.n] = edge


def _sort_groups(keys: np.ndarray, key_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, new, sorted keys): a sort of ``keys`` that keeps input order among equal keys,
    and where each run of equal keys starts. The input index rides in the low bits of the
    sorted values: a plain value sort is ~10x faster than an argsort here."""
    n = len(keys)
    ib = _bits(n)
    if key_bits + ib <= 63:
        packed = (keys << ib) | np.arange(n, dtype=np.int64)
        packed.sort()
        order, sk = packed & ((1 << ib) - 1), packed >> ib
    else:
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(sk[1:], sk[:-1], out=new[1:])
    return order, new, sk


class _Table:
    """Exact membership of int64 keys (>= 0) in a set of distinct keys: an open-addressing hash
    table (multiplicative hashing, linear probing, load <= 1/2) built and probed with
    whole-array operations; about 3x faster than a binary search per key."""

    MUL = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio (Knuth's multiplicative hashing)

    def __init__(self, ref: np.ndarray) -> None:
        self.ref = np.append(ref, -1)  # ref[n] = -1 equals no key: the empty slots point there
        self.bits = _bits(2 * len(ref))
        self.mask = (1 << self.bits) - 1
        self.slots = np.full(1 << self.bits, len(ref), dtype=np.int64)
        pending, at = np.arange(len(ref), dtype=np.int64), self._hash(ref)
        while len(pending):
            free = self.slots[at] == len(ref)
            _, first = np.unique(at[free], return_index=True)  # one winner per free slot
            won = np.flatnonzero(free)[first]
            self.slots[at[won]] = pending[won]
            lost = np.ones(len(pending), dtype=bool)
            lost[won] = False
            pending, at = pending[lost], (at[lost] + 1) & self.mask

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        """The top ``bits`` bits of (x ^ x >> 31) * MUL mod 2**64: the xor-shift first spreads
        the high bits (the n-gram's prefix) into the low ones, which the product carries up."""
        x = np.ascontiguousarray(keys, dtype=np.int64).view(np.uint64)
        x = (x ^ (x >> np.uint64(31))) * self.MUL
        return (x >> np.uint64(64 - self.bits)).view(np.int64)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Index in the set (its sorted order) of each key, -1 when absent."""
        empty = len(self.ref) - 1
        at = self._hash(keys)
        j = self.slots[at]
        match = self.ref[j] == keys
        out = np.where(match, j, -1)
        todo = np.flatnonzero(~match & (j != empty))  # slots taken by other keys: probe on
        at = at[todo]
        while len(todo):
            at = (at + 1) & self.mask
            j = self.slots[at]
            match = self.ref[j] == keys[todo]
            out[todo[match]] = j[match]
            more = ~match & (j != empty)
            todo, at = todo[more], at[more]
        return out


@dataclass
class _Level:
    """The frequent n-grams of one length in the recent window, sorted by key."""

    keys: np.ndarray  # (prefix << word bits) | last word, prefix = first word or (n-1)-gram index
    counts: np.ndarray
    papers: np.ndarray

    @cached_property
    def table(self) -> _Table:
        return _Table(self.keys)


def _count_window(w: np.ndarray, lens: np.ndarray, top: int, min_count: int, words: _Words) -> list[_Level]:
    """Frequent n-grams (n = 2..top, count >= min_count, first word an edge) in the dense token
    stream ``w`` of docs of ``lens`` tokens; ``levels[n - 2]`` keys use the index in
    ``levels[n - 3]`` as prefix."""
    f, fb = words.n, words.bits
    starts = np.flatnonzero(words.edge[w[:-1]] & (w[1:] < f))  # the stream ends with SEP: no overrun
    pb = _bits(len(w))
    docs = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    tagged = (docs[starts] << pb) | starts  # doc and position in one value: one gather moves both
    del docs
    prefix, pbits = w[starts].astype(np.int64), fb
    levels: list[_Level] = []
    for n in range(2, top + 1):
        pos = tagged & ((1 << pb) - 1)
        if n > 2:
            ok = w[pos + n - 1] < f
            tagged, prefix, pos = tagged[ok], prefix[ok], pos[ok]
        order, new, sk = _sort_groups((prefix << fb) | w[pos + n - 1], pbits + fb)
        tagged = tagged[order]  # positions rise within a group, so docs never fall
        firsts = np.flatnonzero(new)
        counts = np.diff(np.append(firsts, len(new)))
        doc = tagged >> pb
        new_doc = new.copy()
        new_doc[1:] |= doc[1:] != doc[:-1]
        papers = np.add.reduceat(new_doc.astype(np.int64), firsts) if len(firsts) else counts
        frequent = counts >= min_count
        levels.append(_Level(sk[firsts[frequent]], counts[frequent], papers[frequent]))
        group = np.cumsum(new) - 1
        keep = frequent[group]
        tagged, prefix = tagged[keep], (np.cumsum(frequent) - 1)[group[keep]]  # index among the frequent
        pbits = _bits(len(levels[-1].keys))
    return levels


def _count_baseline(w: np.ndarray, levels: list[_Level], words: _Words, out: list[np.ndarray]) -> None:
    """Add the occurrences in the dense token stream ``w`` of each level's n-grams to ``out``."""
    fb = words.bits
    first, second = np.zeros(words.n + 1, dtype=bool), np.zeros(words.n + 1, dtype=bool)
    first[levels[0].keys >> fb] = True  # words that start a frequent 2-gram...
    second[levels[0].keys & ((1 << fb) - 1)] = True  # ...and words that end one
    starts = np.flatnonzero(first[w[:-1]] & second[w[1:]])
    prefix = w[starts].astype(np.int64)
    for n, level in enumerate(levels, 2):
        if n > 2:
            ok = w[starts + n - 1] < words.n
            starts, prefix = starts[ok], prefix[ok]
        if not len(level.keys) or not len(starts):
            return
        at = level.table.find((prefix << fb) | w[starts + n - 1])
        hit = at >= 0
        out[n - 2] += np.bincount(at[hit], minlength=len(level.keys))
        starts, prefix = starts[hit], at[hit]


def _scores(r: np.ndarray, b: np.ndarray, recent_tokens: int, baseline_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(lower-bound score, smoothed log ratio L) — see the module docstring."""
    pi0 = recent_tokens / (recent_tokens + baseline_tokens)
    a_r, a_b = PRIOR * pi0, PRIOR * (1 - pi0)
    rr, bb = r + a_r, b + a_b
    log_ratio = np.log(rr / bb) - math.log(recent_tokens / baseline_tokens)
    return log_ratio - Z * np.sqrt(1 / rr + 1 / bb), log_ratio


def _phrase_ids(levels: list[_Level], n: int, i: int, fb: int) -> tuple[int, ...]:
    """The dense word ids of the i-th n-gram of ``levels[n - 2]``."""
    mask, out = (1 << fb) - 1, []
    while n > 2:
        key = int(levels[n - 2].keys[i])
        out.append(key & mask)
        i, n = key >> fb, n - 1
    key = int(levels[0].keys[i])
    return (key >> fb, key & mask, *reversed(out))


def _contains(long: tuple[int, ...], short: tuple[int, ...]) -> bool:
    m = len(short)
    return any(long[j:j + m] == short for j in range(len(long) - m + 1))


def _suppress(ranked: Iterator[tuple[tuple[int, ...], int]], k: int) -> list[int]:
    """Indexes (in ``ranked`` order) of the first ``k`` phrases with no nested near-equal
    variant listed before them; ``ranked`` yields (word ids, recent count)."""
    kept: list[tuple[tuple[int, ...], int]] = []
    out = []
    for i, (ids, count) in enumerate(ranked):
        if len(out) >= k:
            break
        if any(len(ids) != len(o) and (_contains(o, ids) if len(o) > len(ids) else _contains(ids, o))
               and min(c, count) >= NEST_RATIO * max(c, count) for o, c in kept):  # fmt: skip
            continue
        kept.append((ids, count))
        out.append(i)
    return out


def latest_day(segments: Segments) -> int | None:
    """The latest submission day of the live papers (None when none is dated)."""
    best = None
    for ix, live in segments:
        days = np.asarray(ix.doc_days)[np.asarray(live, dtype=bool)]
        days = days[days >= 0]
        if len(days):
            best = max(best if best is not None else -1, int(days.max()))
    return best


def trending(segments: Segments, window: str = "week", *, now: int | None = None, k: int = 20,
             min_count: int = 5, min_papers: int = 3, n: Sequence[int] = (2, 3, 4)) -> list[Trend]:  # fmt: skip
    """The ``k`` phrases whose share rose most in the recent ``window`` (day|week|month) ending
    on day ``now`` against the baseline before it, best first (see the module docstring).

    Empty when either period has no live papers.
    """
    _check(window, list(WINDOWS), "window")
    lengths = sorted(set(n))
    if not lengths or lengths[0] < 2:
        raise ValueError(f"phrase lengths must be >= 2, got {tuple(n)}")
    now = latest_day(segments) if now is None else now
    if now is None:
        return []
    (r0, r1), (b0, b1) = periods(window, now)
    active = [(ix, live) for ix, live in segments if len(_rows(ix, live, b0, r1))]
    if not active:
        return []
    vocab = _Vocab([ix for ix, _ in active])
    parts = list(_chunks(active, vocab.maps, r0, r1))
    if not parts:
        return []
    tokens = np.concatenate([p[0] for p in parts])
    lens = np.concatenate([p[1] for p in parts])
    recent_tokens = int(lens.sum()) - 2 * len(lens)
    words = _Words(vocab, np.bincount(tokens, minlength=vocab.size + 1), max(min_count, 1))
    w = words.dense[tokens]
    del tokens, parts
    levels = _count_window(w, lens, lengths[-1], max(min_count, 1), words)
    del w
    seen = [np.zeros(len(lv.keys), dtype=np.int64) for lv in levels]
    baseline_tokens = 0
    dense_maps = {key: words.dense[m] for key, m in vocab.maps.items()}
    for w, lens in _chunks(active, dense_maps, b0, b1):
        baseline_tokens += int(lens.sum()) - 2 * len(lens)
        _count_baseline(w, levels, words, seen)
    if baseline_tokens == 0 or recent_tokens == 0:
        return []
    return _rank(levels, seen, lengths, words, vocab, (recent_tokens, baseline_tokens), k, min_papers)


def _rank(levels: list[_Level], seen: list[np.ndarray], lengths: list[int], words: _Words, vocab: _Vocab,
          tokens: tuple[int, int], k: int, min_papers: int) -> list[Trend]:  # fmt: skip
    mask = (1 << words.bits) - 1
    cand = []  # per length: (n, index, recent, baseline, papers, score, log ratio)
    for m in lengths:
        lv, b = levels[m - 2], seen[m - 2]
        ok = np.flatnonzero(words.edge[lv.keys & mask] & (lv.papers >= min_papers))
        score, log_ratio = _scores(lv.counts[ok], b[ok], *tokens)
        up = score > 0
        ok = ok[up]
        cand.append((np.full(len(ok), m), ok, lv.counts[ok], b[ok], lv.papers[ok], score[up], log_ratio[up]))
    ns, idx, r, b, papers, score, log_ratio = (np.concatenate(c) for c in zip(*cand))
    order = np.lexsort((-ns, -score))[: 50 * k + 100]  # best score first; ties: the longer phrase
    ids = [_phrase_ids(levels, int(ns[j]), int(idx[j]), words.bits) for j in order]
    out = []
    for i in _suppress(zip(ids, r[order].tolist()), k):
        j, text = order[i], " ".join(vocab.word(int(words.globals[d])) for d in ids[i])
        out.append(Trend(text, int(r[j]), int(b[j]), int(papers[j]), float(score[j]), math.exp(log_ratio[j])))
    return out


# -------------------------------------------------------------------------- series


def period_index(days: np.ndarray, period: str) -> np.ndarray:
    """Period numbers of day numbers: days, ISO weeks (Monday-based), or months since 1970-01."""
    days = np.asarray(days, dtype=np.int64)
    if period == "day":
        return days
    if period == "week":
        return (days + 3) // 7  # 1970-01-01 was a Thursday; weeks start on Monday
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def period_label(i: int, period: str) -> str:
    """"2024-03-05", ISO week "2024-W09", or "2024-03"."""
    epoch = date(1970, 1, 1).toordinal()
    if period == "day":
        return date.fromordinal(epoch + i).isoformat()
    if period == "week":
        year, week, _ = date.fromordinal(epoch + 7 * i - 3).isocalendar()
        return f"{year}-W{week:02d}"
    return f"{1970 + i // 12:04d}-{i % 12 + 1:02d}"


def series(segments: Segments, phrase: str | Sequence[str], *, period: str = "month") -> list[tuple[str, int, int]]:
    """``(period label, occurrences, word tokens)`` for every period from the first to the last
    dated live paper (empty periods as zeros). Undated papers are left out.

    Occurrences come from each segment's suffix array (range -> positions -> doc rows); the
    per-period token totals and each doc's period are cached per segment (:func:`_periods_of`).
    """
    _check(period, PERIODS, "period")
    tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
    if not tokens:
        raise ValueError("an empty phrase has no series")
    parts = [(ix, _periods_of(ix, live, period)) for ix, live in segments]
    parts = [(ix, sp) for ix, sp in parts if len(sp.totals)]
    if not parts:
        return []
    first = min(sp.first for _, sp in parts)
    span = max(sp.first + len(sp.totals) for _, sp in parts) - first
    totals = np.zeros(span, dtype=np.int64)
    hits = np.zeros(span, dtype=np.int64)
    for ix, sp in parts:
        totals[sp.first - first: sp.first - first + len(sp.totals)] += sp.totals
        rows = np.searchsorted(sp.starts, ix.positions(*ix.range(tokens)), side="right") - 1
        hits += np.bincount(sp.doc_period[rows[sp.counted[rows]]] - first, minlength=span)
    return [(period_label(first + i, period), int(hits[i]), int(totals[i])) for i in range(span)]


# ------------------------------------------------------------- per-period cache


@dataclass(frozen=True)
class _SegmentPeriods:
    """What :func:`series` needs of one segment for one period kind, whatever the phrase."""

    starts: np.ndarray  # the segment's doc_starts
    counted: np.ndarray  # doc rows that are live and dated
    doc_period: np.ndarray  # each doc's period number (undated docs: 0, never counted)
    first: int  # the period number of totals[0]
    totals: np.ndarray  # word tokens of the counted docs per period, from ``first``


# Segment -> {(period, live mask digest): _SegmentPeriods}. A segment's files never change
# (a new engine version is a new NgramIndex), so its entries live as long as it does: they
# go with it when the web app reopens the engine. The values hold no reference to the key.
_PERIODS: "weakref.WeakKeyDictionary[NgramIndex, dict[tuple[str, bytes], _SegmentPeriods]]" = (
    weakref.WeakKeyDictionary())
_PERIODS_LOCK = threading.Lock()
_PERIODS_PER_SEGMENT = 8  # period kinds x live masks kept per segment (a new mask per dead-row set)


def _mask_key(live: np.ndarray) -> bytes:
    """A digest of a live mask: two masks with the same digest are the same mask."""
    return hashlib.blake2b(np.packbits(live).tobytes() + len(live).to_bytes(8, "little"), digest_size=16).digest()


def _periods_of(ix: NgramIndex, live: np.ndarray, period: str) -> _SegmentPeriods:
    """The segment's per-period totals for ``live``, from the cache or computed (then cached)."""
    live = _live(ix, live)
    key = (period, _mask_key(live))
    with _PERIODS_LOCK:
        found = _PERIODS.get(ix, {}).get(key)
    if found is not None:
        return found
    made = _compute_periods(ix, live, period)
    with _PERIODS_LOCK:
        entries = _PERIODS.setdefault(ix, {})
        if len(entries) >= _PERIODS_PER_SEGMENT:
            entries.pop(next(iter(entries)))  # the oldest
        entries[key] = made
    return made


def _compute_periods(ix: NgramIndex, live: np.ndarray, period: str) -> _SegmentPeriods:
    days = np.array(ix.doc_days, dtype=np.int64)  # a copy: the cache must not pin the segment's files
    counted = live & (days >= 0)
    doc_period = np.where(days >= 0, period_index(np.maximum(days, 0), period), 0)
    starts = np.asarray(ix.doc_starts, dtype=np.int64)  # an array in memory already: shared, not copied
    p = doc_period[counted]
    if not len(p):
        return _SegmentPeriods(starts, counted, doc_period, 0, np.zeros(0, dtype=np.int64))
    first = int(p.min())
    sizes = (np.diff(starts) - 2)[counted]  # word tokens: each doc holds two separators
    totals = np.bincount(p - first, weights=sizes, minlength=int(p.max()) - first + 1).astype(np.int64)
    return _SegmentPeriods(starts, counted, doc_period, first, totals)
