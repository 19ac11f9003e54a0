"""``papertide ngram …`` end to end through click on the demo corpus."""

from __future__ import annotations

import json

import pytest
from conftest import cli_run as run

from papertide.ingest import ingest
from papertide.paper import Paper
from papertide.store import open_store


@pytest.fixture
def demo(demo_indexed, warm_home):
    assert "n-gram index rebuilt: 43 papers" in demo_indexed
    return warm_home


def test_count_docs_next_complete(demo):
    counted = json.loads(run("ngram", "count", "Language", "MODELS", "--json").stdout)
    assert counted["count"] == 56 and counted["papers"] == 27 and counted["tokens"] == ["language", "models"]
    assert run("ngram", "count", "language models").stdout.strip() == "56 occurrences in 27 papers"
    assert json.loads(run("ngram", "count", "no such phrase here", "--json").stdout)["count"] == 0

    docs = json.loads(run("ngram", "docs", "language", "models", "-k", "3", "--json").stdout)
    assert docs[0]["title"] == "A Survey of Large Language Models" and docs[0]["count"] == 7
    a, b = docs[0]["spans"]["title"][0]
    assert docs[0]["title"][a:b] == "Language Models"
    assert "27 papers in all" in run("ngram", "docs", "language", "models").stdout

    nxt = json.loads(run("ngram", "next", "large", "language", "--json").stdout)
    assert nxt["suffix"] == "large language" and nxt["next"][0]["word"] == "models"
    assert sum(x["p"] for x in nxt["next"]) == pytest.approx(1.0, abs=1e-4)
    backed_off = json.loads(run("ngram", "next", "zzyzx", "large", "language", "--json").stdout)
    assert backed_off["suffix"] == "large language"  # the ∞-gram rule drops the unseen word

    done = json.loads(run("ngram", "complete", "infini", "--json").stdout)
    assert done and done[0]["phrase"].startswith("infini") and done[0]["count"] >= 1


def test_new_papers_are_counted_after_index_and_merge(demo):
    before = json.loads(run("ngram", "count", "suffix automata", "--json").stdout)["count"]
    from papertide.config import load_config

    store = open_store(load_config(demo, env={}))
    ingest(store, [Paper(id="2412.00001", title="Suffix automata at scale", abstract="Suffix automata count.")
                   .normalised()])
    store.close()
    assert "caught up" in run("index").stdout
    assert json.loads(run("ngram", "count", "suffix automata", "--json").stdout)["count"] == before + 2
    assert "merged" in run("ngram", "merge").stdout
    assert json.loads(run("ngram", "count", "suffix automata", "--json").stdout)["count"] == before + 2


def test_errors_are_one_line_messages(warm_home):
    out = run("ngram", "count", "anything", code=1)
    assert "run `papertide index`" in out.output and "Traceback" not in out.output
    run("demo")
    run("index")
    assert "no words" in run("ngram", "count", "   ", code=2).output


def test_trending_and_series_on_a_dated_corpus(warm_home, tmp_path):
    from datetime import date, timedelta

    from papertide.config import load_config

    store = open_store(load_config(warm_home, env={}))
    end = date(2024, 6, 30)
    papers = []
    for i in range(240):  # 8 weeks of papers; the last week talks about state space models
        day = end - timedelta(days=i // 4)
        topic = "state space models for long sequences" if i < 28 else "convolutional networks for images"
        papers.append(Paper(id=f"2406.{i:05d}", title=f"Study {i}", abstract=f"We study {topic}. Results follow.",
                            submitted=day.isoformat()).normalised())
    ingest(store, papers)
    store.close()
    run("index")
    rows = json.loads(run("ngram", "trending", "--window", "week", "--json").stdout)
    rising = "study state space models for long sequences"
    assert rows and all(r["phrase"] in rising and r["baseline"] == 0 and r["recent"] == 28 for r in rows), rows
    assert any("state space" in r["phrase"] for r in rows)  # "results follow", flat, never shows
    assert "state space" in run("ngram", "trending").stdout
    assert json.loads(run("ngram", "trending", "--now", "2024-01-01", "--json").stdout) == []
    assert "not a date" in run("ngram", "trending", "--now", "soon", code=2).output
    chart = tmp_path / "chart.svg"
    points = json.loads(run("ngram", "series", "state", "space", "models", "--period", "week",
                            "--svg", str(chart), "--json").stdout)
    assert sum(p["count"] for p in points) == 28 and points[-1]["count"] == 28
    assert chart.read_text().startswith("<svg") and "state space models" in chart.read_text()
    assert "per million words" in run("ngram", "series", "state space models").stdout
