"""The search indexes under ``<home>/index``: built, caught up, and loaded together.

Three indexes answer every search: ``lexical/`` (BM25), ``dense/`` (sentence
vectors) and ``facts/`` (dates and categories for filters). Each is a directory of
flat files recording the store watermark it covers. :func:`update_index` reads the
store's change log since that watermark and applies just those papers: only their
text is tokenized, and only text never seen before is embedded (the embedding cache
under ``<home>/embeddings`` is keyed by a hash of the text). :class:`SearchIndex`
loads the three and lines up their document numbers by paper id, so one filter
mask serves every mode.

On a PostgreSQL store with pgvector (setting ``vector_search``), the dense vectors are
also kept in the database (:mod:`papertide.store.vectors_pg`) and dense search asks
its HNSW index: the own index stays the source the table is rebuilt from, so the table
follows it paper for paper (incrementally when it was in step, else rebuilt whole).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Collection, Iterator

import numpy as np

from papertide.config import Config
from papertide.errors import ConfigError, FormatError, PapertideError
from papertide.filters import DocFacts
from papertide.paper import Paper
from papertide.store import Store
from papertide.text.lexical import BM25Index, paper_doc

CHANGES_PAGE = 50_000
VECTOR_SEARCH = ("auto", "own", "pgvector")
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
    pgvector: str = ""  # what happened to the pgvector table, when there is one

    def summary(self) -> str:
        text = (
            f"{self.papers} papers indexed ({self.changed} added or updated, {self.removed} removed, "
            f"{self.embedded} newly embedded) in {self.seconds:.1f} s"
        )
        if self.pgvector:
            text += f"\npgvector: {self.pgvector}"
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


def pg_vectors(store: Store, config: Config):
    """The pgvector table (:class:`~papertide.store.vectors_pg.PgVectors`) the ``vector_search``
    setting asks for on this store, or None for papertide's own index only."""
    from papertide.store.vectors_pg import PgVectors

    mode = config.vector_search
    if mode not in VECTOR_SEARCH:
        raise ConfigError(f"vector_search must be one of {', '.join(VECTOR_SEARCH)}; not {mode!r}")
    if mode == "own":
        return None
    database = getattr(store, "database", None)
    if database is not None and PgVectors.supported(database):
        return PgVectors(database)
    if mode == "pgvector":
        what = "has no pgvector extension" if getattr(database, "dialect", "") == "postgresql" else "is not PostgreSQL"
        raise ConfigError(f"vector_search = 'pgvector' needs a PostgreSQL store with the pgvector extension, "
                          f"and this store {what}: use vector_search = 'auto' or 'own'")
    return None


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
    pg = pg_vectors(store, config)
    if loaded is not None and loaded[3] == target:
        report.papers = len(loaded[2].keys)
        if pg is not None and not _pg_in_step(pg, loaded[1]):
            _pg_rebuild(pg, loaded[1], target, report, config)
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
    pg_live = pg is not None and loaded is not None and _pg_in_step(pg, vectors)  # else rebuilt at the end

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
        if pg_live:
            pg_live = _pg_step(config, pg.upsert, [p.id for p in papers], vecs, model=vectors.model)
        new_facts.extend(papers)
        report.changed += len(papers)
        if progress:
            progress(len(ids))
    if deleted:
        lexical.update(removed=deleted)
        report.removed = vectors.remove(deleted)
        if pg_live:
            pg_live = _pg_step(config, pg.delete, deleted)
    facts = facts.merged(new_facts, removed=deleted)

    for part in (lexical, vectors):
        part.watermark = target
    root.mkdir(parents=True, exist_ok=True)
    lexical.save(root / "lexical")
    vectors.save(root / "dense")
    facts.save(root / "facts", watermark=target)
    report.papers = len(facts.keys)
    if pg_live and _pg_step(config, pg.mark, target, model=vectors.model):
        report.pgvector = f"{report.changed} added or updated, {report.removed} removed"
    elif pg is not None:
        _pg_rebuild(pg, vectors, target, report, config)
    report.seconds = time.perf_counter() - t0
    return report


