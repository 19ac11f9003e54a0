"""``papertide serve``: catches the indexes up, lists the demo papers, then hands the app to uvicorn."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from papertide import cli as cli_module
from papertide import cli_web
from papertide.index import SearchIndex
from papertide.ingest import ingest_demo
from papertide.store import open_store


@pytest.fixture
def serve_group():
    """A click group like papertide's, with only ``serve`` registered (cli.py wires the real one)."""

    @click.group()
    @click.option("--home")
    @click.pass_context
    def group(ctx: click.Context, home: str | None) -> None:
        ctx.obj = cli_module.Context(home, None)

    cli_web.register(group, cli_module.pass_ctx)
    return group


def test_serve_indexes_lists_the_demo_and_runs_uvicorn(serve_group, warm_home, config, monkeypatch):
    import uvicorn

    with open_store(config) as store:
        ingest_demo(store)
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))  # instead of blocking
    result = CliRunner().invoke(serve_group, ["--home", str(warm_home), "serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "43 papers indexed" in result.output and "listed 43 demo papers" in result.output
    assert served["host"] == "127.0.0.1" and served["port"] == 8123 and isinstance(served["app"], FastAPI)
    with open_store(config) as store:
        assert SearchIndex.open(config, store).watermark == store.watermark()
        assert len(store.community.listed("2024-03-17", "2024-03-17")) == 43
    with TestClient(served["app"]) as client:
        assert client.get("/search", params={"q": "Infini-gram"}).status_code == 200
    again = CliRunner().invoke(serve_group, ["--home", str(warm_home), "serve"])
    assert again.exit_code == 0 and "listed" not in again.output  # nothing new to list
