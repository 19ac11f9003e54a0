"""A content-hash cache of sentence embeddings: unchanged text is never embedded twice.

Embedding is the slow step of indexing (tens of papers a second on 2 cores), and most
of a catch-up run sees papers whose text has not changed, or the same text under
another id. So vectors are keyed by a 16-byte hash of the exact text embedded
(:func:`text_hash`), not by paper id, and :func:`embed_cached` embeds only texts the
cache has never seen.

On disk a cache is a directory of flat files (no pickles), one cache per model:

* ``params.json`` — format, model name, dim, storage dtype, and the list of committed
  segments with their row counts;
* ``hashes-<gen>.npy`` — ``(n, 16)`` uint8 text hashes of segment ``gen``;
* ``vectors-<gen>.npy`` — ``(n, dim)`` float32 (or float16) vectors, memory-mapped.

:meth:`EmbeddingCache.put` appends a new segment: both files are written to temporary
names, flushed and renamed, then ``params.json`` is replaced the same way. That last
rename is the commit: a crash at any point leaves either the old cache or the new one,
never a half file (uncommitted segment files are ignored and removed by the next put).
Past :data:`MAX_SEGMENTS` segments the small ones are merged. One writer at a time;
readers of the old files are unaffected by a put (POSIX keeps renamed-over files alive).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence, get_args

import numpy as np
import orjson

from papertide.errors import ConfigError, FormatError

if TYPE_CHECKING:
    from papertide.text.embed import Embedder

FORMAT = "papertide.embedding-cache"
VERSION = 1
MAX_SEGMENTS = 8
Stored = Literal["float32", "float16"]
STORED: tuple[str, ...] = get_args(Stored)
_SEGMENT_FILE = re.compile(r"^(hashes|vectors)-(\d+)\.npy$")


def text_hash(text: str) -> bytes:
    """The 16-byte content key of a text: the first half of its UTF-8 sha256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """``(len(texts), 16)`` uint8 array of :func:`text_hash` values."""
    return np.frombuffer(b"".join(text_hash(t) for t in texts), dtype=np.uint8).reshape(len(texts), 16)


