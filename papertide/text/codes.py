"""Compact codes for embedding vectors, as pure functions on numpy arrays.

Matryoshka-style truncation (slice, re-normalise), per-dimension int8 calibration,
quantisation to float16 / int8 / packed sign bits, and Hamming distances by XOR and
popcount over 64-bit words. :mod:`papertide.text.vectors` builds its index on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

Precision = Literal["float32", "float16", "int8", "binary"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
_BLOCK = 65536  # columns per block of the Hamming scan: temporaries stay in cache
_WORD = np.dtype("<u8")
_CHUNK = 65536  # rows per chunk of float work on large arrays (bounded temporaries)


def _check_option(name: str, value: object, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}, not {value!r}")
    return value  # type: ignore[return-value]


def _positive(name: str, value: Any, zero_ok: bool = False) -> int:
    if not isinstance(value, (int, np.integer)) or value < (0 if zero_ok else 1):
        raise ValueError(f"{name} must be a {'non-negative' if zero_ok else 'positive'} integer, not {value!r}")
    return int(value)


# --------------------------------------------------------------------------- codes
def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32, so that cosine similarity is a dot product."""
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("vectors must be finite and non-zero")
    return x / norms


def truncate(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Matryoshka truncation (Kusupati et al. 2022): the first ``dim`` coordinates, re-normalised."""
    x = np.asarray(vectors, dtype=np.float32)
    if not isinstance(dim, (int, np.integer)) or not 0 < dim <= x.shape[-1]:
        raise ValueError(f"dim must be an integer in 1..{x.shape[-1]}, not {dim!r}")
    return normalize(x[..., :dim])


@dataclass(frozen=True, eq=False)
class Calibration:
    """Per-dimension affine int8 calibration: ``x_d ~ offsets_d + scales_d * code_d``.

    Per dimension rather than one global scale because embedding dimensions differ in
    spread and in mean (real MiniLM vectors share a mean direction): a global range would
    spend most of the 255 levels on values the narrow dimensions never take. ``offsets``
    is the per-dimension mean, which is also the centre of the binary sign codes, so the
    shared direction does not turn the same bit on for every paper. ``count`` is how many
    vectors it was computed from (0: the data-independent :meth:`identity`).
    """

    offsets: np.ndarray
    scales: np.ndarray
    count: int = 0

    @classmethod
    def identity(cls, dim: int) -> "Calibration":
        """Centre 0 and range [-1, 1]: no coordinate of a unit vector is ever clipped."""
        return cls(np.zeros(dim, np.float32), np.full(dim, 1 / 127, np.float32), 0)


def calibrate(vectors: np.ndarray) -> Calibration:
    """offsets = column means; scales = max |x - mean| / 127, so no calibration value is clipped."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError("calibrate needs a non-empty 2-D array of vectors")
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    dev = np.zeros(x.shape[1], np.float32)
    for s in range(0, len(x), _CHUNK):
        np.maximum(dev, np.abs(x[s : s + _CHUNK] - mean).max(axis=0), out=dev)
    return Calibration(mean, np.where(dev > 0, dev / 127, 1 / 127).astype(np.float32), len(x))


def quantize(vectors: np.ndarray, precision: Precision, calibration: Calibration | None = None) -> np.ndarray:
    """Encode vectors (coordinates on the last axis) at ``precision``.

    * ``float32`` / ``float16``: a cast.
    * ``int8``: ``round((x - offsets) / scales)`` clipped to [-127, 127]; with no
      ``calibration`` it is computed from ``vectors`` themselves (:func:`calibrate`).
    * ``binary``: one bit per dimension, ``x_d > offsets_d`` (0 without calibration),
      packed 8 to a byte with ``np.packbits`` (first dimension = high bit of byte 0).
    """
    _check_option("precision", precision, PRECISIONS)
    x = np.asarray(vectors, dtype=np.float32)
    if precision in ("float32", "float16"):
        return x.astype(precision, copy=False)
    if precision == "int8":
        cal = calibration if calibration is not None else calibrate(x.reshape(-1, x.shape[-1]))
        return np.clip(np.rint((x - cal.offsets) / cal.scales), -127, 127).astype(np.int8)
    return np.packbits(x > (calibration.offsets if calibration is not None else 0.0), axis=-1)


def dequantize(codes: np.ndarray, calibration: Calibration) -> np.ndarray:
    """The float32 vectors int8 ``codes`` stand for: ``offsets + scales * codes``."""
    return calibration.offsets + calibration.scales * np.asarray(codes, dtype=np.float32)


def hamming(codes: np.ndarray, query_code: np.ndarray) -> np.ndarray:
    """Hamming distance of each packed code (rows of uint8) to ``query_code``: popcount(a XOR b).

    Codes whose byte count is a multiple of 8 are read as uint64 words (6 per 384-d code).
    """
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    query_code = np.ascontiguousarray(query_code, dtype=np.uint8)
    if codes.ndim != 2 or query_code.shape != codes.shape[1:]:
        raise ValueError(f"codes must be (n, {query_code.size}) packed bytes, got shape {codes.shape}")
    if codes.shape[1] % 8 == 0:
        return _hamming_words(codes.view(_WORD).T, query_code.view(_WORD))
    return _hamming_words(codes.T, query_code)


def _pack_words(bits: np.ndarray) -> np.ndarray:
    """Packed codes (n, nbytes) -> word-major uint64 (words, n), zero-padded to whole words."""
    padded = np.zeros((len(bits), -(-bits.shape[1] // 8) * 8), np.uint8)
    padded[:, : bits.shape[1]] = bits
    return padded.view(_WORD).T


def _hamming_words(words: np.ndarray, query: np.ndarray) -> np.ndarray:
    """sum_w popcount(words[w, i] ^ query[w]) for every column i, in cache-sized blocks.

    The counts of up to ``group`` words fit in a byte (3 uint64 words: at most 192) and
    are summed as uint8 before one widening add to uint16 (~10% faster than widening each).
    """
    n, group, size = words.shape[1], 255 // (8 * words.dtype.itemsize), min(words.shape[1], _BLOCK)
    out = np.empty(n, np.uint16)
    x, c, acc = np.empty(size, words.dtype), np.empty(size, np.uint8), np.empty(size, np.uint8)
    for s in range(0, n, _BLOCK):
        e = min(n, s + _BLOCK)
        o, xb, cb, ab = out[s:e], x[: e - s], c[: e - s], acc[: e - s]
        for g in range(0, len(words), group):
            for w in range(g, min(len(words), g + group)):
                np.bitwise_xor(words[w, s:e], query[w], out=xb)
                np.bitwise_count(xb, out=ab if w == g else cb)
                if w > g:
                    np.add(ab, cb, out=ab)
            if g == 0:
                np.copyto(o, ab)
            else:
                np.add(o, ab, out=o)
    return out


def _smallest(dist: np.ndarray, count: int, limit: int) -> np.ndarray:
    """Positions of the ``count`` smallest distances below ``limit``, in position order.

    Ties at the cut-off distance are all kept, up to 4x ``count`` (then the first ones).
    Distances are small integers, so a histogram finds the cut-off in one pass (cheaper
    than ``argpartition``); on large arrays a 1-in-``step`` sample first bounds the
    cut-off from above, so only the few positions below it are histogrammed. The
    result is the same either way.
    """
    step = len(dist) // 32768
    if step >= 4:
        sample = np.sort(dist[::step])
        bound = int(sample[min(len(sample) - 1, 2 * count // step + 8)])  # ~2x count expected below
        picked = np.flatnonzero(dist <= min(bound, limit - 1))
        if len(picked) >= count:
            return picked[_smallest(dist[picked], count, limit)]
    cum = np.cumsum(np.bincount(dist, minlength=limit + 1)[:limit])
    cut = int(np.searchsorted(cum, min(count, int(cum[-1]))))
    picked = np.flatnonzero(dist <= cut)
    if len(picked) > 4 * count:
        d = dist[picked]
        below = picked[d < cut]
        picked = np.concatenate([below, picked[d == cut][: 4 * count - len(below)]])
    return picked


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest scores, best first; equal scores by position."""
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return idx[np.lexsort((idx, -scores[idx]))]


# --------------------------------------------------------------------------- index
