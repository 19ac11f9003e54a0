"""Dense vector search over sentence embeddings: compact codes and an index that uses them.

Similar papers and the dense half of hybrid search both ask "which papers' embeddings
are closest (cosine) to this vector?". A float32 dot product over every paper answers
exactly and is fast enough below ~50k papers; at a million it reads 1.5 GB per query.
So large collections are searched in stages, as in the Binary Paragraph Vector and
2D-Matryoshka papers of the seed page and sentence-transformers' ``quantize_embeddings``:

1. a Hamming scan of 1-bit codes (48 bytes per 384-d vector) picks ``rescore_factor * k``
   candidates, optionally on a Matryoshka prefix of the dimensions only;
2. the candidates are rescored with int8 codes, and the best ``refine_factor * k`` of them
   with the stored float vectors, which gives the returned (exact) cosine scores.

The codes are pure functions on arrays (:func:`truncate`, :func:`calibrate`,
:func:`quantize`, :func:`dequantize`, :func:`hamming`); :class:`VectorIndex` holds keys
(paper ids) and vectors, searches, updates incrementally and is saved as a directory of
flat files (see :meth:`VectorIndex.save`) that :meth:`VectorIndex.load` memory-maps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence, get_args

import numpy as np
import orjson

from papertide.errors import FormatError, NotFoundError
from papertide.flatdir import publish, resolve
from papertide.text.codes import PRECISIONS, Precision  # noqa: F401

Stored = Literal["float32", "float16", "int8"]
STORED: tuple[str, ...] = get_args(Stored)
Mode = Literal["auto", "exact", "compact"]
MODES: tuple[str, ...] = get_args(Mode)

FORMAT = "papertide.vectors"
FORMAT_VERSION = 1
MIN_CALIBRATION = 256  # fewer vectors than this: the data-independent calibration
_CHUNK = 65536  # rows per chunk of float work on large arrays (bounded temporaries)
_GATHER = 4  # scoring a row picked by fancy indexing costs ~4 rows of a contiguous scan (measured)
_WORD = np.dtype("<u8")
_SETTINGS = ("model", "precision", "exact_below", "rescore_factor", "refine_factor", "candidate_dim")


from papertide.text.codes import (  # noqa: F401 - re-exported: the codes are part of this module's API
    _check_option,
    _positive,
    normalize,
    truncate,
    Calibration,
    calibrate,
    quantize,
    dequantize,
    hamming,
    _pack_words,
    _hamming_words,
    _smallest,
    _top_k,
)


class VectorIndex:
    """Keys (paper ids) and their unit vectors; cosine search, exact or through compact codes.

    Documents are numbered by row. ``add`` appends, ``update`` rewrites rows in place,
    ``remove`` leaves tombstones; :meth:`compact` (and :meth:`save`, which compacts first)
    drops them and renumbers, so keys, not doc numbers, are the stable handle. Masks
    (``allowed``/``exclude``) have one entry per row: length :attr:`size`.

    ``precision`` is what the full vectors are kept as: ``float32`` (exact), ``float16``
    (half the memory, scores within ~1e-3) or ``int8`` (no float file: every score is the
    int8 approximation). Binary and int8 codes are always kept.

    Calibration: below ``MIN_CALIBRATION`` vectors the data-independent
    :meth:`Calibration.identity`; then (float vectors kept) a recalibration on the live
    vectors whenever their number has doubled since the last one, and on every
    :meth:`compact` after a change. So a compacted index equals one built from scratch on
    the same keys and vectors in the same order, codes included. An ``int8`` index
    calibrates once, on the first batch of at least ``MIN_CALIBRATION`` vectors.
    """

    def __init__(
        self, dim: int = 384, *, precision: Stored = "float32", model: str = "", exact_below: int = 50_000,
        rescore_factor: int = 40, refine_factor: int = 4, candidate_dim: int | None = None,
    ) -> None:  # fmt: skip
        self.dim = _positive("dim", dim)
        self.precision = _check_option("precision", precision, STORED)
        self.model = model
        self.exact_below = _positive("exact_below", exact_below, zero_ok=True)
        self.rescore_factor = _positive("rescore_factor", rescore_factor)
        self.refine_factor = _positive("refine_factor", refine_factor)
        if candidate_dim is not None and (candidate_dim % 64 or not 0 < candidate_dim <= self.dim):
            raise ValueError(f"candidate_dim must be a multiple of 64 in 64..{self.dim} or None, not {candidate_dim!r}")
        self.candidate_dim = candidate_dim
        self.watermark: Any = None  # the store watermark this index covers; set by the caller
        self.calibration = Calibration.identity(self.dim)
        self._n = self._dead = 0
        self._changed = False  # since the last calibration / compaction
        self._bits = np.zeros((-(-self.dim // 64), 0), _WORD)
        self._i8 = np.zeros((0, self.dim), np.int8)
        self._full = None if precision == "int8" else np.zeros((0, self.dim), np.dtype(precision))
        self._live = np.zeros(0, bool)
        self._keys: list[str | None] = []
        self._row_of: dict[str, int] | None = None

    @classmethod
    def build(cls, keys: Sequence[str], vectors: np.ndarray, **params: Any) -> "VectorIndex":
        """An index over ``keys`` (in order) and their ``vectors``; ``params`` as for the constructor."""
        index = cls(np.asarray(vectors).shape[-1], **params)
        index.add(keys, vectors)
        return index

    # ----------------------------------------------------------------- lookup
    @property
    def size(self) -> int:
        """Rows, tombstones included: the length of masks and the range of doc numbers."""
        return self._n

    def __len__(self) -> int:
        return self._n - self._dead

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __repr__(self) -> str:
        return f"<VectorIndex {len(self)} x {self.dim} {self.precision} model={self.model!r}>"

    @property
    def _rows(self) -> dict[str, int]:
        if self._row_of is None:
            self._row_of = {k: i for i, k in enumerate(self._keys) if k is not None}
        return self._row_of

    @property
    def keys(self) -> list[str | None]:
        """Key of every row (None for a removed one), in doc-number order."""
        return list(self._keys)

    def doc(self, key: str) -> int:
        """The doc number of ``key`` (NotFoundError if absent)."""
        try:
            return self._rows[key]
        except KeyError:
            raise NotFoundError(f"{key!r} is not in the vector index") from None

    def key(self, doc: int) -> str:
        """The key of doc number ``doc`` (ValueError out of range, NotFoundError if removed)."""
        if not isinstance(doc, (int, np.integer)) or not 0 <= doc < self._n:
            raise ValueError(f"doc number must be an integer in 0..{self._n - 1}, not {doc!r}")
        key = self._keys[doc]
        if key is None:
            raise NotFoundError(f"document {doc} was removed from the vector index")
        return key

    def keys_of(self, docs: Iterable[int]) -> list[str]:
        return [self.key(int(d)) for d in docs]

    def positions(self, keys: Iterable[str]) -> np.ndarray:
        """Doc numbers of ``keys``; -1 for keys not in the index."""
        rows = self._rows
        return np.fromiter((rows.get(k, -1) for k in keys), dtype=np.int64)

    def mask(self, keys: Iterable[str]) -> np.ndarray:
        """A boolean mask over the rows, True for the documents of ``keys`` (absent keys ignored)."""
        pos = self.positions(keys)
        mask = np.zeros(self._n, bool)
        mask[pos[pos >= 0]] = True
        return mask

    def vector(self, doc: int) -> np.ndarray:
        """The stored vector of a document, float32 (decoded from int8 for an int8 index)."""
        self.key(doc)
        if self._full is None:
            return dequantize(self._i8[doc], self.calibration)
        return np.array(self._full[doc], dtype=np.float32)

    # ----------------------------------------------------------------- search
    def search(
        self, query: np.ndarray, k: int = 10, *, allowed: np.ndarray | None = None,
        exclude: np.ndarray | None = None, mode: Mode = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The k documents most similar to ``query``: (doc numbers int64, cosines float32), best first.

        ``allowed``/``exclude``: a boolean mask of length :attr:`size` or an array of doc
        numbers; documents outside ``allowed`` or inside ``exclude`` are never returned.
        ``mode``: ``exact`` (dot products with every eligible vector), ``compact``
        (Hamming candidates, int8 rescoring, float refinement), or ``auto``: exact when it
        costs less than a full scan of ``exact_below`` vectors. A selective filter is
        scored exactly on just the allowed rows, gathered (a gathered row costs about
        ``_GATHER`` contiguous ones): ``allowed`` with 5,000 of a million papers is exact,
        a broad one takes the compact path with the mask applied to the Hamming scan.
        """
        _check_option("mode", mode, MODES)
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        q = np.asarray(query, dtype=np.float32)
        if q.shape != (self.dim,):
            raise ValueError(f"query must have shape ({self.dim},), not {q.shape}")
        q = normalize(q)
        eligible, m = self._eligible(allowed, exclude)
        if m == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(int(k), m)
        exact_cost = self._n if eligible is None else min(self._n, m * _GATHER)
        if mode == "exact" or (mode == "auto" and exact_cost < self.exact_below):
            docs, scores = self._exact(q, k, eligible, m)
        else:
            docs, scores = self._compact(q, k, eligible, m)
        return docs.astype(np.int64), scores.astype(np.float32)

    def _eligible(self, allowed: Any, exclude: Any) -> tuple[np.ndarray | None, int]:
        """The mask of searchable rows (None: every row) and how many there are."""
        mask = self._live[: self._n].copy() if self._dead else None
        if allowed is not None:
            a = self._as_mask(allowed, "allowed")
            mask = a if mask is None else mask & a
        if exclude is not None:
            e = ~self._as_mask(exclude, "exclude")
            mask = e if mask is None else mask & e
        return mask, (len(self) if mask is None else int(np.count_nonzero(mask)))

    def _as_mask(self, value: Any, name: str) -> np.ndarray:
        arr = np.asarray(value)
        if arr.dtype == bool:
            if arr.shape != (self._n,):
                raise ValueError(f"{name} mask must have one entry per row: shape ({self._n},), not {arr.shape}")
            return arr
        mask = np.zeros(self._n, bool)
        if arr.size == 0:
            return mask
        if not np.issubdtype(arr.dtype, np.integer) or arr.ndim != 1 or arr.min() < 0 or arr.max() >= self._n:
            raise ValueError(f"{name} must be a boolean mask or an array of doc numbers in 0..{self._n - 1}")
        mask[arr] = True
        return mask

    def _dot(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """rows . q; for int8 rows the decoded dot, q . offsets + (q * scales) . codes.

        ``einsum``, not ``@``: numpy's own single-threaded loop. OpenBLAS splits even a
        10k-row product over both cores and then waits for a busy one: 12 ms instead of 2
        on this 2-core machine under load, and no faster at a million rows (memory-bound).
        """
        if rows.dtype == np.int8:
            cal = self.calibration
            return np.einsum("ij,j->i", rows, q * cal.scales) + np.float32(q @ cal.offsets)
        return np.einsum("ij,j->i", rows, q, dtype=np.float32)

    def _exact(self, q: np.ndarray, k: int, eligible: np.ndarray | None, m: int) -> tuple[np.ndarray, np.ndarray]:
        src = (self._full if self._full is not None else self._i8)[: self._n]
        if eligible is not None and m * _GATHER < self._n:  # selective: gather just the eligible rows
            docs = np.flatnonzero(eligible)
            scores = self._dot(src[docs], q)
            top = _top_k(scores, k)
            return docs[top], scores[top]
        scores = np.concatenate([self._dot(src[s : s + _CHUNK], q) for s in range(0, self._n, _CHUNK)])
        if eligible is not None:
            np.copyto(scores, -np.inf, where=~eligible)
        top = _top_k(scores, k)
        return top, scores[top]

    def _compact(self, q: np.ndarray, k: int, eligible: np.ndarray | None, m: int) -> tuple[np.ndarray, np.ndarray]:
        n_words = -(-(self.candidate_dim or self.dim) // 64)
        code = _pack_words(quantize(q[None], "binary", self.calibration))[:n_words, 0]
        dist = _hamming_words(self._bits[:n_words, : self._n], code)
        limit = n_words * 64 + 1  # above every real distance
        if eligible is not None:  # push ineligible rows past the limit (20x faster than dist[~mask] = ...)
            dist += np.logical_not(eligible).view(np.uint8) * np.uint16(limit)
        cand = _smallest(dist, min(m, self.rescore_factor * k), limit)
        approx = self._dot(self._i8[cand], q)
        if self._full is None:
            top = _top_k(approx, k)
            return cand[top], approx[top]
        best = cand[_top_k(approx, min(len(cand), self.refine_factor * k))]
        scores = self._dot(self._full[best], q)
        top = _top_k(scores, k)
        return best[top], scores[top]

    # ---------------------------------------------------------------- updates
    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Append new documents; ValueError if a key is already present or repeated."""
        self._append(*self._check_batch(keys, vectors))

    def update(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the vectors of present documents in place (NotFoundError for an absent key)."""
        self._rewrite(*self._check_batch(keys, vectors))

    def upsert(self, keys: Sequence[str], vectors: np.ndarray) -> tuple[int, int]:
        """Update present keys and add the others; returns (added, updated)."""
        keys, x = self._check_batch(keys, vectors)
        old = np.array([k in self._rows for k in keys], dtype=bool)
        if old.any():
            self._rewrite([k for k, o in zip(keys, old) if o], x[old])
        if not old.all():
            self._append([k for k, o in zip(keys, old) if not o], x[~old])
        return int((~old).sum()), int(old.sum())

    def _append(self, keys: list[str], x: np.ndarray) -> None:
        present = [k for k in keys if k in self._rows]
        if present:
            raise ValueError(f"{len(present)} keys are already in the index (use update or upsert), e.g. {present[:3]}")
        if self._full is None and self.calibration.count == 0 and len(x) >= MIN_CALIBRATION:
            self.calibration = calibrate(x)
        start = self._n
        self._reserve(len(x))
        self._n += len(x)
        self._live[start : self._n] = True
        self._rows.update(zip(keys, range(start, self._n)))
        self._keys.extend(keys)
        self._changed = True
        if self._full is not None:
            self._full[start : self._n] = x
        if self._full is not None and len(self) >= max(MIN_CALIBRATION, 2 * self.calibration.count):
            self._recalibrate()  # encodes the new rows too
        else:
            self._encode(np.arange(start, self._n), x)

    def _rewrite(self, keys: list[str], x: np.ndarray) -> None:
        rows = np.array([self.doc(k) for k in keys], dtype=np.int64)
        self._reserve(0)
        if self._full is not None:
            self._full[rows] = x
        self._encode(rows, x)
        self._changed = True

    def remove(self, keys: Iterable[str]) -> int:
        """Tombstone the documents of ``keys``; absent keys are ignored. Returns how many were removed."""
        rows, removed = self._rows, 0
        for key in keys:
            row = rows.pop(key, None)
            if row is not None:
                self._live[row], self._keys[row] = False, None
                removed += 1
        self._dead += removed
        self._changed = self._changed or removed > 0
        return removed

    def compact(self) -> None:
        """Drop tombstones (renumbering documents) and recalibrate on the live float vectors, if changed."""
        if self._dead:
            keep = np.flatnonzero(self._live[: self._n])
            self._bits, self._i8 = self._bits[:, keep], self._i8[keep]
            self._full = None if self._full is None else self._full[keep]
            self._live = np.ones(len(keep), bool)
            self._keys = [self._keys[i] for i in keep]
            self._n, self._dead, self._row_of = len(keep), 0, None
        if self._full is not None and self._changed:
            self._recalibrate()
        self._changed = False

    def _check_batch(self, keys: Sequence[str], vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        keys = list(keys)
        x = np.asarray(vectors, dtype=np.float32)
        if x.shape != (len(keys), self.dim):
            raise ValueError(f"vectors must have shape ({len(keys)}, {self.dim}) for {len(keys)} keys, not {x.shape}")
        if not all(isinstance(k, str) and k for k in keys):
            raise ValueError("keys must be non-empty strings")
        if len(set(keys)) != len(keys):
            raise ValueError("keys repeat within one batch")
        return keys, normalize(x)

    def _reserve(self, extra: int) -> None:
        """Make the arrays writable, in memory, with room for ``extra`` more rows (growing by 1.5x)."""
        need, cap = self._n + extra, self._i8.shape[0]
        if need <= cap and self._i8.flags.writeable:
            return
        cap = max(need, cap + cap // 2) if need > cap else cap
        self._bits = _grown(self._bits[:, : self._n], cap, axis=1)
        self._i8 = _grown(self._i8[: self._n], cap)
        self._full = None if self._full is None else _grown(self._full[: self._n], cap)
        self._live = _grown(self._live[: self._n], cap)

    def _encode(self, rows: np.ndarray, x: np.ndarray) -> None:
        for s in range(0, len(rows), _CHUNK):
            chunk, r = x[s : s + _CHUNK], rows[s : s + _CHUNK]
            self._i8[r] = quantize(chunk, "int8", self.calibration)
            self._bits[:, r] = _pack_words(quantize(chunk, "binary", self.calibration))

    def _recalibrate(self) -> None:
        """Calibrate on the live float vectors (identity below MIN_CALIBRATION) and re-encode every row."""
        assert self._full is not None
        self._reserve(0)
        rows = np.flatnonzero(self._live[: self._n])
        live = self._full[rows] if self._dead else self._full[: self._n]
        self.calibration = calibrate(live) if len(rows) >= MIN_CALIBRATION else Calibration.identity(self.dim)
        for s in range(0, len(rows), _CHUNK):
            r = rows[s : s + _CHUNK]
            self._encode(r, np.asarray(self._full[r], dtype=np.float32))
        self._changed = False  # as compact would leave it (tombstones aside)

    # ---------------------------------------------------------------- storage
    def save(self, directory: str | Path) -> None:
        """Compact, then write the index as a directory of flat files, replacing ``directory``.

        ``binary.npy``: (words, n) little-endian uint64, word-major (``binary[w, i]`` holds
        bytes 8w..8w+7 of vector i's packed sign code) so a scan reads each word
        contiguously; ``int8.npy`` (n, dim); ``offsets.npy``, ``scales.npy`` (dim,) float32:
        the calibration; ``float32.npy`` or ``float16.npy`` (n, dim) unless precision is
        int8; ``keys.json``: the key of each row; ``params.json``: everything else. Written
        in a temporary sibling directory, fsynced, then renamed into place.
        """
        self.compact()
        with publish(directory) as tmp:
            arrays = {"binary.npy": self._bits[:, : self._n], "int8.npy": self._i8[: self._n]}
            arrays |= {"offsets.npy": self.calibration.offsets, "scales.npy": self.calibration.scales}
            if self._full is not None:
                arrays[f"{self.precision}.npy"] = self._full[: self._n]
            for name, arr in arrays.items():
                np.save(tmp / name, np.ascontiguousarray(arr), allow_pickle=False)
            (tmp / "keys.json").write_bytes(orjson.dumps(self._keys))
            (tmp / "params.json").write_text(json.dumps(self._params(arrays), indent=1))

    def _params(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        per_row = ("binary.npy", "int8.npy", f"{self.precision}.npy")
        files = {
            name: {"dtype": a.dtype.str, "shape": list(a.shape), "bytes_per_vector": a.nbytes // max(self._n, 1)}
            for name, a in arrays.items()
            if name in per_row
        }
        settings = {name: getattr(self, name) for name in _SETTINGS}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "dim": self.dim, **settings, "count": self._n,
                "watermark": self.watermark, "calibration_count": self.calibration.count, "files": files,
                "binary_code": "bit d = x_d > offsets_d, np.packbits order, zero-padded to 64-bit words"}  # fmt: skip

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True) -> "VectorIndex":
        """Open a saved index. ``mmap``: map the arrays read-only (an update copies them first);
        False reads them into memory (no page faults on first touch; a server may prefer it)."""
        directory = Path(directory)
        directory = resolve(directory)  # a save interrupted mid-swap left the previous copy
        params = _read_params(directory)
        try:
            index = cls(params["dim"], **{name: params[name] for name in _SETTINGS})
            n, index.watermark = int(params["count"]), params.get("watermark")
            calibration_count = int(params["calibration_count"])
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{directory / 'params.json'}: bad parameters ({e})") from None
        d, words = index.dim, -(-index.dim // 64)
        spec = {"binary.npy": (_WORD, (words, n)), "int8.npy": (np.dtype(np.int8), (n, d))}
        spec |= {"offsets.npy": (np.dtype(np.float32), (d,)), "scales.npy": (np.dtype(np.float32), (d,))}
        if index.precision != "int8":
            spec[f"{index.precision}.npy"] = (np.dtype(index.precision), (n, d))
        arrays = {name: _load_array(directory / name, *s, mmap=mmap and n > 0) for name, s in spec.items()}
        index.calibration = Calibration(arrays["offsets.npy"], arrays["scales.npy"], calibration_count)
        index._bits, index._i8 = arrays["binary.npy"], arrays["int8.npy"]
        index._full = arrays.get(f"{index.precision}.npy")
        try:
            keys = orjson.loads((directory / "keys.json").read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            raise FormatError(f"{directory / 'keys.json'}: cannot read ({e})") from None
        if not isinstance(keys, list) or len(keys) != n or not all(isinstance(k, str) for k in keys):
            raise FormatError(f"{directory / 'keys.json'}: expected a list of {n} key strings")
        index._keys, index._n, index._live = keys, n, np.ones(n, bool)
        return index


def _grown(arr: np.ndarray, cap: int, axis: int = 0) -> np.ndarray:
    """A writable in-memory copy of ``arr`` with ``cap`` entries along ``axis``."""
    shape = list(arr.shape)
    shape[axis] = cap
    out = np.zeros(shape, arr.dtype)
    out[(slice(None),) * axis + (slice(0, arr.shape[axis]),)] = arr
    return out


def _read_params(directory: Path) -> dict[str, Any]:
    try:
        params = json.loads((directory / "params.json").read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no vector index at {directory} (params.json missing)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"{directory / 'params.json'}: not valid JSON ({e})") from None
    if not isinstance(params, dict) or params.get("format") != FORMAT:
        raise FormatError(f"{directory}: not a papertide vector index")
    if params.get("format_version") != FORMAT_VERSION:
        raise FormatError(f"{directory}: format version {params.get('format_version')!r}, expected {FORMAT_VERSION}")
    return params


def _load_array(path: Path, dtype: np.dtype, shape: tuple[int, ...], *, mmap: bool) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FormatError(f"{path}: cannot read ({e})") from None
    if arr.dtype != dtype or arr.shape != shape:
        raise FormatError(f"{path}: expected {dtype} {shape}, found {arr.dtype} {arr.shape}")
    return arr

