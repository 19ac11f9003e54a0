"""Search-quality metrics against hand-computed values, and reading BEIR folders."""

from __future__ import annotations

import json
import math

import pytest

from papertide.errors import FormatError
from papertide.evaluation import evaluate, load_beir, mrr_at, ndcg_at, recall_at


def test_ndcg_hand_computed():
    rel = {"a": 2, "b": 1, "c": 0}
    # ranked b, x, a: DCG = 1/log2(2) + 0 + 2/log2(4) = 1 + 1 = 2
    # ideal a, b:     IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.63093 = 2.63093
    assert ndcg_at(["b", "x", "a"], rel) == pytest.approx(2 / (2 + 1 / math.log2(3)))
    assert ndcg_at(["a", "b"], rel) == pytest.approx(1.0)
    assert ndcg_at(["c", "x"], rel) == 0.0
    assert ndcg_at(["x"] * 10 + ["a"], rel, k=10) == 0.0  # rank 11 is past the cut


def test_recall_and_mrr_hand_computed():
    rel = {"a": 1, "b": 1, "c": 1, "d": 0}
    assert recall_at(["a", "x", "c"], rel) == pytest.approx(2 / 3)
    assert recall_at(["d"], rel) == 0.0
    assert mrr_at(["x", "y", "b"], rel) == pytest.approx(1 / 3)
    assert mrr_at(["x"] * 10 + ["a"], rel, k=10) == 0.0


def test_evaluate_averages_over_judged_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has nothing relevant: left out
    run = {"q1": ["a"], "q2": ["x", "b"]}
    m = evaluate(run, qrels)
    assert m["queries"] == 2
    assert m["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert m["recall@100"] == pytest.approx(1.0)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    with pytest.raises(ValueError, match="no query"):
        evaluate(run, {"q": {"a": 0}})


def test_load_beir(tmp_path):
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "x"}) + "\n")
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "1", "text": "first"}) + "\n" + json.dumps({"_id": "2", "text": "unjudged"}) + "\n"
    )
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    ds = load_beir(root)
    assert ds.name == "tiny" and ds.queries == {"1": "first"} and ds.qrels == {"1": {"d1": 1}}
    with pytest.raises(FormatError, match="no such split.*have: test"):
        load_beir(root, "dev")
    (root / "qrels" / "bad.tsv").write_text("1\td1\n")
    with pytest.raises(FormatError, match="bad.tsv:1: expected"):
        load_beir(root, "bad")
    with pytest.raises(FormatError, match="no corpus.jsonl"):
        load_beir(tmp_path)


def test_eval_beir_command_end_to_end(tmp_path, fixtures):
    from click.testing import CliRunner

    from papertide.cli import cli

    root = tmp_path / "scifact-mini"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_bytes((fixtures / "files" / "beir" / "scifact-mini" / "corpus.jsonl").read_bytes())
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "1", "text": "white matter development in newborn brains"}) + "\n"
        + json.dumps({"_id": "2", "text": "BC1 RNA master gene"}) + "\n"
    )
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t4983\t1\n2\t7912\t1\n")
    for mode in ("hybrid", "lexical", "dense"):
        result = CliRunner().invoke(cli, ["eval", "beir", str(root), "--mode", mode, "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        m = json.loads(result.stdout)
        assert m["queries"] == 2 and m["dataset"] == "scifact-mini" and m["mode"] == mode
        assert m["ndcg@10"] == pytest.approx(1.0) and m["mrr@10"] == 1.0 and m["recall@100"] == 1.0
