"""The polite fetcher against a real loopback server: intervals, retries, Retry-After."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from papertide.config import replace
from papertide.errors import SourceError
from papertide.sources.http import Fetcher, Retry, retry_after_seconds


def test_user_agent_is_descriptive(server, config):
    server.queue("/x", "ok")
    with Fetcher(replace(config, contact="lab@example.org")) as f:
        f.get(server.url + "/x")
    ua = server.requests[0].headers["User-Agent"]
    assert ua.startswith("papertide/") and "mailto:lab@example.org" in ua


def test_minimum_interval_between_requests(server, config):
    server.always("/x", "ok")
    with Fetcher(config, interval=0.3) as f:
        for _ in range(3):
            f.get(server.url + "/x")
    times = [r.at for r in server.requests]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 2 and all(g >= 0.25 for g in gaps) and sum(gaps) >= 0.57, gaps


def test_503_retry_after_is_honoured(server, config):
    server.queue("/x", "busy", status=503, headers={"Retry-After": "1"})
    server.queue("/x", "ok")
    with Fetcher(config) as f:
        resp = f.get(server.url + "/x")
    assert resp.text == "ok"
    assert len(server.requests) == 2
    assert server.requests[1].at - server.requests[0].at >= 0.95


def test_too_long_retry_after_is_an_error(server, config):
    server.queue("/x", "busy", status=503, headers={"Retry-After": "86400"})
    with Fetcher(config) as f, pytest.raises(SourceError, match="retry after 86400"):
        f.get(server.url + "/x")


def test_truncated_body_is_retried(server, config):
    server.queue("/x", "x" * 1000, truncate_at=100)
    server.queue("/x", "y" * 1000)
    with Fetcher(config) as f:
        assert f.get(server.url + "/x").text == "y" * 1000
    assert len(server.requests) == 2


def test_gives_up_with_clear_message(server, config):
    server.always("/x", "oops", status=500)
    with Fetcher(config) as f, pytest.raises(SourceError, match=r"giving up after 4 attempts: HTTP 500"):
        f.get(server.url + "/x", params={"a": "1"})
    assert len(server.requests) == 4


def test_client_error_is_not_retried(server, config):
    server.queue("/x", "no such thing", status=404)
    with Fetcher(config) as f, pytest.raises(SourceError, match="HTTP 404"):
        f.get(server.url + "/x")
    assert len(server.requests) == 1


def test_accepted_error_status_is_returned(server, config):
    server.queue("/x", "bad query", status=400)
    with Fetcher(config) as f:
        assert f.get(server.url + "/x", accept=[400]).status_code == 400


def test_check_callback_can_ask_for_retry(server, config):
    server.queue("/x", "<broken")
    server.queue("/x", "<ok/>")

    def check(resp):
        if not resp.text.endswith("/>"):
            raise Retry("truncated XML")

    with Fetcher(config) as f:
        assert f.get(server.url + "/x", check=check).text == "<ok/>"


def test_dead_network_is_reported(config):
    with Fetcher(replace(config, retries=1)) as f, pytest.raises(SourceError, match="network error"):
        f.get("http://127.0.0.1:9/")  # discard port: nothing listens


def test_retry_after_parsing():
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(later, now=now) == pytest.approx(30)
