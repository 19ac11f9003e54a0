"""Lexical retrieval: a BM25 index over paper titles, abstracts and author names.

Words matter in search: a researcher who types ``Infini-gram`` or an author's name
expects the papers that contain it. Documents and queries are reduced to the same
tokens (:mod:`papertide.text.tokens`, re-exported here), and documents are scored
with BM25.

Scores (:class:`BM25Index`): one BM25 over weighted term frequencies, BM25F's
"repeat each field w times" construction with a single b (Robertson, Zaragoza &
Taylor 2004, *Simple BM25 extension to multiple weighted fields*)::

    tf(t, d) = sum_f w_f * tf_f(t, d)          dl(d) = sum_f w_f * |d_f|
    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))              (Lucene)
    s(t, d)  = idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))    (Lucene >= 8)
    score(q, d) = sum over query tokens t (repeats count) of s(t, d)

as in Lucene's BM25Similarity (Kamphuis et al. 2020, *Which BM25 do you mean?*; the
constant factor (k1 + 1) is left out, which changes no ranking). Each posting stores
its impact s(t, d), so a query only adds up impacts. Results are sorted by score,
ties by document key: they depend on the set of documents only, never on their order.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple, Sequence

import numpy as np

from papertide.errors import ConfigError, FormatError, NotFoundError
from papertide.flatdir import publish, resolve
from papertide.text.postings import (
    Pending,
    Segment,
    StringTable,
    merge_vocab,
    place_rows,
)
from papertide.text.tokens import (  # noqa: F401  (re-exported: the index and its tokenizer go together)
    MAX_TOKEN_LENGTH,
    STOP_WORDS,
    TOKENIZER_VERSION,
    phrase_words,
    tokenize,
    tokenize_query,
)

if TYPE_CHECKING:
    from papertide.paper import Paper

FORMAT = "papertide-bm25"
FORMAT_VERSION = 1

# ------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class BM25Params:
    """BM25 parameters and field weights.

    k1 = 1.2 and b = 0.75 are the textbook values (Robertson & Zaragoza 2009; Lucene's
    defaults). The title weighs 2: a title is a dozen words chosen to name the paper's
    topic, so a word in it says more than one more mention in a 150-word abstract,
    yet twice (not 5 or 10 times) keeps the abstract, which holds most of a paper's
    words, in charge of ranking. Author names count like abstract words.
    """

    k1: float = 1.2
    b: float = 0.75
    title: float = 2.0
    abstract: float = 1.0
    authors: float = 1.0

    def __post_init__(self) -> None:
        values = {"k1": self.k1, "b": self.b, "title": self.title, "abstract": self.abstract, "authors": self.authors}
        for name, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"BM25 {name} must be a finite number >= 0, got {v!r}")
        if self.k1 > 100 or self.b > 1:
            raise ConfigError(f"BM25 needs 0 <= k1 <= 100 and 0 <= b <= 1, got k1={self.k1!r}, b={self.b!r}")
        for name in ("title", "abstract", "authors"):  # tiny weights would give impacts of 0
            if 0 < values[name] < 1e-3 or values[name] > 1e3:
                raise ConfigError(f"BM25 {name} weight must be 0 or between 0.001 and 1000, got {values[name]!r}")
        if self.title == self.abstract == self.authors == 0:
            raise ConfigError("BM25 field weights are all 0: nothing would be indexed")

    def as_dict(self) -> dict[str, float]:
        return {"k1": self.k1, "b": self.b, "title": self.title, "abstract": self.abstract, "authors": self.authors}


Doc = tuple[str, str, str, Sequence[str]]
"""A document to index: ``(doc_key, title, abstract, authors)``."""


def paper_doc(paper: Paper) -> Doc:
    """The document for a :class:`papertide.paper.Paper`."""
    return (paper.id, paper.title or "", paper.abstract or "", paper.authors or [])


class UpdateResult(NamedTuple):
    added: int  # documents whose key was new
    replaced: int  # documents whose key was indexed already
    removed: int  # documents removed (replaced ones not counted)


# ------------------------------------------------------------------ the maths


def _idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Lucene's BM25 IDF: ln(1 + (N - df + 0.5) / (df + 0.5)), always > 0."""
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def _length_norm(length: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """BM25's per-document length normalisation k1 * (1 - b + b * dl / avgdl), as float32."""
    return (k1 * (1.0 - b + b * length / avgdl)).astype(np.float32)


def _saturation(tf: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """BM25's term-frequency part without the (k1 + 1) factor: tf / (tf + norm)."""
    return tf / (tf + norm)


def _impacts(indptr: np.ndarray, docs: np.ndarray, tf: np.ndarray, length: np.ndarray,
             avgdl: float, k1: float, b: float, chunk: int = 1 << 22) -> np.ndarray:  # fmt: skip
    """Per posting idf(t) * saturation(tf, dl) in float32, term range by term range to bound memory."""
    out = np.empty(len(docs), dtype=np.float32)
    df = np.diff(indptr)
    idf = _idf(df.astype(np.float64), len(length)).astype(np.float32)
    norm = _length_norm(length, avgdl, k1, b)
    t, n_terms = 0, len(df)
    while t < n_terms:
        end = max(t + 1, int(np.searchsorted(indptr, indptr[t] + chunk, side="right")) - 1)
        s, e = indptr[t], indptr[end]
        out[s:e] = np.repeat(idf[t:end], df[t:end]) * _saturation(tf[s:e], norm[docs[s:e]])
        t = end
    return out


def _average_length(length: np.ndarray) -> float:
    """Mean weighted length; math.fsum is exact, so avgdl never depends on document order."""
    total = math.fsum(length.tolist())
    return total / len(length) if total > 0 else 1.0


def _contains(sorted_docs: np.ndarray, docs: np.ndarray, n_docs: int) -> np.ndarray:
    """Which of ``docs`` occur in ``sorted_docs`` (ascending doc numbers below ``n_docs``)."""
    if len(sorted_docs) == 0:
        return np.zeros(len(docs), dtype=bool)
    if len(docs) * 8 > n_docs:  # many to check: mark the documents once
        marked = np.zeros(n_docs, dtype=bool)
        marked[sorted_docs] = True
        return marked[docs]
    pos = np.minimum(np.searchsorted(sorted_docs, docs), len(sorted_docs) - 1)
    return sorted_docs[pos] == docs


# ------------------------------------------------------------------ the index

_ARRAYS = ("vocab_blob", "vocab_offsets", "indptr", "docs", "tf", "impacts", "length", "key_blob", "key_offsets", "key_order")  # fmt: skip


def _up_to_date(name: str) -> property:
    """A read-only attribute of :class:`BM25Index` that first merges pending updates."""
    return property(lambda self: getattr(self.flush(), name), doc=f"The index's {name[1:]} (up to date).")


class BM25Index:
    """BM25 over (title, abstract, authors) with CSR postings of precomputed impacts.

    Arrays (all flat, memory-mappable): ``vocab`` sorted; ``indptr`` (int64, one row per
    term); per posting ``docs`` (int32, ascending within a row), ``tf`` (float32 weighted
    term frequency, kept so updates can recompute impacts) and ``impacts`` (float32);
    per document ``length`` (float64 weighted length) and ``doc_keys``; ``key_order``
    (documents sorted by key) for lookups and tie-breaking. :meth:`update` only
    tokenizes; the arrays are brought up to date when next read.
    """

    def __init__(self, params: BM25Params, vocab: StringTable, indptr: np.ndarray, docs: np.ndarray,
                 tf: np.ndarray, impacts: np.ndarray, length: np.ndarray, doc_keys: StringTable,
                 key_order: np.ndarray, *, avgdl: float, watermark: object = None):  # fmt: skip
        self.params, self.watermark = params, watermark
        self._vocab, self._indptr, self._docs, self._tf, self._impacts = vocab, indptr, docs, tf, impacts
        self._length, self._keys, self._key_order, self._avgdl = length, doc_keys, key_order, avgdl
        self._key_rank = np.empty(len(key_order), dtype=np.int32)
        self._key_rank[key_order] = np.arange(len(key_order), dtype=np.int32)
        self._pending: Pending | None = None

    vocab, indptr, docs, tf, impacts = map(_up_to_date, ("_vocab", "_indptr", "_docs", "_tf", "_impacts"))
    length, doc_keys, key_order, avgdl = map(_up_to_date, ("_length", "_keys", "_key_order", "_avgdl"))

    # -- building ------------------------------------------------------------------
    @classmethod
    def empty(cls, params: BM25Params | None = None) -> "BM25Index":
        none = StringTable.from_list([])
        zero = np.zeros(1, dtype=np.int64)
        return cls(params or BM25Params(), none, zero, np.zeros(0, np.int32), np.zeros(0, np.float32),
                   np.zeros(0, np.float32), np.zeros(0, np.float64), none, np.zeros(0, np.int32), avgdl=1.0)  # fmt: skip

    @classmethod
    def build(cls, docs: Iterable[Doc], params: BM25Params | None = None, *,
              progress: Callable[[int], None] | None = None) -> "BM25Index":  # fmt: skip
        """An index of ``docs``; ``progress(n)`` is told every time n more are tokenized."""
        index = cls.empty(params)
        index.update(docs, progress=progress)
        return index.flush()

    def update(self, docs: Iterable[Doc] = (), removed: Iterable[str] = (), *,
               progress: Callable[[int], None] | None = None) -> UpdateResult:  # fmt: skip
        """Add or replace ``docs``, then drop the ``removed`` keys (unknown ones are ignored).

        Only the given documents are tokenized now. When the index is next read, every
        impact is recomputed with the new N, df and avgdl, so the index equals one built
        from scratch on the same documents (survivors keep their order, new ones follow;
        a key given twice keeps its last version). Many small updates cost one merge.
        """
        if isinstance(removed, str):
            raise TypeError("removed must be an iterable of keys, not a string")
        if self._pending is None:
            self._pending = Pending((self.params.title, self.params.abstract, self.params.authors), self._keys.tolist())
        pending, added, replaced, gone = self._pending, 0, 0, 0
        for doc in docs:
            if pending.exists(doc[0]):
                replaced += 1
            else:
                added += 1
            pending.add(doc)
            if progress is not None and (added + replaced) % 1000 == 0:
                progress(1000)
        if progress is not None and (added + replaced) % 1000:
            progress((added + replaced) % 1000)
        for key in removed:
            if pending.exists(key):
                gone += 1
                pending.drop(key)
        return UpdateResult(added, replaced, gone)

    def flush(self) -> "BM25Index":
        """Merge pending updates into the arrays (every read does it first); returns the index."""
        pending, self._pending = self._pending, None
        if pending is None or (not pending.keys and not pending.removed):
            return self
        keep = None
        if pending.removed:
            keep = np.ones(len(pending.old_keys), dtype=bool)
            keep[list(pending.removed)] = False
        self._merge(pending.segment(), keep, pending.old_keys)
        return self

    def _merge(self, seg: Segment, keep: np.ndarray | None, old_keys: list[str]) -> None:
        if len(self._keys) == 0:
            vocab, indptr, docs, tf = seg.terms, seg.indptr, seg.docs, seg.tf
            length, keys = seg.length, seg.keys
        else:
            o_docs, o_tf, o_indptr, length, keys = self._docs, self._tf, self._indptr, self._length, old_keys
            if keep is not None:
                gone = np.flatnonzero(~keep[self._docs])  # postings of dropped documents
                renumber = (np.cumsum(keep) - 1).astype(np.int32)
                o_docs, o_tf = renumber[np.delete(self._docs, gone)], np.delete(self._tf, gone)
                o_indptr = self._indptr - np.searchsorted(gone, self._indptr)
                length, keys = self._length[keep], [k for k, kept in zip(old_keys, keep.tolist()) if kept]
            vocab, old_at, new_at = merge_vocab(self._vocab.tolist(), seg.terms)
            old_counts = np.zeros(len(vocab), dtype=np.int64)
            old_counts[old_at] = np.diff(o_indptr)
            counts = old_counts.copy()
            counts[new_at] += np.diff(seg.indptr)
            indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
            np.cumsum(counts, out=indptr[1:])
            docs, tf = np.empty(indptr[-1], dtype=np.int32), np.empty(indptr[-1], dtype=np.float32)
            place_rows(docs, tf, indptr, old_at, 0, o_docs, o_tf, o_indptr)
            place_rows(docs, tf, indptr, new_at, old_counts[new_at], seg.docs + np.int32(len(keys)), seg.tf, seg.indptr)
            length, keys = np.concatenate([length, seg.length]), keys + seg.keys
            used = counts > 0
            if not used.all():  # terms whose every document left
                vocab = [t for t, u in zip(vocab, used.tolist()) if u]
                indptr = np.concatenate([[0], indptr[1:][used]])
        if len(keys) >= 1 << 31:
            raise ValueError("more than 2**31 documents")
        p = self.params
        self._avgdl = _average_length(length)
        self._vocab, self._keys = StringTable.from_list(vocab), StringTable.from_list(keys)
        self._indptr, self._docs, self._tf, self._length = indptr, docs, tf, length
        self._impacts = _impacts(indptr, docs, tf, length, self._avgdl, p.k1, p.b)
        self._key_order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int32)
        self._key_rank = np.empty(len(keys), dtype=np.int32)
        self._key_rank[self._key_order] = np.arange(len(keys), dtype=np.int32)

    # -- looking up ----------------------------------------------------------------
    @property
    def n_docs(self) -> int:
        return len(self.flush()._length)

    def __len__(self) -> int:
        return self.n_docs

    @property
    def n_terms(self) -> int:
        return len(self.flush()._vocab)

    @property
    def nbytes(self) -> int:
        """Bytes of every array (what the saved index takes on disk, less headers)."""
        return sum(a.nbytes for a in self._arrays().values())

    def term_id(self, token: str) -> int:
        """The token's row in the vocabulary, -1 if no document has it."""
        return self.flush()._vocab.find_sorted(token)

    def term_docs(self, token: str) -> np.ndarray:
        """Ascending doc numbers (int32) of the documents containing ``token``; a read-only view."""
        i = self.term_id(token)
        view = self._docs[self._indptr[i] : self._indptr[i + 1]] if i >= 0 else np.zeros(0, np.int32)
        view.flags.writeable = False
        return view

    def doc_number(self, key: str) -> int:
        """The doc number of a document key; :class:`NotFoundError` if it is not indexed."""
        i = self.flush()._keys.find_sorted(key, self._key_order)
        if i < 0:
            raise NotFoundError(f"{key!r} is not in the lexical index")
        return i

    # -- searching -----------------------------------------------------------------
    def search(self, tokens: Sequence[str], k: int = 10, *, allowed: np.ndarray | None = None,
               required: Sequence[str] | None = None, excluded: Sequence[str] | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Best ``k`` doc numbers (int64) and BM25 scores (float32), best first, ties by key.

        A hit contains at least one of ``tokens`` (unknown ones are ignored; a repeated
        token counts again), every ``required`` token (a filter: pass them in ``tokens``
        too to score them), none of ``excluded``, and is True in ``allowed`` (a bool mask
        over doc numbers). Tokens must come from :func:`tokenize_query`.
        """
        if isinstance(tokens, str):
            raise TypeError("search() takes a list of tokens; use search_text() for a query string")
        self.flush()
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        nothing = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        weights: dict[int, int] = {}
        for t in tokens:
            i = self.term_id(t)
            if i >= 0:
                weights[i] = weights.get(i, 0) + 1
        must = [self.term_id(t) for t in required or ()]
        if k == 0 or not weights or min(must, default=0) < 0:
            return nothing
        cand, scores = self._accumulate(weights)
        keep = None if allowed is None else self._mask(allowed)[cand]
        for i in must:
            found = _contains(self._docs[self._indptr[i] : self._indptr[i + 1]], cand, len(self._length))
            keep = found if keep is None else keep & found
        for t in excluded or ():
            i = self.term_id(t)
            if i >= 0:
                found = _contains(self._docs[self._indptr[i] : self._indptr[i + 1]], cand, len(self._length))
                keep = ~found if keep is None else keep & ~found
        if keep is not None:  # (integer takes: boolean indexing is slow on scattered masks)
            kept = np.flatnonzero(keep)
            cand, scores = cand[kept], scores[kept]
        return self._top(cand, scores, k)

    def search_text(self, query: str, k: int = 10, **filters) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` for a plain query string."""
        return self.search(tokenize_query(query), k, **filters)

    def _accumulate(self, weights: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Matching doc numbers (ascending) and their summed impacts (float32, added in query order)."""
        spans = [(int(self._indptr[i]), int(self._indptr[i + 1]), w) for i, w in weights.items()]
        docs = [self._docs[s:e] for s, e, _ in spans]
        values = [self._impacts[s:e] * np.float32(w) if w != 1 else self._impacts[s:e] for s, e, w in spans]
        if len(spans) == 1:
            return docs[0], values[0]
        acc = np.zeros(self.n_docs, dtype=np.float32)
        for d, v in zip(docs, values):
            np.add.at(acc, d, v)
        # Impacts are > 0, so the non-zero entries are the matches; few matches are cheaper to sort.
        few = sum(map(len, docs)) * 16 < self.n_docs
        cand = np.unique(np.concatenate(docs)) if few else np.flatnonzero(acc != 0)
        return cand, acc[cand]

    def _mask(self, allowed: np.ndarray) -> np.ndarray:
        mask = np.asarray(allowed)
        if mask.dtype != np.bool_ or mask.shape != (self.n_docs,):
            raise ValueError(f"allowed must be a bool array of shape ({self.n_docs},), got {mask.dtype} {mask.shape}")
        return mask

    def _top(self, cand: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(cand) > k:
            sample = scores[:: max(1, len(scores) >> 12)]
            if k < len(sample) < len(scores):  # a sample's k-th best is <= the k-th best: keep what beats it
                beat = np.flatnonzero(scores >= np.partition(sample, len(sample) - k)[len(sample) - k])
                cand, scores = cand[beat], scores[beat]
            threshold = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th best score
            sel = np.flatnonzero(scores >= threshold)
            cand, scores = cand[sel], scores[sel]
        order = np.lexsort((self._key_rank[cand], -scores))[:k]
        return cand[order].astype(np.int64), scores[order].astype(np.float32)

    # -- storage -------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        self.flush()
        return {"vocab_blob": self._vocab.blob, "vocab_offsets": self._vocab.offsets, "indptr": self._indptr,
                "docs": self._docs, "tf": self._tf, "impacts": self._impacts, "length": self._length,
                "key_blob": self._keys.blob, "key_offsets": self._keys.offsets, "key_order": self._key_order}  # fmt: skip

    def _params_json(self) -> dict:
        self.flush()
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "tokenizer_version": TOKENIZER_VERSION,
                "params": self.params.as_dict(), "idf": "lucene", "n_docs": self.n_docs, "n_terms": self.n_terms,
                "n_postings": len(self._docs), "avgdl": self._avgdl, "watermark": self.watermark}  # fmt: skip

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index as a directory of .npy files and params.json, replacing it atomically."""
        with publish(directory) as tmp:
            for name, arr in self._arrays().items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            with open(tmp / "params.json", "w", encoding="utf-8") as f:
                json.dump(self._params_json(), f, indent=1)
        return Path(directory)

    @staticmethod
    def exists(directory: str | os.PathLike) -> bool:
        return (Path(directory) / "params.json").is_file()

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> "BM25Index":
        """Open a saved index; arrays are memory-mapped read-only unless ``mmap`` is False."""
        d = resolve(directory)
        try:
            meta = json.loads((d / "params.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(f"no lexical index in {d} (params.json is missing)") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(f"{d / 'params.json'} is not valid JSON: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise FormatError(f"{d} does not hold a papertide BM25 index")
        if meta.get("format_version") != FORMAT_VERSION or meta.get("tokenizer_version") != TOKENIZER_VERSION:
            raise FormatError(f"the lexical index in {d} was written by another papertide version: rebuild it")
        try:
            a = {n: np.load(d / f"{n}.npy", mmap_mode="r" if mmap else None, allow_pickle=False) for n in _ARRAYS}
            params = BM25Params(**meta["params"])
            index = cls(params, StringTable(a["vocab_blob"], a["vocab_offsets"]), a["indptr"], a["docs"], a["tf"],
                        a["impacts"], a["length"], StringTable(a["key_blob"], a["key_offsets"]), a["key_order"],
                        avgdl=float(meta["avgdl"]), watermark=meta.get("watermark"))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise FormatError(f"the lexical index in {d} is damaged: {e}") from None
        n, v = index.n_docs, index.n_terms
        if (len(index.indptr) != v + 1 or len(index.docs) != index.indptr[-1] or len(index.tf) != len(index.docs)
                or len(index.impacts) != len(index.docs) or len(index.doc_keys) != n or len(index.key_order) != n
                or meta.get("n_docs") != n):  # fmt: skip
            raise FormatError(f"the lexical index in {d} is damaged: array sizes disagree")
        return index
