"""The search indexes under ``<home>/index``: built, caught up, and loaded together.

Three indexes answer every search: ``lexical/`` (BM25), ``dense/`` (sentence
vectors) and ``facts/`` (dates and categories for filters). Each is a directory of
flat files recording the store watermark it covers. :func:`update_index` reads the
store's change log since that watermark and applies just those papers: only their
text is tokenized, and only text never seen before is embedded (the embedding cache
under ``<home>/embeddings`` is keyed by a hash of the text). :class:`SearchIndex`
loads the three and lines up their document numbers by paper id, so one filter
mask serves every mode.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from papertide.config import Config
from papertide.errors import ConfigError, FormatError, PapertideError
from papertide.filters import DocFacts
from papertide.paper import Paper
from papertide.store import Store
from papertide.text.lexical import BM25Index, paper_doc

CHANGES_PAGE = 50_000
log = logging.getLogger("papertide.index")


class IndexMissingError(PapertideError):
    """No search index yet: ``papertide index`` builds it."""


@dataclass
class IndexReport:
    papers: int = 0  # live papers covered after the run
    changed: int = 0  # added or updated papers applied
    removed: int = 0
    embedded: int = 0  # texts embedded now (the rest came from the cache)
    seconds: float = 0.0
    watermark: int = 0
    phrases: object = None  # the n-gram engine's PhrasesReport

    def summary(self) -> str:
        text = (
            f"{self.papers} papers indexed ({self.changed} added or updated, {self.removed} removed, "
            f"{self.embedded} newly embedded) in {self.seconds:.1f} s"
        )
        return text if self.phrases is None else f"{text}\n{self.phrases.summary()}"


def index_dir(config: Config) -> Path:
    return config.home / "index"


def _embed_settings(config: Config) -> dict:
    return {"precision": config.embed_precision, "max_tokens": config.embed_max_tokens or None}


def configured_embedder_name(config: Config) -> str:
    """The vector space the settings ask for, without loading the model."""
    from papertide.text.embed import onnx_name, resolve_model

    try:
        return onnx_name(resolve_model(config.embed_model or None), **_embed_settings(config))
    except ValueError as e:
        raise ConfigError(f"embedding settings: {e}") from None


def load_configured_embedder(config: Config, *, threads: int | None = None):
    """The embedder the settings name (``embed_model``, ``embed_precision``, ``embed_max_tokens``)."""
    from papertide.text.embed import load_embedder

    try:
        return load_embedder(config.embed_model or None, threads=threads, cache_dir=model_cache_dir(config),
                             **_embed_settings(config))
    except ValueError as e:
        raise ConfigError(f"embedding settings: {e}") from None


def model_cache_dir(config: Config) -> Path:
    """Where the embedder keeps the runtime graph it derives from the packaged model."""
    return config.home / "models"


def paper_text(p: Paper) -> str:
    from papertide.text.embed import paper_text as text_of

    return text_of(p.title, p.abstract)


def _changed_since(store: Store, watermark: int) -> tuple[list[str], list[str]]:
    """Ids upserted and ids deleted since ``watermark``, as of now (the last change wins)."""
    last: dict[str, str] = {}
    seq = watermark
    while True:
        page = store.changes_since(seq, limit=CHANGES_PAGE)
        if not page:
            break
        for c in page:
            last[c.paper_id] = c.op
        seq = page[-1].seq
    upserted = [pid for pid, op in last.items() if op == "upsert"]
    deleted = [pid for pid, op in last.items() if op == "delete"]
    return upserted, deleted


def update_index(
    store: Store,
    config: Config,
    *,
    embedder=None,
    progress: Callable[[int], None] | None = None,
    rebuild: bool = False,
) -> IndexReport:
    """Bring the search indexes and the n-gram engine up to the store's watermark;
    ``rebuild`` starts from nothing."""
    from papertide.phrases import update_phrases

    report = _update_search(store, config, embedder=embedder, progress=progress, rebuild=rebuild)
    report.phrases = update_phrases(store, config, rebuild=rebuild)
    return report


def _update_search(store: Store, config: Config, *, embedder=None, progress: Callable[[int], None] | None = None,
                   rebuild: bool = False) -> IndexReport:  # fmt: skip
    from papertide.text import embed as embedding
    from papertide.text.vectors import VectorIndex

    t0 = time.perf_counter()
    root = index_dir(config)
    target = store.watermark()
    report = IndexReport(watermark=target)
    loaded = None if rebuild else _load_parts(root)
    wanted = embedder.name if embedder is not None else configured_embedder_name(config)
    if loaded is not None and loaded[1].model != wanted:
        log.warning("the dense index holds %s vectors but the settings ask for %s: rebuilding it",
                    loaded[1].model or "unnamed", wanted)
        loaded = None
    if loaded is not None and loaded[3] == target:
        report.papers = len(loaded[2].keys)
        report.seconds = time.perf_counter() - t0
        return report
    embedder = embedder or load_configured_embedder(config)
    cache = embedding.EmbeddingCache(config.home / "embeddings" / embedder.name, embedder.name, embedder.dim)

    if loaded is None:
        lexical = BM25Index.empty()
        vectors = VectorIndex(embedder.dim, model=embedder.name)
        facts = DocFacts.build([])
        upserted = [p.id for p in store.iter_papers()]
        deleted: list[str] = []
    else:
        lexical, vectors, facts, mark = loaded
        upserted, deleted = _changed_since(store, mark)

    new_facts: list[Paper] = []
    for start in range(0, len(upserted), 5_000):
        ids = upserted[start : start + 5_000]
        found = store.get_many(ids)
        papers = list(found.values())
        deleted.extend(i for i in ids if i not in found)  # deleted after the change was logged
        lexical.update([paper_doc(p) for p in papers])
        texts = [paper_text(p) for p in papers]
        before = len(cache)
        vecs = embedding.embed_cached(embedder, texts, cache)
        report.embedded += len(cache) - before
        vectors.upsert([p.id for p in papers], vecs)
        new_facts.extend(papers)
        report.changed += len(papers)
        if progress:
            progress(len(ids))
    if deleted:
        lexical.update(removed=deleted)
        report.removed = vectors.remove(deleted)
    facts = facts.merged(new_facts, removed=deleted)

    for part in (lexical, vectors):
        part.watermark = target
    root.mkdir(parents=True, exist_ok=True)
    lexical.save(root / "lexical")
    vectors.save(root / "dense")
    facts.save(root / "facts", watermark=target)
    report.papers = len(facts.keys)
    report.seconds = time.perf_counter() - t0
    return report


def _load_parts(root: Path):
    """(lexical, vectors, facts, watermark) when all three exist and agree, else None."""
    from papertide.text.vectors import VectorIndex

    if not all((root / name / "params.json").exists() for name in ("lexical", "dense", "facts")):
        return None
    try:
        lexical = BM25Index.load(root / "lexical", mmap=False)
        vectors = VectorIndex.load(root / "dense")
        facts, mark = DocFacts.load(root / "facts")
    except (FormatError, OSError, ValueError, KeyError) as e:
        log.warning("the search index in %s cannot be read (%s); rebuilding it", root, e)
        return None
    if lexical.watermark != mark or vectors.watermark != mark:
        return None  # a run died between saves: rebuild rather than guess
    return lexical, vectors, facts, mark


class SearchIndex:
    """The loaded indexes, with document numbers lined up by paper id."""

    def __init__(self, lexical: BM25Index, vectors, facts: DocFacts, store: Store, embedder=None,
                 config: Config | None = None) -> None:  # fmt: skip
        self.lexical, self.vectors, self.facts, self.store = lexical, vectors, facts, store
        self._embedder = embedder
        self._config = config
        self.watermark: int | None = None

    @classmethod
    def open(cls, config: Config, store: Store, *, embedder=None) -> "SearchIndex":
        from papertide.text.vectors import VectorIndex

        root = index_dir(config)
        if not (root / "facts" / "params.json").exists():
            raise IndexMissingError(f"no search index in {root}: run `papertide index` first")
        facts, mark = DocFacts.load(root / "facts")
        vectors = VectorIndex.load(root / "dense")
        index = cls(BM25Index.load(root / "lexical"), vectors, facts, store, embedder, config)
        index.watermark = mark
        return index

    @property
    def embedder(self):
        if self._embedder is None:
            if self._config is None:
                raise ConfigError("this search index was opened without settings or an embedder")
            if self.vectors.model and self.vectors.model != configured_embedder_name(self._config):
                raise IndexMissingError(
                    f"the search index holds {self.vectors.model} vectors but the settings ask for "
                    f"{configured_embedder_name(self._config)}: run `papertide index` to rebuild it")
            # One thread: a query is a few tokens, and splitting it across cores costs more
            # in synchronisation than it saves (7.9 vs 11.9 ms p50 measured here).
            self._embedder = load_configured_embedder(self._config, threads=1)
        return self._embedder

    @cached_property
    def phrases(self):
        """The n-gram engine when it covers exactly what these indexes cover, else None
        (exact phrases are then checked word for word against the stored text)."""
        from papertide.phrases import Phrases

        if self._config is None:
            return None
        try:
            engine = Phrases.open(self._config)
        except FormatError:
            return None
        return engine if engine.watermark == self.watermark else None

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.embed([text])[0]

    @cached_property
    def lexical_rows(self) -> np.ndarray:
        """For each lexical doc number, its row in ``facts`` (-1 if absent)."""
        pos = self.facts.positions
        return np.array([pos.get(k, -1) for k in self.lexical.doc_keys.tolist()], dtype=np.int64)

    @cached_property
    def vector_rows(self) -> np.ndarray:
        pos = self.facts.positions
        return np.array([pos.get(k, -1) if k is not None else -1 for k in self.vectors.keys], dtype=np.int64)

    def to_lexical(self, mask: np.ndarray) -> np.ndarray:
        return _project(mask, self.lexical_rows)

    def to_vectors(self, mask: np.ndarray) -> np.ndarray:
        return _project(mask, self.vector_rows)

    def __len__(self) -> int:
        return len(self.facts.keys)


def _project(mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A mask over facts rows seen through another index's document numbering."""
    out = np.zeros(len(rows), dtype=bool)
    present = rows >= 0
    out[present] = mask[rows[present]]
    return out
