"""Shared fixtures: a temporary papertide home for every test, a loopback HTTP server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from loopback import LoopbackServer  # noqa: E402

from papertide.config import load_config  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


def _shared_data() -> Path:
    """The project's shared data: beside the checkout (as CI lays it out), else /work/shared."""
    for base in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        if (base / "data").is_dir():
            return base / "data"
    return Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED_DATA = _shared_data()


@pytest.fixture(autouse=True)
def papertide_home(tmp_path, monkeypatch):
    """Every test gets its own home; nothing touches the real user data dir."""
    home = tmp_path / "home"
    monkeypatch.setenv("PAPERTIDE_HOME", str(home))
    for var in ("PAPERTIDE_DATABASE_URL", "PAPERTIDE_CONTACT"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def config(papertide_home, request, monkeypatch):
    """Settings for tests: fast retries, no politeness delay unless a test asks for one.

    With PAPERTIDE_TEST_BACKEND=postgresql every test's store is a fresh PostgreSQL
    database instead (also for in-process commands, through PAPERTIDE_DATABASE_URL): a
    way to run the whole suite on PostgreSQL by hand; tests that check the SQLite file
    itself fail then."""
    import os

    cfg = load_config(papertide_home, env={}, arxiv_interval=0, hf_interval=0, backoff=0.01, retries=3, timeout=5)
    if os.environ.get("PAPERTIDE_TEST_BACKEND") == "postgresql":
        from papertide.config import replace

        request.getfixturevalue("pg_cluster").template("papertide_migrated", _migrate)
        url = request.getfixturevalue("pg_database")(template="papertide_migrated")
        monkeypatch.setenv("PAPERTIDE_DATABASE_URL", url)
        cfg = replace(cfg, database_url=url)
    return cfg


@pytest.fixture
def server():
    s = LoopbackServer()
    yield s
    s.close()


@pytest.fixture
def sink():
    """A real SMTP server on 127.0.0.1 that keeps what it accepts (tests/smtp_sink.py)."""
    from smtp_sink import SmtpSink

    s = SmtpSink()
    yield s
    s.close()


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def embedder_home(tmp_path_factory) -> Path:
    """A home holding the default embedder's derived graphs, built once per test run."""
    return tmp_path_factory.mktemp("embedder-home")


@pytest.fixture(scope="session")
def embedder(embedder_home):
    """The embedder papertide's default settings load, loaded once per test run."""
    from papertide.index import load_configured_embedder

    return load_configured_embedder(load_config(embedder_home, env={}))


@pytest.fixture(scope="session")
def demo_embeddings(embedder_home, embedder) -> Path:
    """A home whose embedding cache holds the demo corpus (embedding it takes seconds here)."""
    from papertide.index import update_index
    from papertide.ingest import ingest_demo
    from papertide.store import open_store

    cfg = load_config(embedder_home, env={})
    store = open_store(cfg)
    ingest_demo(store)
    update_index(store, cfg, embedder=embedder)
    store.close()
    return embedder_home / "embeddings"


@pytest.fixture
def warm_home(config, demo_embeddings):
    """The test's home with the demo corpus's embeddings and the derived model graphs cached."""
    import shutil

    shutil.copytree(demo_embeddings, config.home / "embeddings")
    shutil.copytree(demo_embeddings.parent / "models", config.home / "models")
    return config.home


def cli_run(*args: str, code: int = 0):
    """Run the ``papertide`` CLI in-process; assert its exit code."""
    from click.testing import CliRunner

    from papertide.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def demo_indexed(warm_home) -> str:
    """The demo corpus loaded and indexed in the test's home; the output of ``papertide index``."""
    cli_run("demo")
    return cli_run("index").stdout


# -- PostgreSQL: one real throwaway server per test run (tests/pgcluster.py) ----------


def _ci() -> bool:
    """CI=true (as .ci/run sets it): a missing prerequisite fails instead of skipping."""
    import os

    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL server for the whole run; without one the tests skip (fail under CI)."""
    from pgcluster import PgUnavailable, start_cluster

    try:
        cluster = start_cluster()
    except PgUnavailable as e:
        if _ci():
            pytest.fail(f"CI must run the PostgreSQL tests, but: {e}", pytrace=False)
        pytest.skip(f"no PostgreSQL server: {e}")
    with cluster:
        yield cluster


@pytest.fixture
def pg_database(pg_cluster):
    """Make databases for one test: ``pg_database()`` empty, ``pg_database(template=name)``
    a copy of ``pg_cluster.template(name, prepare)``; each returns a URL and goes afterwards."""
    made: list[str] = []

    def make(*, template: str | None = None) -> str:
        made.append(pg_cluster.new_database(template=template))
        return made[-1]

    yield make
    for url in made:
        pg_cluster.discard_database(url)


@pytest.fixture
def pg_url(pg_database) -> str:
    """The URL of a fresh, empty database (C collation) for this test only."""
    return pg_database()


def _migrate(url: str) -> None:
    from papertide.store.postgres import PostgresStore

    PostgresStore(url, pool_size=1).close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_config(request, config):
    """``config`` on each backend in turn: the home's SQLite file, then a fresh PostgreSQL
    database (a copy of one with papertide's migrations applied) for this test only."""
    if request.param == "sqlite":
        return config
    from papertide.config import replace

    cluster = request.getfixturevalue("pg_cluster")
    cluster.template("papertide_migrated", _migrate)
    url = request.getfixturevalue("pg_database")(template="papertide_migrated")
    return replace(config, database_url=url)
