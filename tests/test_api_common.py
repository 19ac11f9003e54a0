"""The JSON API's rate limits come from the settings: the default numbers, a number an
operator chose, or 0 for no limit at all (what bench/web_bench.py runs with), through a
real app answering real requests."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from papertide.config import load_config, replace
from papertide.errors import ConfigError
from papertide.ingest import ingest_demo
from papertide.store import open_store
from papertide.web import create_app
from papertide.web.api_common import ApiLimits
from papertide.web.auth import token_hash
from papertide.web.demo import demo_paper_ids

TOKEN = "rate-limit-token-0123456789"


def test_the_settings_default_to_the_limits_the_api_always_had(tmp_path):
    cfg = load_config(tmp_path, env={})
    assert (cfg.api_search_per_minute, cfg.api_writes_per_minute) == (120, 60)
    limits = ApiLimits.of(cfg)
    assert (limits.searches.rate * 60, limits.searches.burst) == (120, 30)
    assert (limits.writes.rate * 60, limits.writes.burst) == (60, 30)
    assert ApiLimits.default().searches.rate == limits.searches.rate


def test_zero_lifts_a_limit_and_a_number_sets_it(tmp_path):
    env = {"PAPERTIDE_API_SEARCH_PER_MINUTE": "0", "PAPERTIDE_API_WRITES_PER_MINUTE": "6"}
    limits = ApiLimits.of(load_config(tmp_path, env=env))
    assert limits.searches is None
    assert (limits.writes.rate * 60, limits.writes.burst) == (6, 6)  # a burst is never more than a minute's worth
    (tmp_path / "config.toml").write_text("api_writes_per_minute = 0\napi_search_per_minute = 600\n")
    limits = ApiLimits.of(load_config(tmp_path, env={}))
    assert limits.writes is None and (limits.searches.rate, limits.searches.burst) == (10, 30)
    with pytest.raises(ConfigError, match="PAPERTIDE_API_SEARCH_PER_MINUTE.*whole number"):
        load_config(tmp_path, env={"PAPERTIDE_API_SEARCH_PER_MINUTE": "lots"})
    with pytest.raises(ConfigError, match="api_writes_per_minute must not be negative"):
        load_config(tmp_path, env={}, api_writes_per_minute=-1)


def _app(config) -> tuple[TestClient, dict[str, str]]:
    """The real app over ``config``'s home, and the Authorization header of an account in it."""
    with open_store(config) as store:
        if not store.get_many(demo_paper_ids()[:1]):
            ingest_demo(store)
        user = store.community.create_user("rita", "", "argon2-hash-for-tests")
        store.community.create_api_token(user.id, "t", token_hash(TOKEN))
    return TestClient(create_app(config), raise_server_exceptions=False), {"Authorization": f"Bearer {TOKEN}"}


def test_writes_limited_as_set_or_not_at_all(config):
    c, auth = _app(replace(config, api_writes_per_minute=2))
    pid = demo_paper_ids()[0]
    answers = [c.post(f"/api/papers/{pid}/vote", headers=auth) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert "at most 2 a minute" in answers[2].json()["detail"] and int(answers[2].headers["Retry-After"]) >= 1
    c.app.state.store.close()

    unlimited = load_config(config.home, env={"PAPERTIDE_API_WRITES_PER_MINUTE": "0"})
    c = TestClient(create_app(unlimited), raise_server_exceptions=False)
    codes = {c.request("POST" if i % 2 else "DELETE", f"/api/papers/{pid}/vote", headers=auth).status_code
             for i in range(100)}  # fmt: skip
    assert codes == {200}  # 100 writes in a row, far past the default burst of 30
    assert c.app.state.store.community.votes([pid]) == {pid: 1}  # each one done: the last (a POST) voted
    c.app.state.store.close()


def test_searches_unlimited_with_zero_answer_every_query(demo_indexed, config):
    env = {"PAPERTIDE_API_SEARCH_PER_MINUTE": "0"}
    c = TestClient(create_app(load_config(config.home, env=env)), raise_server_exceptions=False)
    answers = [c.get("/api/search", params={"q": "language model", "limit": 3}) for _ in range(35)]
    assert {r.status_code for r in answers} == {200}  # past the default burst of 30 from one address
    assert all(len(r.json()["items"]) == 3 for r in answers)
    c.app.state.store.close()

    c = TestClient(create_app(load_config(config.home, env={"PAPERTIDE_API_SEARCH_PER_MINUTE": "2"})),
                   raise_server_exceptions=False)  # fmt: skip
    codes = [c.get("/api/search", params={"q": "retrieval"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    c.app.state.store.close()