def _prefix(hashes: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each hash as one uint64, for a sorted lookup."""
    return np.ascontiguousarray(hashes[:, :8]).view("<u8").ravel()


def _write_atomic(path: Path, data: bytes | np.ndarray) -> None:
    """Write to ``path.tmp``, flush to disk, rename over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        if isinstance(data, np.ndarray):
            np.save(f, data, allow_pickle=False)
        else:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class EmbeddingCache:
    """Vectors of one model keyed by text hash, in ``directory`` (created if missing).

    Opening a directory that holds another model's (or dim's, or dtype's) vectors
    raises :class:`FormatError`: keep one directory per model.
    """

    def __init__(self, directory: str | os.PathLike, model_name: str, dim: int, *, dtype: Stored = "float32"):
        if dtype not in STORED:
            raise ValueError(f"dtype must be one of {', '.join(STORED)}, not {dtype!r}")
        self.directory = Path(directory)
        self.model_name, self.dim, self.dtype = model_name, int(dim), dtype
        self.directory.mkdir(parents=True, exist_ok=True)
        params = self._read_params()
        if params is None:
            self._segments: list[dict] = []
            self._commit([])
        else:
            want = {"model": model_name, "dim": self.dim, "dtype": dtype}
            got = {k: params.get(k) for k in want}
            if got != want:
                raise FormatError(f"{self.directory} caches {got}, not {want}: use one directory per model")
            self._segments = params["segments"]
        self._load()

    # ------------------------------------------------------------------ files

    @property
    def _params_path(self) -> Path:
        return self.directory / "params.json"

    def _read_params(self) -> dict | None:
        if not self._params_path.exists():
            return None
        try:
            params = orjson.loads(self._params_path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            raise FormatError(f"{self._params_path}: unreadable ({e})") from None
        if params.get("format") != FORMAT or params.get("version") != VERSION:
            raise FormatError(f"{self._params_path}: not a papertide embedding cache of version {VERSION}")
        return params

    def _commit(self, segments: list[dict]) -> None:
        params = {"format": FORMAT, "version": VERSION, "model": self.model_name, "dim": self.dim,
                  "dtype": self.dtype, "count": sum(s["count"] for s in segments), "segments": segments}
        _write_atomic(self._params_path, orjson.dumps(params, option=orjson.OPT_INDENT_2))
        self._segments = segments

    def _load(self) -> None:
        hashes, self._vectors, self._starts = [], [], [0]
        for seg in self._segments:
            g, n = seg["gen"], seg["count"]
            try:
                h = np.load(self.directory / f"hashes-{g}.npy", allow_pickle=False)[:n]
                v = np.load(self.directory / f"vectors-{g}.npy", mmap_mode="r", allow_pickle=False)[:n]
            except (OSError, ValueError) as e:
                raise FormatError(f"{self.directory}: segment {g} is unreadable ({e})") from None
            if h.shape != (n, 16) or v.shape != (n, self.dim):
                raise FormatError(f"{self.directory}: segment {g} has shapes {h.shape} {v.shape}, expected {n} rows")
            hashes.append(h)
            self._vectors.append(v)
            self._starts.append(self._starts[-1] + n)
        self._hashes = np.concatenate(hashes) if hashes else np.zeros((0, 16), dtype=np.uint8)
        prefix = _prefix(self._hashes)
        self._order = np.argsort(prefix, kind="stable")
        self._sorted = prefix[self._order]

    def _next_gen(self) -> int:
        gens = [int(m.group(2)) for p in self.directory.iterdir() if (m := _SEGMENT_FILE.match(p.name))]
        return max(gens + [s["gen"] for s in self._segments] + [0]) + 1

    def _remove_unlisted(self) -> None:
        listed = {s["gen"] for s in self._segments}
        for p in self.directory.iterdir():
            m = _SEGMENT_FILE.match(p.name)
            if (m and int(m.group(2)) not in listed) or p.name.endswith(".npy.tmp"):
                p.unlink(missing_ok=True)

    def _write_segment(self, hashes: np.ndarray, vectors: np.ndarray) -> dict:
        gen = self._next_gen()
        _write_atomic(self.directory / f"vectors-{gen}.npy", np.ascontiguousarray(vectors, dtype=self.dtype))
        _write_atomic(self.directory / f"hashes-{gen}.npy", np.ascontiguousarray(hashes, dtype=np.uint8))
        return {"gen": gen, "count": int(len(hashes))}

    # ----------------------------------------------------------------- lookups

    def __len__(self) -> int:
        return int(len(self._hashes))

    def _rows(self, hashes: np.ndarray) -> np.ndarray:
        """Row of each hash in the cache, -1 where absent."""
        rows = np.full(len(hashes), -1, dtype=np.int64)
        if not len(self._hashes) or not len(hashes):
            return rows
        q = _prefix(hashes)
        pos = np.minimum(np.searchsorted(self._sorted, q), len(self._sorted) - 1)
        cand = self._order[pos]
        hit = (self._sorted[pos] == q) & (self._hashes[cand] == hashes).all(axis=1)
        rows[hit] = cand[hit]
        return rows

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        seg = np.searchsorted(self._starts, rows, side="right") - 1
        for s in np.unique(seg):
            sel = np.flatnonzero(seg == s)
            out[sel] = self._vectors[s][rows[sel] - self._starts[s]]
        return out

    def get_many(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, missing)``: float32 ``(len(texts), dim)`` with zero rows for texts
        not in the cache, and the indices (into ``texts``) of those texts."""
        rows = self._rows(text_hashes(texts))
        found = np.flatnonzero(rows >= 0)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        vectors[found] = self._gather(rows[found])
        return vectors, np.flatnonzero(rows < 0)

    # ------------------------------------------------------------------ writes

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> int:
        """Add the vectors of texts not yet cached; return how many were added."""
        vectors = np.asarray(vectors)
        if vectors.shape != (len(texts), self.dim):
            raise ValueError(f"expected vectors of shape ({len(texts)}, {self.dim}), got {vectors.shape}")
        hashes = text_hashes(texts)
        new = np.flatnonzero(self._rows(hashes) < 0)
        _, first = np.unique(hashes[new].view("V16").ravel(), return_index=True)  # one row per text
        new = new[np.sort(first)]
        if not len(new):
            return 0
        segments = self._segments + [self._write_segment(hashes[new], vectors[new])]
        self._commit(segments)
        if len(self._segments) > MAX_SEGMENTS:
            self._load()
            self._merge_small()
        self._remove_unlisted()
        self._load()
        return int(len(new))

    def _merge_small(self) -> None:
        """Merge every segment after the first into one (all of them when the first is
        not the larger part), so appends stay cheap and lookups touch few files."""
        first = self._segments[0]["count"]
        keep = 1 if first >= len(self) - first else 0
        lo = self._starts[keep]
        rows = np.arange(lo, len(self), dtype=np.int64)
        merged = self._write_segment(self._hashes[lo:], self._gather(rows))
        self._commit(self._segments[:keep] + [merged])


def embed_cached(embedder: "Embedder", texts: Sequence[str], cache: EmbeddingCache, *,
                 batch_size: int = 64) -> np.ndarray:
    """Vectors for ``texts`` (float32, input order), embedding only texts the cache has
    never seen (each distinct text once) and adding them to it.

    Fresh vectors are returned rounded through the cache's storage dtype, so a text's
    vector is the same whether it was just embedded or read back later.
    """
    if cache.model_name != embedder.name or cache.dim != embedder.dim:
        raise ConfigError(
            f"cache holds {cache.model_name} ({cache.dim}-d) vectors, the embedder makes "
            f"{embedder.name} ({embedder.dim}-d)"
        )
    texts = list(texts)
    vectors, missing = cache.get_many(texts)
    if len(missing):
        unique = list(dict.fromkeys(texts[i] for i in missing))
        fresh = embedder.embed(unique, batch_size=batch_size).astype(cache.dtype).astype(np.float32)
        cache.put(unique, fresh)
        at = {t: k for k, t in enumerate(unique)}
        vectors[missing] = fresh[[at[texts[i]] for i in missing]]
    return vectors
