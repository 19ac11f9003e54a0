"""pgvector on a real PostgreSQL server: the table, its HNSW index, exact answers under
filters, update_index keeping it in step, and searches through it ranking as papertide's
own index does.

Each test gets a fresh empty database (``pg_url``); without a server the tests skip,
and without the ``vector`` extension too, except under CI, where both are failures.
"""

from __future__ import annotations

import json
import shutil
import uuid

import numpy as np
import psycopg
import pytest

from papertide.config import load_config
from papertide.errors import ConfigError
from papertide.index import IndexMissingError, SearchIndex, pg_vectors, update_index
from papertide.ingest import ingest, ingest_demo
from papertide.paper import Paper
from papertide.rank import search, similar
from papertide.sources import Deleted
from papertide.store import open_store
from papertide.store.postgres import PostgresStore
from papertide.store.vectors_pg import EXACT_BELOW, PgVectorError, PgVectors

from conftest import FIXTURES, _ci

DIM = 32


@pytest.fixture
def vector_url(pg_cluster, pg_url) -> str:
    if not pg_cluster.has_vector:
        if _ci():
            pytest.fail("CI must run the pgvector tests, but the server has no 'vector' extension", pytrace=False)
        pytest.skip("the PostgreSQL server has no 'vector' extension (pgvector)")
    return pg_url


@pytest.fixture
def store(vector_url):
    s = PostgresStore(vector_url, pool_size=3)
    yield s
    s.close()


def papers_in(store, n: int) -> list[str]:
    """``n`` stored papers (the table's rows must name stored papers)."""
    papers = [Paper(id=f"pt:{i:016x}", title=f"Synthetic paper {i}", abstract="Text.").normalised() for i in range(n)]
    ingest(store, papers)
    return [p.id for p in papers]


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 centres: neighbours that matter, as in real embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM))
    x = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact(x: np.ndarray, ids: list[str], q: np.ndarray, k: int, allowed=None) -> list[str]:
    rows = [i for i in range(len(ids)) if allowed is None or ids[i] in allowed]
    scores = x[rows] @ q
    return [ids[rows[i]] for i in np.argsort(-scores, kind="stable")[:k]]


