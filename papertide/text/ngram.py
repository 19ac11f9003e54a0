"""An infini-gram-style n-gram index: a suffix array over the word tokens of titles and abstracts.

Infini-gram (Liu et al., 2024) answers any n-gram count over a token stream with two
binary searches in its suffix array: every occurrence of a phrase is the start of a
suffix, all suffixes that start with the phrase sit side by side in sorted order, and
the count is the width of that segment. The same segment lists the positions (so the
papers and the place in each), and the tokens right after those positions are the
next-word distribution. This module is one such index over a fixed set of papers (a
*segment*); :mod:`papertide.phrases` keeps a main segment and a small delta segment in
step with the store.

**Tokens** (:func:`ngram_tokens`): a word is a run of letters and digits, every other
non-space character is a token of its own ("punctuation split off"), and each token
is NFKC-normalised and case-folded. ``"Language Models, e.g."`` gives ``language
models , e . g .``. No stop words, no stemming: counts are of what the papers say.

**Stream**: paper after paper, its title tokens, a separator, its abstract tokens, a
separator. The separator is token id 0; word ids are 1..V in sorted string order, so
the words sharing a prefix have neighbouring ids (autocomplete is one more range).
A phrase never contains the separator, so no match can cross a title, an abstract or
a paper boundary.

**Files** (a directory, memory-mapped): ``tokens.bin`` the stream, each id big-endian
in ``token_width`` bytes (2 when the vocabulary fits, else 3) so that comparing raw
bytes compares token sequences; ``sa.bin`` the suffix array over word positions
(separators left out), each little-endian in ``pointer_width`` bytes (the fewest that
address the stream: 3 up to 16M tokens, 4 up to 4G); ``vocab.txt``; ``first.npy`` where
each word's suffixes begin (a one-word count needs no search); ``doc_starts.npy``,
``doc_days.npy`` and ``keys.json`` for the papers. Size per token:
``token_width + pointer_width`` (≤ 7 up to 4G tokens and 16M distinct words), plus
a few bytes per paper and per distinct word.

**Construction**: the suffix array comes from libdivsufsort (``pydivsufsort``), the
standard induced-sorting suffix sorter (O(n log n) worst case, linear in practice),
then keeps word positions only.
"""

from __future__ import annotations

import bisect
import json
import mmap
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from papertide.errors import FormatError
from papertide.flatdir import publish, resolve

FORMAT = "papertide-ngram-1"
SEP = 0  # the separator token id: ends every title and every abstract
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]|_")
_FOLD_CACHE: dict[str, str] = {}


def _fold(token: str) -> str:
    if token.isascii():
        return token.lower()
    folded = _FOLD_CACHE.get(token)
    if folded is None:
        folded = unicodedata.normalize("NFKC", token).casefold()
        if len(_FOLD_CACHE) < 200_000:
            _FOLD_CACHE[token] = folded
    return folded