def _pg_in_step(pg, vectors) -> bool:
    """Whether the pgvector table holds the own index's vectors as of its watermark."""
    state = pg.state()
    return state is not None and (state.model, state.dim, state.watermark) == (vectors.model, vectors.dim,
                                                                              vectors.watermark)


def _pg_rebuild(pg, vectors, watermark: int, report: IndexReport, config: Config) -> None:
    """Fill the pgvector table anew from the (saved, compacted) own index."""
    t = time.perf_counter()
    if _pg_step(config, pg.rebuild, _vector_batches(vectors), model=vectors.model, dim=vectors.dim,
                watermark=watermark):  # fmt: skip
        report.pgvector = f"table rebuilt with {len(vectors)} vectors in {time.perf_counter() - t:.1f} s"
    else:
        report.pgvector = "not updated (see the warning); searches use papertide's own index"


def _pg_step(config: Config, write: Callable[..., object], *args, **kwargs) -> bool:
    """Run one write to the pgvector table. Under ``vector_search = "auto"`` a store that refuses
    pgvector (no right to create the extension) is a warning; under "pgvector" an error."""
    from papertide.store.vectors_pg import PgVectorError

    try:
        write(*args, **kwargs)
    except PgVectorError as e:
        if config.vector_search == "pgvector":
            raise
        log.warning("pgvector left aside: %s", e)
        return False
    return True


def _vector_batches(vectors, size: int = 5_000) -> Iterator[tuple[list[str], np.ndarray]]:
    """(keys, float32 vectors) of the own index's live rows, a batch at a time."""
    keys = vectors.keys
    for start in range(0, vectors.size, size):
        docs = [d for d in range(start, min(start + size, vectors.size)) if keys[d] is not None]
        if docs:
            yield [keys[d] for d in docs], np.stack([vectors.vector(d) for d in docs])


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

    @cached_property
    def pgvectors(self):
        """The pgvector table dense search asks instead of :attr:`vectors`, or None (see the
        ``vector_search`` setting). Used only when it holds this index's vector space."""
        if self._config is None:
            return None
        pg = pg_vectors(self.store, self._config)
        state = None if pg is None else pg.state()
        if pg is None or (state is not None and (state.model, state.dim) == (self.vectors.model, self.vectors.dim)):
            return pg
        problem = ("was never built" if state is None else f"holds {state.model} vectors, "
                   f"this index {self.vectors.model}")  # fmt: skip
        if self._config.vector_search == "pgvector":
            raise IndexMissingError(f"the pgvector table {problem}: run `papertide index`")
        log.warning("the pgvector table %s: dense search uses papertide's own index until `papertide index` runs",
                    problem)
        return None

    def allowed_ids(self, mask: np.ndarray) -> AllowedIds:
        """The paper ids a filter mask over :attr:`facts` rows lets through."""
        return AllowedIds(self.facts, mask)

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


class AllowedIds(Collection[str]):
    """Paper ids passing a filter (a mask over ``facts`` rows): counted and tested without
    listing them, listed only when iterated (pgvector's exact path for small filters)."""

    def __init__(self, facts: DocFacts, mask: np.ndarray) -> None:
        self._keys, self._rows, self._mask = facts.keys, facts.positions, mask
        self._n = int(np.count_nonzero(mask))

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: object) -> bool:
        row = self._rows.get(key, -1)  # type: ignore[call-overload]
        return row >= 0 and bool(self._mask[row])

    def __iter__(self) -> Iterator[str]:
        keys = self._keys
        return (keys[i] for i in np.flatnonzero(self._mask).tolist())


def _project(mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A mask over facts rows seen through another index's document numbering."""
    out = np.zeros(len(rows), dtype=bool)
    present = rows >= 0
    out[present] = mask[rows[present]]
    return out
