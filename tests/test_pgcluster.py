"""The throwaway PostgreSQL server the suite runs on (tests/pgcluster.py): it starts, makes
C-collated databases and template copies, offers pgvector with pgserver's binaries, reports
failures with the server's own words, and leaves nothing behind."""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from pgcluster import PgUnavailable, default_parent, find_binaries, start_cluster


def _one(url: str, query: str, params: tuple | None = None):
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(query, params).fetchone()


def test_the_cluster_answers_on_loopback_with_its_version(pg_cluster):
    assert pg_cluster.kind in ("pgserver", "debian", "env")
    assert re.fullmatch(r"\d+\.\d+", pg_cluster.version)
    assert pg_cluster.url == f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/postgres"
    server_version, address = _one(pg_cluster.url, "SELECT current_setting('server_version'), inet_server_addr()")
    assert server_version.startswith(pg_cluster.version)
    assert str(address) == "127.0.0.1"
    assert _one(pg_cluster.url, "SHOW max_connections") == ("400",)
    assert _one(pg_cluster.url, "SHOW fsync") == ("off",)


def test_new_databases_sort_text_bytewise(pg_url):
    assert _one(pg_url, "SELECT datcollate, datctype, pg_encoding_to_char(encoding) FROM pg_database "
                        "WHERE datname = current_database()") == ("C", "C.UTF-8", "UTF8")
    words = ["b", "B", "a_", "aa", "a", "é"]
    ordered = _one(pg_url, "SELECT array_agg(w ORDER BY w) FROM unnest(%s::text[]) AS w", (words,))[0]
    assert ordered == sorted(words, key=lambda w: w.encode())  # byte order, as SQLite sorts


def test_pg_url_is_empty_and_goes_after_the_test(pg_cluster, pg_url):
    assert _one(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == (0,)
    name = pg_url.rsplit("/", 1)[1]
    pg_cluster.discard_database(pg_url)
    assert _one(pg_cluster.url, "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)) == (1,)
    deadline = time.monotonic() + 10  # our connection's backend may take a moment to exit
    while _one(pg_cluster.url, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)) != (0,):
        assert time.monotonic() < deadline, f"a backend stays connected to {name}"
        time.sleep(0.01)
    pg_cluster.drop_database(pg_cluster.new_database())  # the next new database sweeps discarded ones
    assert _one(pg_cluster.url, "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)) == (0,)


def test_drop_database_disconnects_its_users(pg_cluster):
    url = pg_cluster.new_database("pgc_drop_me")
    assert url.endswith("/pgc_drop_me")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.commit()
        pg_cluster.drop_database("pgc_drop_me")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert _one(pg_cluster.url, "SELECT count(*) FROM pg_database WHERE datname = 'pgc_drop_me'") == (0,)


def test_a_template_is_prepared_once_and_copied_per_database(pg_cluster, pg_database):
    prepared: list[str] = []

    def prepare(url: str) -> None:
        prepared.append(url)
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE papers (id text PRIMARY KEY, title text NOT NULL)")
            conn.execute("INSERT INTO papers VALUES ('2401.00001', 'Seed')")
        psycopg.connect(url)  # left open on purpose: template() must end it

    assert pg_cluster.template("pgc_seeded", prepare) == "pgc_seeded"
    assert pg_cluster.template("pgc_seeded", prepare) == "pgc_seeded"
    assert len(prepared) == 1
    first, second = pg_database(template="pgc_seeded"), pg_database(template="pgc_seeded")
    with psycopg.connect(first) as conn:
        conn.execute("INSERT INTO papers VALUES ('2401.00002', 'Only in the first copy')")
    assert _one(first, "SELECT count(*) FROM papers") == (2,)
    assert _one(second, "SELECT array_agg(title) FROM papers") == (["Seed"],)
    assert _one(second, "SELECT datcollate FROM pg_database WHERE datname = current_database()") == ("C",)
    with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
        psycopg.connect(prepared[0], connect_timeout=10)


def test_a_failed_prepare_leaves_no_template(pg_cluster):
    def prepare(url: str) -> None:
        raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError, match="migration failed"):
        pg_cluster.template("pgc_broken", prepare)
    assert _one(pg_cluster.url, "SELECT count(*) FROM pg_database WHERE datname = 'pgc_broken'") == (0,)


def test_pgvector_builds_an_hnsw_index_with_pgservers_binaries(pg_cluster, pg_url):
    if pg_cluster.kind != "pgserver" and not pg_cluster.has_vector:
        pytest.skip(f"{pg_cluster.kind} PostgreSQL {pg_cluster.version} here has no pgvector")
    assert pg_cluster.has_vector
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        rows = [(i, f"[{1 + i % 3},{i % 5},{i % 7 + 1}]") for i in range(50)] + [(99, "[0,0,9]")]
        conn.cursor().executemany("INSERT INTO items VALUES (%s, %s)", rows)
        conn.execute("CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops)")
        conn.execute("SET enable_seqscan = off")
        query = "SELECT id FROM items ORDER BY embedding <=> '[0,0.01,1]' LIMIT 1"
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + query))
        assert "items_hnsw" in plan
        assert conn.execute(query).fetchone() == (99,)


def test_bad_database_names_are_refused_by_name(pg_cluster):
    with pytest.raises(ValueError, match=r"'Robert\); DROP'"):
        pg_cluster.new_database("Robert); DROP")


def test_stop_removes_everything_and_is_idempotent(pg_cluster):  # pg_cluster: skips where no server can run
    cluster = start_cluster()
    base, url = cluster.base, cluster.url
    assert (base / "data" / "postmaster.pid").is_file()
    assert any(p.name.startswith(".s.PGSQL.") for p in base.iterdir())  # the unix socket
    with cluster:
        assert _one(url, "SELECT 1") == (1,)
    assert not base.exists()
    cluster.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_an_empty_bindir_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERTIDE_PG_BINDIR", str(tmp_path))
    with pytest.raises(PgUnavailable, match="PAPERTIDE_PG_BINDIR=.* holds no initdb"):
        find_binaries()


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_a_server_that_does_not_start_is_reported_with_its_log(tmp_path, monkeypatch):
    bindir = tmp_path / "pg" / "bin"
    bindir.mkdir(parents=True)
    _script(bindir / "initdb", 'mkdir -p "$2" && touch "$2/postgresql.conf"\n')
    _script(bindir / "postgres", "exit 1\n")
    _script(bindir / "pg_ctl", 'while [ $# -gt 0 ]; do [ "$1" = -l ] && log=$2; shift; done\n'
                               'echo "FATAL:  could not map anonymous shared memory" >> "$log"\n'
                               'echo "pg_ctl: could not start server" >&2; exit 1\n')
    monkeypatch.setenv("PAPERTIDE_PG_BINDIR", str(bindir))
    parent = Path(tempfile.mkdtemp(dir=default_parent()))  # reachable by the server's user, unlike tmp_path
    try:
        parent.chmod(0o755)
        with pytest.raises(PgUnavailable, match="(?s)could not start server.*could not map anonymous shared memory"):
            start_cluster(parent=parent)
        assert list(parent.iterdir()) == []  # the cluster's directory was removed
    finally:
        shutil.rmtree(parent)