def ngram_tokens(text: str) -> list[str]:
    """The n-gram engine's tokens of ``text``: words and single punctuation marks, folded."""
    if text.isascii():
        return _TOKEN.findall(text.lower())
    return [_fold(t) for t in _TOKEN.findall(text)]


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character spans in ``text`` of its :func:`ngram_tokens`, one per token (for highlighting)."""
    return [m.span() for m in _TOKEN.finditer(text)]


def doc_tokens(title: str, abstract: str) -> list[str]:
    """A paper as the stream holds it, separators as ``""``: title, SEP, abstract, SEP.

    Positions returned by :meth:`NgramIndex.find` index into this list.
    """
    return [*ngram_tokens(title), "", *ngram_tokens(abstract), ""]


def highlight(title: str, abstract: str, offsets: Iterable[int], length: int) -> dict[str, list[tuple[int, int]]]:
    """Character spans to mark in the title and the abstract for phrase matches of
    ``length`` tokens starting at the doc offsets ``offsets`` (from :meth:`NgramIndex.find`)."""
    spans = {"title": token_spans(title), "abstract": token_spans(abstract)}
    out: dict[str, list[tuple[int, int]]] = {"title": [], "abstract": []}
    for off in offsets:
        field, start = ("title", off) if off < len(spans["title"]) else ("abstract", off - len(spans["title"]) - 1)
        s = spans[field]
        if 0 <= start and start + length <= len(s):
            out[field].append((s[start][0], s[start + length - 1][1]))
    return out


def phrase_highlights(title: str, abstract: str, phrases: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """Character spans of every whole-word occurrence of each phrase in one paper's title
    and abstract — the engine's matching, applied to a single paper (for result lists)."""
    toks = doc_tokens(title, abstract)
    out: dict[str, list[tuple[int, int]]] = {"title": [], "abstract": []}
    for phrase in phrases:
        want = ngram_tokens(phrase)
        m = len(want)
        if not m:
            continue
        offsets = [i for i in range(len(toks) - m + 1) if toks[i] == want[0] and toks[i:i + m] == want]
        for field, spans in highlight(title, abstract, offsets, m).items():
            out[field].extend(spans)
    return {field: sorted(spans) for field, spans in out.items()}


@dataclass(frozen=True)
class Doc:
    """One paper for the index: its key (paper id), submission day number (-1 unknown), text."""

    key: str
    day: int
    title: str
    abstract: str


