"""The command line, end to end through click: demo, ingest, stats, show, list, export."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SHARED_DATA
from click.testing import CliRunner

from papertide.cli import cli

SHARED = SHARED_DATA
SNAPSHOT = SHARED / "formats" / "kaggle-arxiv-metadata-snapshot-200.jsonl"


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def stats() -> dict:
    return json.loads(run("stats", "--json").stdout)


def test_demo_loads_the_bundled_corpus_offline_and_is_idempotent():
    first = run("demo")
    assert "demo corpus: 43 added, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    assert "Infini-gram: Scaling Unbounded n-gram Language Models to a Trillion Tokens" in first.stdout
    second = run("demo")
    assert "0 added, 0 updated, 43 unchanged, 0 rejected" in second.stdout
    assert stats()["papers"] == 43


def test_show_and_list():
    run("ingest", "demo")
    listing = run("list", "--json", "-n", "100")
    papers = json.loads(listing.stdout)
    infini = next(p for p in papers if p["title"].startswith("Infini-gram"))
    shown = json.loads(run("show", infini["id"], "--json").stdout)
    assert shown["abstract"].startswith("Are n-gram language models still relevant")
    assert "Infini-gram" in run("show", infini["id"]).stdout


def test_show_reports_bad_and_unknown_ids():
    bad = run("show", "not-an-id", ok=False)
    assert bad.exit_code == 1 and "not a paper id: 'not-an-id'" in bad.stderr
    missing = run("show", "https://arxiv.org/abs/2401.17377v2", ok=False)
    assert missing.exit_code == 1 and "no paper '2401.17377'" in missing.stderr


@pytest.mark.skipif(not SNAPSHOT.exists(), reason="shared snapshot sample not present")
def test_snapshot_sample_twice_gives_the_same_counts():
    first = run("ingest", str(SNAPSHOT))
    assert "200 added, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    second = run("ingest", str(SNAPSHOT))
    assert "0 added, 0 updated, 200 unchanged, 0 rejected" in second.stdout
    assert stats()["papers"] == 200
    shown = json.loads(run("show", "0704.0001", "--json").stdout)
    assert shown["authors"][0] == "C. Balázs" and shown["version"] == 2 and shown["categories"] == ["hep-ph"]


def test_bad_file_reports_line_and_keeps_good_records(tmp_path):
    f = tmp_path / "papers.jsonl"
    f.write_text(
        '{"id": "2401.17377", "title": "Good one"}\n'
        '{"id": "2401.17378", "title": \n'
        '{"id": "2401.17379", "title": "Good two"}\n'
    )
    result = run("ingest", str(f), ok=False)
    assert result.exit_code == 1
    assert f"{f}:2" in result.stderr
    assert "2 added, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    assert stats()["papers"] == 2


def test_unknown_format_is_a_usage_error(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text("{}\n")
    result = run("ingest", "--format", "word", str(f), ok=False)
    assert result.exit_code == 2 and "'word' is not one of" in result.stderr


def test_export_round_trips(tmp_path):
    run("ingest", "demo")
    out = tmp_path / "all.jsonl"
    run("export", "--format", "jsonl", "-o", str(out))
    assert len(out.read_text().splitlines()) == 43
    other = tmp_path / "other-home"
    result = run("--home", str(other), "ingest", str(out))
    assert "43 added" in result.stdout
    again = run("--home", str(other), "export", "--format", "jsonl")
    assert again.stdout == out.read_text()
    bib = run("export", "--format", "bibtex").stdout
    assert bib.count("@") == 43 and "Infini-gram" in bib


def test_console_entry_point_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "papertide", "--home", str(tmp_path / "h"), "stats", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["papers"] == 0


# ------------------------------------------------- network sources, on loopback


@pytest.fixture
def sources_env(server, monkeypatch):
    monkeypatch.setenv("PAPERTIDE_OAI_URL", server.url + "/oai")
    monkeypatch.setenv("PAPERTIDE_ARXIV_API_URL", server.url + "/api/query")
    monkeypatch.setenv("PAPERTIDE_HF_URL", server.url + "/api/daily_papers")
    monkeypatch.setenv("PAPERTIDE_ARXIV_INTERVAL", "0")
    monkeypatch.setenv("PAPERTIDE_HF_INTERVAL", "0")
    monkeypatch.setenv("PAPERTIDE_BACKOFF", "0.01")
    monkeypatch.setenv("PAPERTIDE_RETRIES", "1")
    return server


def oai_page(fixtures, name: str) -> bytes:
    return (fixtures / "oai" / name).read_bytes()


def test_harvest_dies_then_resumes_then_goes_incremental(sources_env, fixtures):
    server = sources_env
    server.queue("/oai", oai_page(fixtures, "paging_1.xml"))
    server.always("/oai", "server trouble", status=500)  # page 2 never comes
    first = run("ingest", "arxiv", "--set", "cs", "--from", "2024-02-01", "--until", "2024-02-29", ok=False)
    assert first.exit_code == 1 and "giving up after 2 attempts: HTTP 500" in first.stderr
    assert "2 added" in first.stdout and stats()["papers"] == 2

    server.always("/oai", "gone", status=404)
    server.queue("/oai", oai_page(fixtures, "paging_2.xml"))
    server.queue("/oai", oai_page(fixtures, "paging_3.xml"))
    n = len(server.requests)
    second = run("ingest", "arxiv", "--set", "cs")  # no dates: resumes the unfinished harvest
    assert server.requests[n].query == {"verb": "ListRecords", "resumptionToken": "6045817|1001"}
    assert "4 added, 0 updated, 0 unchanged, 0 rejected" in second.stdout and stats()["papers"] == 6

    server.queue("/oai", oai_page(fixtures, "error_noRecordsMatch.xml"))
    n = len(server.requests)
    run("ingest", "arxiv", "--set", "cs")  # finished before: asks only for what changed since
    assert server.requests[n].query == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs",
                                        "from": "2024-03-01"}  # fmt: skip


def test_arxiv_query_and_hf_daily(sources_env, fixtures):
    server = sources_env
    server.queue("/api/query", (fixtures / "arxiv_api" / "feed_four_entries.xml").read_bytes())
    result = run("ingest", "arxiv-query", "ti:infini-gram", "--max", "4")
    assert "4 added" in result.stdout
    assert server.requests[0].query["search_query"] == "ti:infini-gram"
    server.queue("/api/daily_papers", (fixtures / "hf_daily" / "day_2024-01-31.json").read_bytes())
    result = run("ingest", "hf-daily", "--date", "2024-01-31")
    assert "2 added, 1 updated, 0 unchanged, 3 signals, 0 rejected" in result.stdout
    shown = json.loads(run("show", "2401.17377", "--json").stdout)
    assert shown["signals"] == [{"source": "hf", "upvotes": 23, "day": "2024-01-31"}]
    assert shown["categories"][0] == "cs.CL"  # from the arXiv API copy, kept after the HF copy merged in


def test_dead_network_is_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv("PAPERTIDE_HF_URL", "http://127.0.0.1:9/api/daily_papers")
    monkeypatch.setenv("PAPERTIDE_RETRIES", "0")
    result = run("ingest", "hf-daily", "--date", "2024-01-31", ok=False)
    assert result.exit_code == 1 and "network error" in result.stderr and "Traceback" not in result.output


def test_bad_date_is_a_usage_error():
    result = run("ingest", "hf-daily", "--date", "31/01/2024", ok=False)
    assert result.exit_code == 2 and "is not a date" in result.stderr
