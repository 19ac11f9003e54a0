"""``papertide serve``: catches the indexes up, lists the demo papers, then hands the app to uvicorn
(one worker in process, or several through the app factory: tested with a real server)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest
from processes import free_port
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from papertide import cli as cli_module
from papertide import cli_web
from papertide.errors import ConfigError
from papertide.index import SearchIndex
from papertide.ingest import ingest_demo
from papertide.store import open_store
from papertide.submissions import retry_lease_path, today


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


def _get(url: str, deadline: float, proc: subprocess.Popen) -> httpx.Response:
    while True:
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.1)


@pytest.mark.slow  # two worker processes import the web stack: 5-20 s on this shared VM
def test_two_workers_serve_one_retries_and_sigterm_stops_them(config, server, tmp_path):
    """A real ``papertide serve --workers 2``: pages answered, a pending submission retried by
    exactly one worker (the lease), every process gone after SIGTERM."""
    feed = (Path(__file__).parent / "fixtures" / "arxiv_api" / "id_list.xml").read_bytes()
    server.always("/api/query", feed, headers={"Content-Type": "application/atom+xml"})
    with open_store(config) as store:
        uid = store.community.create_user("alice", "", "hash").id
        store.community.add_submission(uid, "2401.17377", paper_id="2401.17377", status="pending", message="later")
    port, log_path = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env |= {"PAPERTIDE_ARXIV_API_URL": server.url + "/api/query", "PAPERTIDE_ARXIV_INTERVAL": "0"}
    cmd = [sys.executable, "-m", "papertide", "--home", str(config.home), "serve", "--no-index", "--workers", "2",
           "--retry-submissions", "0.3", "--port", str(port)]  # fmt: skip
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/", deadline, proc).status_code == 200
        assert _get(base + "/api/openapi.json", deadline, proc).json()["info"]["title"] == "papertide"
        with open_store(config) as store:
            while store.community.pending_submissions() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert store.community.listing(["2401.17377"])["2401.17377"] == (today(), uid)
        time.sleep(1)  # three more ticks: the other worker never takes the lease
        assert len(server.requests) == 1
        workers = {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log_path.read_text())}
        assert len(workers) == 2 and proc.pid not in workers
        assert int(retry_lease_path(config).read_text()) in workers
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log_path.read_text()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert log_path.read_text().count("Application shutdown complete") == 2  # each lifespan ended


def test_the_worker_factory_rebuilds_the_settings_from_the_environment(config, monkeypatch):
    from papertide.config import load_config, replace
    from papertide.web.app import RETRY_ENV, app_from_env, config_env

    (config.home).mkdir(parents=True, exist_ok=True)
    (config.home / "config.toml").write_text('contact = "from-the-file@example.org"\ntimeout = 9\n')
    mine = replace(load_config(config.home, env={}, arxiv_interval=0.25, retries=1), hf_url="http://127.0.0.1:9/hf")
    env = config_env(mine, retry_submissions=120)
    assert load_config(env=env) == mine and env[RETRY_ENV] == "120.0"
    for var in [v for v in os.environ if v.startswith("PAPERTIDE_")]:
        monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    app = app_from_env()
    try:
        assert app.state.config == mine and app.state.retrier.every == 120
    finally:
        app.state.store.close()
    monkeypatch.setenv(RETRY_ENV, "soon")
    with pytest.raises(ConfigError, match=f"{RETRY_ENV} must be a number of seconds, not 'soon'"):
        app_from_env()


def test_the_workers_listener_gives_connections_tcp_nodelay():
    """uvicorn's own listener for --workers leaves Nagle on (~40 ms a keep-alive request); ours does not."""
    import asyncio

    import uvicorn

    async def accepted_nodelay(listener: socket.socket) -> int:
        seen: asyncio.Future = asyncio.get_running_loop().create_future()

        def made(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(made, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    config = uvicorn.Config("papertide.web.app:app_from_env", factory=True, workers=2, host="127.0.0.1", port=0)
    ours = cli_web.tcp_listener(config)
    assert ours.proto == socket.IPPROTO_TCP and ours.get_inheritable()
    assert asyncio.run(accepted_nodelay(ours)) != 0
    plain = config.bind_socket()
    assert asyncio.run(accepted_nodelay(plain)) == (plain.proto == socket.IPPROTO_TCP)  # 0 while uvicorn#3149 stands