def _width(n: int) -> int:
    """Bytes needed to store the integers 0..n."""
    return max(1, (int(n).bit_length() + 7) // 8)


class _Encoder:
    """Maps token strings to provisional ids while a stream is assembled."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {"": SEP}
        self.words: list[str] = [""]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        ids, words = self.ids, self.words
        out = np.empty(len(tokens), dtype=np.uint32)
        for i, t in enumerate(tokens):
            j = ids.get(t)
            if j is None:
                j = ids[t] = len(words)
                words.append(t)
            out[i] = j
        return out


def build_stream(docs: Iterable[Doc]) -> tuple[np.ndarray, list[str], np.ndarray, list[str], np.ndarray]:
    """Tokenize papers into (token ids, sorted vocabulary, doc starts, keys, days).

    Ids are 1..V in the order of the sorted vocabulary (``vocab[id - 1]``), 0 the separator.
    """
    enc = _Encoder()
    chunks: list[np.ndarray] = []
    starts, keys, days = [0], [], []
    total = 0
    for d in docs:
        ids = enc.encode(doc_tokens(d.title, d.abstract))
        chunks.append(ids)
        total += len(ids)
        starts.append(total)
        keys.append(d.key)
        days.append(d.day)
    stream = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint32)
    return _sorted_ids(stream, enc.words) + (np.array(starts, dtype=np.int64), keys, np.array(days, dtype=np.int32))


def _sorted_ids(stream: np.ndarray, words: list[str]) -> tuple[np.ndarray, list[str]]:
    """Renumber provisional ids (``words[id]``, ``words[0] == ""``) so that ids follow string order."""
    order = sorted(range(1, len(words)), key=words.__getitem__)
    remap = np.zeros(len(words), dtype=np.uint32)
    remap[np.array(order, dtype=np.int64)] = np.arange(1, len(order) + 1, dtype=np.uint32)
    return remap[stream], [words[i] for i in order]


def suffix_array(stream: np.ndarray) -> np.ndarray:
    """Positions of the word tokens of ``stream`` in the sorted order of their suffixes."""
    if len(stream) == 0:
        return np.zeros(0, dtype=np.int64)
    from pydivsufsort import divsufsort

    sa = divsufsort(np.ascontiguousarray(stream))
    return sa[stream[sa] != SEP]


def write_segment(directory: str | Path, stream: np.ndarray, vocab: list[str], doc_starts: np.ndarray,
                  keys: list[str], days: np.ndarray, *, watermark: int = 0) -> None:  # fmt: skip
    """Build the suffix array of a tokenized stream and publish the segment atomically."""
    stream = np.asarray(stream, dtype=np.uint32)
    if len(stream) and int(stream[-1]) != SEP:
        raise ValueError("a stream must end with the separator")
    if len(stream) >= 2**32 or len(vocab) >= 2**24:
        raise ValueError("one segment holds at most 4G tokens and 16M distinct words")
    sa = suffix_array(stream)
    tw = 2 if len(vocab) < 2**16 else 3
    pw = _width(max(len(stream) - 1, 0))
    first = np.zeros(len(vocab) + 2, dtype=np.int64)  # first[w]: where word w's suffixes start
    if len(stream):
        first[2:] = np.cumsum(np.bincount(stream, minlength=len(vocab) + 1)[1:])
    with publish(directory) as tmp:
        big = stream.astype(">u4").view(np.uint8).reshape(-1, 4)[:, 4 - tw:]
        (tmp / "tokens.bin").write_bytes(np.ascontiguousarray(big).tobytes())
        little = sa.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :pw]
        (tmp / "sa.bin").write_bytes(np.ascontiguousarray(little).tobytes())
        (tmp / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
        np.save(tmp / "first.npy", first[1:].astype(np.uint32))  # [w - 1] = start of word w, [V] = end
        np.save(tmp / "doc_starts.npy", np.asarray(doc_starts, dtype=np.uint32))
        np.save(tmp / "doc_days.npy", np.asarray(days, dtype=np.int32))
        (tmp / "keys.json").write_text(json.dumps(list(keys), ensure_ascii=False))
        params = {"format": FORMAT, "tokens": int(len(stream)), "words": int(len(sa)), "docs": len(keys),
                  "vocab": len(vocab), "token_width": tw, "pointer_width": pw, "watermark": int(watermark)}
        (tmp / "params.json").write_text(json.dumps(params, indent=1))


def build_segment(directory: str | Path, docs: Iterable[Doc], *, watermark: int = 0) -> None:
    """Tokenize ``docs`` and write their segment to ``directory``."""
    stream, vocab, starts, keys, days = build_stream(docs)
    write_segment(directory, stream, vocab, starts, keys, days, watermark=watermark)


def _map(path: Path) -> mmap.mmap | bytes:
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class NgramIndex:
    """One loaded segment: exact counts, positions and next-word distributions of phrases.

    Phrases are given as text (tokenized by :func:`ngram_tokens`) or as token lists.
    """

    def __init__(self, directory: str | Path):
        directory = resolve(directory)
        try:
            p = json.loads((directory / "params.json").read_text())
            if p.get("format") != FORMAT:
                raise FormatError(f"{directory}: not a papertide n-gram index ({p.get('format')!r})")
            self.params = p
            self.tw, self.pw = int(p["token_width"]), int(p["pointer_width"])
            self._tokens = _map(directory / "tokens.bin")
            self._sa = _map(directory / "sa.bin")
            vocab_text = (directory / "vocab.txt").read_text(encoding="utf-8")
            self.vocab = vocab_text.split("\n") if p["vocab"] else []
            self.first = np.load(directory / "first.npy").astype(np.int64)
            self.doc_starts = np.load(directory / "doc_starts.npy").astype(np.int64)
            self.doc_days = np.load(directory / "doc_days.npy", mmap_mode="r")
            self.keys: list[str] = json.loads((directory / "keys.json").read_text())
        except (OSError, ValueError, KeyError) as e:
            raise FormatError(f"{directory}: unreadable n-gram index ({e})") from None
        if (len(self._tokens) != p["tokens"] * self.tw or len(self._sa) != p["words"] * self.pw
                or len(self.vocab) != p["vocab"] or len(self.keys) != p["docs"]):  # fmt: skip
            raise FormatError(f"{directory}: n-gram index files do not match their params.json")
        self.directory = directory
        self.watermark = int(p["watermark"])

    # ------------------------------------------------------------------ sizes

    @property
    def n_tokens(self) -> int:
        return int(self.params["tokens"])

    def __len__(self) -> int:
        return len(self.keys)

    def nbytes(self, names: Sequence[str] | None = None) -> int:
        """Bytes on disk of the segment's files (all of them, or those named)."""
        return sum(f.stat().st_size for f in self.directory.iterdir()
                   if f.is_file() and (names is None or f.name in names))  # fmt: skip

    # ------------------------------------------------------------- encoding

    @cached_property
    def ids(self) -> dict[str, int]:
        """word -> id for bulk lookups (built on first use: ~0.1 s per 100k words)."""
        return {w: i + 1 for i, w in enumerate(self.vocab)}

    def word_id(self, word: str) -> int:
        """The id of ``word``, 0 when it never occurs here (a bisection of the sorted
        vocabulary: opening a segment builds no dictionary)."""
        i = bisect.bisect_left(self.vocab, word)
        return i + 1 if i < len(self.vocab) and self.vocab[i] == word and word else 0

    def encode(self, phrase: str | Sequence[str]) -> list[int] | None:
        """Token ids of a phrase, or None when one of its words never occurs here."""
        tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
        ids = [self.word_id(t) for t in tokens]
        return None if 0 in ids else ids

    def _key(self, ids: Sequence[int]) -> bytes:
        return b"".join(int(i).to_bytes(self.tw, "big") for i in ids)

    def _pos(self, k: int) -> int:
        pw = self.pw
        return int.from_bytes(self._sa[k * pw:(k + 1) * pw], "little")

    def _bound(self, key: bytes, lo: int, hi: int, upper: bool) -> int:
        """First suffix in [lo, hi) whose first len(key) bytes are >= key (> key if upper)."""
        tokens, tw, n = self._tokens, self.tw, len(key)
        sa, pw = self._sa, self.pw
        while lo < hi:
            mid = (lo + hi) >> 1
            p = int.from_bytes(sa[mid * pw:(mid + 1) * pw], "little") * tw
            s = tokens[p:p + n]
            if s < key or (upper and s == key):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def id_range(self, ids: Sequence[int]) -> tuple[int, int]:
        """The suffix-array segment [lo, hi) of suffixes starting with ``ids`` (empty: everything)."""
        if not ids:
            return 0, int(self.params["words"])
        w = ids[0]
        lo, hi = int(self.first[w - 1]), int(self.first[w])
        if len(ids) == 1 or lo == hi:
            return lo, hi
        key = self._key(ids)
        lo = self._bound(key, lo, hi, upper=False)
        return lo, self._bound(key, lo, hi, upper=True)

    def range(self, phrase: str | Sequence[str]) -> tuple[int, int]:
        ids = self.encode(phrase)
        return (0, 0) if ids is None else self.id_range(ids)

    # --------------------------------------------------------------- queries

    def count(self, phrase: str | Sequence[str]) -> int:
        """Exact number of occurrences of the phrase (0 for an empty phrase)."""
        tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
        if not tokens:
            return 0
        lo, hi = self.range(tokens)
        return hi - lo

    def positions(self, lo: int, hi: int) -> np.ndarray:
        """Stream positions of the suffixes [lo, hi) (int64)."""
        if hi <= lo:
            return np.zeros(0, dtype=np.int64)
        raw = np.frombuffer(self._sa, dtype=np.uint8, count=(hi - lo) * self.pw, offset=lo * self.pw)
        wide = np.zeros((hi - lo, 8), dtype=np.uint8)
        wide[:, :self.pw] = raw.reshape(-1, self.pw)
        return wide.view("<u8").ravel().astype(np.int64)

    def positions_at(self, ks: np.ndarray) -> np.ndarray:
        """Stream positions of the suffixes at suffix-array indices ``ks`` (int64)."""
        ks = np.asarray(ks, dtype=np.int64)
        if not len(ks):
            return np.zeros(0, dtype=np.int64)
        raw = np.frombuffer(self._sa, dtype=np.uint8).reshape(-1, self.pw)[ks]
        wide = np.zeros((len(ks), 8), dtype=np.uint8)
        wide[:, :self.pw] = raw
        return wide.view("<u8").ravel().astype(np.int64)

    def tokens_between(self, lo: int, hi: int) -> np.ndarray:
        """Token ids of stream positions [lo, hi) (uint32), read as one slice."""
        if hi <= lo:
            return np.zeros(0, dtype=np.uint32)
        raw = np.frombuffer(self._tokens, dtype=np.uint8, count=(hi - lo) * self.tw, offset=lo * self.tw)
        wide = np.zeros((hi - lo, 4), dtype=np.uint8)
        wide[:, 4 - self.tw:] = raw.reshape(-1, self.tw)
        return wide.view(">u4").ravel().astype(np.uint32)

    def tokens_at(self, positions: np.ndarray) -> np.ndarray:
        """Token ids at stream positions (uint32)."""
        tok = np.frombuffer(self._tokens, dtype=np.uint8) if len(self._tokens) else np.zeros(0, np.uint8)
        base = np.asarray(positions, dtype=np.int64) * self.tw
        out = np.zeros(len(base), dtype=np.uint32)
        for j in range(self.tw):
            out = (out << 8) | tok[base + j]
        return out

    def stream(self) -> np.ndarray:
        """The whole token stream as ids (uint32)."""
        return self.tokens_between(0, self.n_tokens)

    def find(self, phrase: str | Sequence[str]) -> dict[str, list[int]]:
        """Papers containing the phrase: ``{key: [token offsets in doc_tokens order]}``."""
        tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
        if not tokens:
            return {}
        pos = np.sort(self.positions(*self.range(tokens)))
        rows = np.searchsorted(self.doc_starts, pos, side="right") - 1
        out: dict[str, list[int]] = {}
        for r, p in zip(rows.tolist(), (pos - np.asarray(self.doc_starts)[rows]).tolist()):
            out.setdefault(self.keys[r], []).append(p)
        return out

    def next_ids(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Distinct next-token ids after ``ids`` and their counts (separator included as 0)."""
        lo, hi = self.id_range(ids)
        if hi <= lo:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
        nxt = self.tokens_at(self.positions(lo, hi) + len(ids))
        return np.unique(nxt, return_counts=True)

    def next_words(self, phrase: str | Sequence[str]) -> dict[str, int]:
        """The next-word distribution after the phrase, as counts (ends of a title or an
        abstract are left out)."""
        tokens = ngram_tokens(phrase) if isinstance(phrase, str) else list(phrase)
        ids = self.encode(tokens)
        if ids is None:
            return {}
        words, counts = self.next_ids(ids)
        return {self.vocab[w - 1]: int(c) for w, c in zip(words.tolist(), counts.tolist()) if w != SEP}

    def prefix_ids(self, prefix: str) -> tuple[int, int]:
        """The id range [a, b) of the words starting with ``prefix`` (already folded)."""
        a = bisect.bisect_left(self.vocab, prefix)
        b = bisect.bisect_left(self.vocab, prefix + "\U0010ffff")
        return a + 1, b + 1

    def prefix_range(self, context: Sequence[int], a: int, b: int) -> tuple[int, int]:
        """The suffix-array segment of ``context`` followed by any word id in [a, b)."""
        if b <= a:
            return 0, 0
        if not context:
            return int(self.first[a - 1]), int(self.first[b - 1])
        lo, hi = self.id_range(context)
        if hi <= lo:
            return lo, lo
        lo = self._bound(self._key([*context, a]), lo, hi, upper=False)
        return lo, self._bound(self._key([*context, b - 1]), lo, hi, upper=True)

    def word_counts(self, a: int, b: int) -> np.ndarray:
        """Occurrences of each word id in [a, b)."""
        return np.diff(self.first[a - 1:b]) if b > a else np.zeros(0, dtype=np.int64)