def catalog(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


# ---------------------------------------------------------------- the table


def test_the_table_and_its_hnsw_index_are_made_once_and_replaced_whole(store, vector_url):
    pv = PgVectors(store.database)
    assert pv.state() is None and pv.count() == 0
    ids = papers_in(store, 300)
    x = clustered(300)
    assert pv.rebuild([(ids[:100], x[:100]), (ids[100:], x[100:])], model="m1", dim=DIM, watermark=7) == 300
    for _ in range(2):  # a second build replaces the first: same names, one index, nothing left over
        indexes = catalog(vector_url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'paper_vectors'")
        assert sorted(name for name, _ in indexes) == ["paper_vectors_hnsw", "paper_vectors_pkey"]
        hnsw = dict(indexes)["paper_vectors_hnsw"]
        assert "USING hnsw (embedding vector_ip_ops)" in hnsw and "m='16'" in hnsw and "ef_construction='64'" in hnsw
        assert catalog(vector_url, "SELECT to_regclass('paper_vectors_next')") == [(None,)]
        pv.rebuild([(ids, x)], model="m1", dim=DIM, watermark=8)
    state = pv.state()
    assert (state.model, state.dim, state.watermark) == ("m1", DIM, 8) and pv.count() == 300 and pv.model() == "m1"
    assert pv.rebuild([(ids[:5], x[:5, :16])], model="m2", dim=16, watermark=9) == 5  # another space, another dim
    assert (pv.state().model, pv.state().dim, pv.count()) == ("m2", 16, 5)


def test_upsert_replaces_and_delete_removes(store):
    pv = PgVectors(store.database)
    ids = papers_in(store, 50)
    x = clustered(50)
    with pytest.raises(PgVectorError, match="never built"):
        pv.upsert(ids, x, model="m")
    pv.rebuild([(ids[:40], x[:40])], model="m", dim=DIM, watermark=1)
    assert pv.upsert(ids[30:], -x[30:], model="m") == 20  # 10 replaced, 10 new
    assert pv.count() == 50
    assert pv.search(-x[35], 1) == [(ids[35], pytest.approx(1.0, abs=1e-6))]  # the replaced vector
    assert pv.search(x[45] * 3.0, 1)[0][0] != ids[45]  # stored as given (negated), queries normalised
    assert pv.delete(ids[:10] + ["pt:not-there"]) == 10
    assert pv.count() == 40 and not {h[0] for h in pv.search(x[0], 40)} & set(ids[:10])
    with pytest.raises(PgVectorError, match="holds m vectors"):
        pv.upsert(ids[:2], x[:2], model="other")
    with pytest.raises(ValueError, match="repeat"):
        pv.upsert([ids[0], ids[0]], x[:2], model="m")
    pv.mark(12, model="m")
    assert pv.state().watermark == 12


# ------------------------------------------------------------------- search


def test_search_returns_the_true_nearest_neighbours(store):
    pv = PgVectors(store.database)
    ids = papers_in(store, 1000)
    x = clustered(1000, seed=1)
    pv.rebuild([(ids, x)], model="m", dim=DIM, watermark=1)
    queries = clustered(30, seed=2)
    found = 0
    for q in queries:
        hits = pv.search(q, 10)
        truth = exact(x, ids, q, 10)
        found += len({h[0] for h in hits} & set(truth))
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        for pid, s in hits:  # every score is the true cosine
            assert s == pytest.approx(float(x[ids.index(pid)] @ q), abs=1e-5)
    assert found / (10 * len(queries)) >= 0.99  # HNSW at ef_search 100 over 1,000 vectors


def test_filtered_search_returns_every_allowed_nearest(store):
    """A selective filter is exact; a broad one reads enough HNSW neighbours; a filter that
    HNSW's neighbours miss (the papers farthest from the query) falls back to exact."""
    pv = PgVectors(store.database)
    n = 3000
    ids = papers_in(store, n)
    x = clustered(n, seed=3)
    pv.rebuild([(ids, x)], model="m", dim=DIM, watermark=1)
    rng = np.random.default_rng(4)
    q = clustered(1, seed=5)[0]
    far = set(exact(x, ids, -q, EXACT_BELOW + 100))  # more than the exact limit, none near q
    for allowed in (set(rng.choice(ids, 25, replace=False)), set(rng.choice(ids, 2600, replace=False)), far):
        got = [h[0] for h in pv.search(q, 10, allowed=allowed)]
        assert got == exact(x, ids, q, 10, allowed), len(allowed)
    assert [h[0] for h in pv.search(q, 50, allowed=set(ids[:3]))] == exact(x, ids, q, 3, set(ids[:3]))
    assert pv.search(q, 10, allowed=set()) == []
    assert [h[0] for h in pv.search(q, 1200)] == exact(x, ids, q, 1200)  # beyond ef_search's limit: exact


def test_search_says_what_is_wrong(store):
    pv = PgVectors(store.database)
    with pytest.raises(PgVectorError, match="no 'vector' type: run `papertide index`"):
        pv.search(np.ones(DIM), 3)
    pv.install()
    with pytest.raises(PgVectorError, match="never built: run `papertide index`"):
        PgVectors(store.database).search(np.ones(DIM), 3)
    ids = papers_in(store, 3)
    pv.rebuild([(ids, clustered(3))], model="m", dim=DIM, watermark=1)
    with pytest.raises(ValueError, match="k must be"):
        pv.search(np.ones(DIM), 0)
    with pytest.raises(ValueError, match="16 dimensions"):
        pv.search(np.ones(16), 3)
    with pytest.raises(ValueError, match=r"\(3, dim\) matrix"):
        pv.upsert(ids, np.ones(DIM), model="m")


# -------------------------------------------------------- rights and settings


def test_no_right_to_create_the_extension_is_a_clear_error(vector_url, config, embedder, demo_embeddings):
    """A store user who may not create the extension: "auto" builds the own index and says
    why pgvector was left aside; "pgvector" fails, naming the statement a superuser must run."""
    role = f"plain_{uuid.uuid4().hex[:8]}"
    db = vector_url.rsplit("/", 1)[1]
    shutil.copytree(demo_embeddings, config.home / "embeddings")
    admin = psycopg.connect(vector_url, autocommit=True)
    try:
        admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
        admin.execute(f"ALTER DATABASE {db} OWNER TO {role}")
        admin.execute(f"ALTER SCHEMA public OWNER TO {role}")
        url = vector_url.replace("postgres@", f"{role}@")
        plain = PostgresStore(url, pool_size=2)
        try:
            ingest_demo(plain)
            with pytest.raises(PgVectorError, match="CREATE EXTENSION vector"):
                PgVectors(plain.database).install()
            auto = load_config(config.home, env={}, database_url=url)
            assert pg_vectors(plain, auto) is not None  # available on the server, so "auto" tries it
            report = update_index(plain, auto, embedder=embedder)
            assert report.papers == 43 and "not updated" in report.pgvector  # the own index is built anyway
            assert SearchIndex.open(auto, plain, embedder=embedder).pgvectors is None
            required = load_config(config.home, env={}, database_url=url, vector_search="pgvector")
            with pytest.raises(PgVectorError, match="CREATE EXTENSION vector"):
                update_index(plain, required, embedder=embedder)
        finally:
            plain.close()
    finally:
        admin.execute("ALTER SCHEMA public OWNER TO postgres")
        admin.execute(f"ALTER DATABASE {db} OWNER TO postgres")
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE {role}")
        admin.close()


def test_the_setting_is_checked(config, tmp_path):
    sqlite = open_store(config)
    try:
        assert pg_vectors(sqlite, config) is None  # auto on SQLite: papertide's own index
        with pytest.raises(ConfigError, match="needs a PostgreSQL store"):
            pg_vectors(sqlite, load_config(config.home, env={}, vector_search="pgvector"))
        with pytest.raises(ConfigError, match="auto, own, pgvector"):
            pg_vectors(sqlite, load_config(config.home, env={}, vector_search="faiss"))
    finally:
        sqlite.close()


# ---------------------------------------------------- update_index and rank


@pytest.fixture
def demo_pg(vector_url, config, embedder, demo_embeddings):
    """The demo corpus in PostgreSQL, indexed with vector_search = auto; (store, config)."""
    shutil.copytree(demo_embeddings, config.home / "embeddings")
    cfg = load_config(config.home, env={}, database_url=vector_url)
    s = open_store(cfg)
    ingest_demo(s)
    yield s, cfg
    s.close()


def test_update_index_keeps_the_table_in_step(demo_pg, embedder):
    store, cfg = demo_pg
    report = update_index(store, cfg, embedder=embedder)
    pv = pg_vectors(store, cfg)
    index = SearchIndex.open(cfg, store, embedder=embedder)
    n = len(index.vectors)
    assert "rebuilt with 43 vectors" in report.pgvector and pv.count() == n == 43
    assert (pv.state().model, pv.state().watermark) == (embedder.name, store.watermark())
    for doc in (0, 17, 42):  # the own index's vectors, exactly: each finds itself at cosine 1
        [(pid, score)] = pv.search(index.vectors.vector(doc), 1)
        assert pid == index.vectors.key(doc) and score == pytest.approx(1.0, abs=1e-6)

    gone = index.vectors.key(5)
    new = Paper(id="2403.99999", title="Suffix arrays count n-grams at trillion-token scale",
                abstract="An unbounded n-gram language model over a suffix array.", categories=["cs.CL"])
    ingest(store, [new.normalised(), Deleted(gone)])
    report = update_index(store, cfg, embedder=embedder)
    assert report.pgvector == "1 added or updated, 1 removed"
    assert pv.count() == 43 and pv.state().watermark == store.watermark()
    ids = {h[0] for h in pv.search(index.vectors.vector(5), 43)}
    assert "2403.99999" in ids and gone not in ids

    pv.drop()  # out of step (dropped, or filled by another setting): the next run rebuilds it
    report = update_index(store, cfg, embedder=embedder)
    assert report.changed == 0 and "rebuilt with 43 vectors" in report.pgvector and pv.count() == 43


def test_searches_through_pgvector_rank_as_the_own_index(demo_pg, embedder):
    """On the demo corpus HNSW (ef_search 100 over 43 papers) is exact, so the overlap asserted
    is total: every labelled query gives the same top 10 in the same order, scores equal to
    1e-5, in dense mode (every fourth query also in hybrid mode and filtered by a phrase);
    similar papers too."""
    store, cfg = demo_pg
    update_index(store, cfg, embedder=embedder)
    own = SearchIndex.open(load_config(cfg.home, env={}, database_url=cfg.database_url, vector_search="own"),
                           store, embedder=embedder)
    pgv = SearchIndex.open(load_config(cfg.home, env={}, database_url=cfg.database_url, vector_search="pgvector"),
                           store, embedder=embedder)
    assert own.pgvectors is None and pgv.pgvectors is not None
    labelled = json.loads((FIXTURES / "quality" / "demo_queries.json").read_text())["queries"]
    for n, item in enumerate(labelled):
        for mode in ("dense", "hybrid")[: 1 + (n % 4 == 0)]:
            for query in (item["q"], item["q"] + ' "language models"')[: 1 + (n % 4 == 0)]:
                a_ids, a_scores = search(own, query, mode=mode, k=10)
                b_ids, b_scores = search(pgv, query, mode=mode, k=10)
                assert b_ids == a_ids and a_ids, (query, mode)
                assert np.allclose(b_scores, a_scores, atol=1e-5), (query, mode)
    first = own.vectors.key(0)
    assert similar(pgv, first, k=5)[0] == similar(own, first, k=5)[0]


def test_vector_search_pgvector_refuses_a_table_that_was_never_built(demo_pg, embedder):
    store, cfg = demo_pg
    update_index(store, load_config(cfg.home, env={}, database_url=cfg.database_url, vector_search="own"),
                 embedder=embedder)
    assert PgVectors(store.database).state() is None  # "own" leaves the database alone
    required = load_config(cfg.home, env={}, database_url=cfg.database_url, vector_search="pgvector")
    index = SearchIndex.open(required, store, embedder=embedder)
    with pytest.raises(IndexMissingError, match="never built: run `papertide index`"):
        search(index, "language models", mode="dense")
    auto = SearchIndex.open(cfg, store, embedder=embedder)
    assert auto.pgvectors is None and search(auto, "language models", mode="dense")[0]  # falls back
