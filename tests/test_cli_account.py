"""``papertide user admin`` and ``papertide submissions retry`` (registered by cli_account.register)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from papertide.cli import Context, pass_ctx
from papertide.cli_account import register
from papertide.store import open_store

FEEDS = Path(__file__).parent / "fixtures" / "arxiv_api"
API_PATH = "/api/query"


@pytest.fixture
def run(config):
    @click.group()
    @click.pass_context
    def group(ctx: click.Context) -> None:
        ctx.obj = Context(str(config.home), None)

    register(group, pass_ctx)

    def invoke(*args: str, code: int = 0):
        result = CliRunner().invoke(group, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_user_admin_grants_and_revokes(run, config):
    with open_store(config) as store:
        uid = store.community.create_user("Alice", "", "hash").id
    assert "Alice is now an admin" in run("user", "admin", "alice")
    with open_store(config) as store:
        assert store.community.user(uid).role == "admin"
    assert "Alice is now an ordinary user" in run("user", "admin", "alice", "--revoke")
    with open_store(config) as store:
        assert store.community.user(uid).role == "user"
    assert "no account named 'nobody'" in run("user", "admin", "nobody", code=1)


def test_submissions_retry_completes_pending_ones(run, config, server, monkeypatch):
    with open_store(config) as store:
        uid = store.community.create_user("alice", "", "hash").id
        store.community.add_submission(uid, "2401.17377", paper_id="2401.17377")
    monkeypatch.setenv("PAPERTIDE_ARXIV_API_URL", server.url + API_PATH)
    monkeypatch.setenv("PAPERTIDE_ARXIV_INTERVAL", "0")
    monkeypatch.setenv("PAPERTIDE_RETRIES", "0")
    server.queue(API_PATH, "down", status=503)
    assert "0 submissions completed, 1 still pending" in run("submissions", "retry", code=1)
    server.queue(API_PATH, (FEEDS / "id_list.xml").read_bytes(), headers={"Content-Type": "application/atom+xml"})
    assert "1 submission completed, 0 still pending" in run("submissions", "retry")
    with open_store(config) as store:
        assert store.community.submissions(uid)[0].status == "done"
        assert store.get("2401.17377").title.startswith("Infini-gram")
