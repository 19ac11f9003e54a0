"""Vector codes and index: hand-checked codes, exact = brute force, compact recall, masks, storage, updates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from papertide.errors import FormatError, NotFoundError
from papertide.text.vectors import (
    MIN_CALIBRATION,
    Calibration,
    VectorIndex,
    calibrate,
    dequantize,
    hamming,
    normalize,
    quantize,
    truncate,
)


def clustered(n: int, dim: int = 384, *, centres: int = 200, draw: int = 0) -> np.ndarray:
    """Unit vectors around a shared mean direction and cluster centres (embedding-like, not isotropic).

    The mixture (mean, centres) is fixed per (dim, centres); ``draw`` picks independent samples of it.
    """
    mix = np.random.default_rng(dim * 1000 + centres)
    mean = normalize(mix.standard_normal(dim))
    c = normalize(mix.standard_normal((centres, dim)))
    rng = np.random.default_rng(draw)
    x = 0.5 * mean + c[rng.integers(0, centres, n)] + 0.6 * normalize(rng.standard_normal((n, dim)))
    return normalize(x)


def brute_force(x: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    scores = x @ normalize(q)
    docs = np.arange(len(x)) if allowed is None else np.flatnonzero(allowed)
    order = docs[np.lexsort((docs, -scores[docs]))][:k]
    return order, scores[order]


def keys(n: int, start: int = 0) -> list[str]:
    return [f"p{i}" for i in range(start, start + n)]


# ------------------------------------------------------------------ codes
def test_truncate_slices_and_renormalises():
    out = truncate(np.array([[3.0, 4.0, 12.0]]), 2)
    assert np.allclose(out, [[0.6, 0.8]])
    with pytest.raises(ValueError, match="dim must be"):
        truncate(np.ones((1, 3)), 4)


def test_quantize_float_int8_and_binary_by_hand():
    x = np.array([[0.5, -1.0, 0.0, 0.25], [-0.5, 1.0, 0.0, 0.75]], np.float32)
    assert quantize(x, "float32").dtype == np.float32 and quantize(x, "float16").dtype == np.float16
    cal = calibrate(x)  # means 0, 0, 0, 0.5; largest deviations 0.5, 1, 0, 0.25
    assert np.allclose(cal.offsets, [0, 0, 0, 0.5])
    assert np.allclose(cal.scales * 127, [0.5, 1.0, 1.0, 0.25])  # a constant dimension keeps scale 1/127
    assert quantize(x, "int8", cal).tolist() == [[127, -127, 0, -127], [-127, 127, 0, 127]]
    assert quantize(x, "int8").tolist() == quantize(x, "int8", cal).tolist()  # self-calibrated by default
    assert np.allclose(dequantize(quantize(x, "int8", cal), cal), x, atol=1e-6)
    # sign bits, first dimension = high bit: x > 0 -> 1001 / 0101, padded with zeros to a byte
    assert quantize(x, "binary").tolist() == [[0b10010000], [0b01010000]]
    assert quantize(x, "binary", cal).tolist() == [[0b10000000], [0b01010000]]  # centred on the means


def test_int8_clips_values_outside_the_calibration():
    cal = Calibration(np.zeros(2, np.float32), np.full(2, 0.01, np.float32))
    assert quantize(np.array([[5.0, -0.02]]), "int8", cal).tolist() == [[127, -2]]


def test_quantize_rejects_unknown_precision_listing_valid_ones():
    with pytest.raises(ValueError, match="'float32', 'float16', 'int8', 'binary'"):
        quantize(np.ones((1, 4)), "int4")  # type: ignore[arg-type]


def test_binary_code_of_a_matryoshka_prefix_is_the_prefix_of_the_code():
    x = clustered(20, 128)
    assert np.array_equal(quantize(truncate(x, 64), "binary"), quantize(x, "binary")[:, :8])


def test_hamming_by_hand_on_bytes_and_words():
    codes = np.array([[0b11110000], [0b11111111], [0b00001111]], np.uint8)
    assert hamming(codes, np.array([0b11110000], np.uint8)).tolist() == [0, 4, 8]
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 256, (50, 100), dtype=np.uint8)
    q = rng.integers(0, 256, 100, dtype=np.uint8)
    # 48 bytes = 384 bits: six uint64 words; 5 and 100 bytes: byte words, 100 summed in several uint8 groups
    for nbytes in (48, 5, 100):
        expected = np.unpackbits(wide[:, :nbytes] ^ q[:nbytes], axis=1).sum(axis=1)
        assert hamming(wide[:, :nbytes], q[:nbytes]).tolist() == expected.tolist()
    with pytest.raises(ValueError, match="packed bytes"):
        hamming(wide, q[:8])


# ------------------------------------------------------------------ search
def test_exact_path_equals_brute_force_with_masks():
    both = clustered(3010, 64, centres=30)
    x = both[:3000]
    idx = VectorIndex.build(keys(3000), x)
    rng = np.random.default_rng(2)
    allowed = rng.random(3000) < 0.3
    for q in both[3000:]:
        docs, scores = idx.search(q, 10, mode="exact")
        want, want_scores = brute_force(x, q, 10)
        assert docs.tolist() == want.tolist() and np.allclose(scores, want_scores, atol=1e-6)
        docs, _ = idx.search(q, 10, allowed=allowed)
        assert docs.tolist() == brute_force(x, q, 10, allowed)[0].tolist()
        few = np.flatnonzero(allowed)[:40]
        docs, _ = idx.search(q, 10, allowed=few)  # selective: rows gathered
        assert docs.tolist() == brute_force(x, q, 10, np.isin(np.arange(3000), few))[0].tolist()
    assert list(np.diff(scores) <= 0) == [True] * 9


def test_compact_path_recall_on_20k_clustered_vectors():
    both = clustered(20_050, centres=400)
    x, queries = both[:20_000], both[20_000:]  # queries drawn from the same mixture, not in the index
    idx = VectorIndex.build(keys(20_000), x)
    hits = 0
    for q in queries:
        docs, scores = idx.search(q, 10, mode="compact")
        want, _ = brute_force(x, q, 10)
        hits += len(set(docs.tolist()) & set(want.tolist()))
        assert np.allclose(scores, x[docs] @ q, atol=1e-5)  # returned scores are the float cosines
    assert hits / (10 * len(queries)) >= 0.98
    truncated = VectorIndex.build(keys(20_000), x, candidate_dim=256, rescore_factor=40)
    docs, _ = truncated.search(queries[0], 10, mode="compact")
    assert len(set(docs.tolist()) & set(brute_force(x, queries[0], 10)[0].tolist())) >= 8


def test_compact_path_honours_allowed_and_exclude():
    x = clustered(5000, 128, centres=50)
    idx = VectorIndex.build(keys(5000), x)
    q = x[17]
    allowed = np.zeros(5000, bool)
    allowed[::3] = True
    docs, _ = idx.search(q, 20, allowed=allowed, mode="compact")
    assert len(docs) == 20 and allowed[docs].all()
    docs, _ = idx.search(q, 5, exclude=np.array([17]), mode="compact")
    assert 17 not in docs.tolist()
    docs, _ = idx.search(q, 5, allowed=np.array([4, 17, 99]), exclude=np.array([17]), mode="compact")
    assert sorted(docs.tolist()) == [4, 99]  # fewer eligible than k: all of them
    assert idx.search(q, 5, allowed=np.zeros(5000, bool))[0].size == 0


def test_int8_and_float16_indexes_rank_like_float32():
    x = clustered(2000, 96, centres=20)
    q = clustered(1, 96, centres=20, draw=5)[0]
    want = brute_force(x, q, 10)[0]
    for precision in ("float16", "int8"):
        idx = VectorIndex.build(keys(2000), x, precision=precision)
        assert (precision + ".npy") not in ("int8.npy",) or idx._full is None
        docs, scores = idx.search(q, 10, mode="exact")
        assert len(set(docs.tolist()) & set(want.tolist())) >= 9
        assert np.allclose(scores, x[docs] @ q, atol=5e-3)
        assert np.allclose(idx.vector(int(docs[0])), x[docs[0]], atol=5e-3)


def test_bad_arguments_give_clear_errors():
    idx = VectorIndex.build(keys(10), clustered(10, 8, centres=2))
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'exact', 'compact'"):
        idx.search(np.ones(8), mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        idx.search(np.ones(7))
    with pytest.raises(ValueError, match="finite and non-zero"):
        idx.search(np.zeros(8))
    with pytest.raises(ValueError, match="k must be"):
        idx.search(np.ones(8), 0)
    with pytest.raises(ValueError, match="one entry per row"):
        idx.search(np.ones(8), allowed=np.ones(9, bool))
    with pytest.raises(ValueError, match="doc numbers in 0..9"):
        idx.search(np.ones(8), exclude=np.array([10]))
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'float16', 'int8'"):
        VectorIndex(8, precision="binary")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="candidate_dim"):
        VectorIndex(384, candidate_dim=100)
    with pytest.raises(ValueError, match=r"shape \(2, 8\)"):
        idx.add(["a", "b"], np.ones((2, 9)))
    with pytest.raises(ValueError, match="already in the index"):
        idx.add(["p3"], np.ones((1, 8)))
    with pytest.raises(ValueError, match="repeat"):
        idx.upsert(["x", "x"], np.ones((2, 8)))
    with pytest.raises(NotFoundError):
        idx.update(["nope"], np.ones((1, 8)))
    idx.remove(["p2"])
    with pytest.raises(NotFoundError, match="removed"):
        idx.vector(2)
    with pytest.raises(ValueError, match="doc number"):
        idx.key(10)


# ------------------------------------------------------------------ updates and storage
def test_incremental_updates_equal_a_rebuild():
    x = clustered(3000, 64, centres=30)
    y = clustered(700, 64, centres=30, draw=9)
    idx = VectorIndex.build(keys(100), x[:100])  # below MIN_CALIBRATION: identity calibration
    assert idx.calibration.count == 0
    idx.add(keys(2900, 100), x[100:])  # grows past 2x: recalibrated on the live vectors
    assert idx.calibration.count == 3000
    idx.remove(keys(300, 1000))  # p1000..p1299
    assert idx.remove(["p1000", "unknown"]) == 0
    assert idx.upsert(keys(200, 500) + keys(500, 5000), y) == (500, 200)
    assert len(idx) == 3000 - 300 + 500 and "p1100" not in idx
    live = [k for k in idx.keys if k is not None]
    truth = {**{k: v for k, v in zip(keys(3000), x)}, **{k: v for k, v in zip(keys(200, 500) + keys(500, 5000), y)}}
    fresh = VectorIndex.build(live, np.stack([truth[k] for k in live]))
    for q in clustered(5, 64, centres=30, draw=11):
        a, sa = idx.search(q, 10, mode="exact")
        b, sb = fresh.search(q, 10, mode="exact")
        assert idx.keys_of(a) == fresh.keys_of(b) and np.allclose(sa, sb)
        assert all(k not in keys(300, 1000) for k in idx.keys_of(idx.search(q, 50, mode="compact")[0]))
    idx.compact()  # renumbered and recalibrated: now identical to the rebuild, codes included
    assert idx.keys == fresh.keys and idx.size == fresh.size
    for mine, theirs in ((idx._full[: idx.size], fresh._full), (idx._i8[: idx.size], fresh._i8)):
        assert np.array_equal(mine, theirs)
    assert np.array_equal(idx._bits[:, : idx.size], fresh._bits)
    q = y[0]
    assert np.array_equal(idx.search(q, 10, mode="compact")[0], fresh.search(q, 10, mode="compact")[0])


def test_save_load_round_trip(tmp_path):
    x = clustered(1000, 64, centres=10)
    idx = VectorIndex.build(keys(1000), x, model="all-MiniLM-L6-v2")
    idx.remove(["p3"])
    idx.watermark = 42
    idx.save(tmp_path / "dense")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dense"]  # no temporary left behind
    params = json.loads((tmp_path / "dense" / "params.json").read_text())
    assert params["count"] == 999 and params["watermark"] == 42 and params["model"] == "all-MiniLM-L6-v2"
    assert [params["files"][f]["bytes_per_vector"] for f in ("binary.npy", "int8.npy", "float32.npy")] == [8, 64, 256]
    loaded = VectorIndex.load(tmp_path / "dense")
    assert isinstance(loaded._i8, np.memmap) and loaded.watermark == 42 and loaded.keys == idx.keys
    q = x[500]
    for mode in ("exact", "compact"):
        assert np.array_equal(loaded.search(q, 10, mode=mode)[0], idx.search(q, 10, mode=mode)[0])
    assert loaded.keys_of(loaded.search(q, 1)[0]) == ["p500"]
    loaded.upsert(["p500", "new"], x[:2])  # copies the memory map before writing; the files stay untouched
    assert np.allclose(loaded.vector(loaded.doc("p500")), x[0], atol=1e-6)
    assert VectorIndex.load(tmp_path / "dense").search(q, 1)[1][0] == pytest.approx(1.0, abs=1e-5)
    loaded.save(tmp_path / "dense")  # over the directory it was mapped from
    in_memory = VectorIndex.load(tmp_path / "dense", mmap=False)
    assert len(in_memory) == 1000 and not isinstance(in_memory._full, np.memmap)
    assert in_memory.positions(["new", "p500", "zz"]).tolist() == [999, 499, -1]
    assert in_memory.mask(["new", "zz"]).nonzero()[0].tolist() == [999]


def test_empty_index_saves_and_loads(tmp_path):
    VectorIndex(16).save(tmp_path / "e")
    idx = VectorIndex.load(tmp_path / "e")
    assert len(idx) == 0 and idx.search(np.ones(16))[0].size == 0
    idx.add(["a"], np.ones((1, 16)))
    assert idx.keys_of(idx.search(np.ones(16))[0]) == ["a"]


def test_load_rejects_damaged_indexes(tmp_path):
    VectorIndex.build(keys(MIN_CALIBRATION), clustered(MIN_CALIBRATION, 64)).save(tmp_path / "d")
    np.save(tmp_path / "d" / "int8.npy", np.zeros((3, 64), np.int8))
    with pytest.raises(FormatError, match="int8.npy"):
        VectorIndex.load(tmp_path / "d")
    (tmp_path / "d" / "params.json").write_text('{"format": "something else"}')
    with pytest.raises(FormatError, match="not a papertide vector index"):
        VectorIndex.load(tmp_path / "d")
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "missing")


def test_interrupted_swap_falls_back_to_the_previous_index(tmp_path):
    VectorIndex.build(["a"], np.ones((1, 8))).save(tmp_path / "v")
    (tmp_path / "v").rename(tmp_path / "v.old")  # crash between the two renames of a save
    assert VectorIndex.load(tmp_path / "v").keys == ["a"]
