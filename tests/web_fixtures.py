"""Fixtures the web app's tests share, loaded with ``pytest_plugins = ["web_fixtures"]``.

- ``template`` / ``app`` (community pages): a home with the demo corpus built once per
  test module, and a fresh app over a copy of it for every test (``web_helpers.py``).
- ``api_home`` / ``api_client`` (the JSON API and the feeds): one *indexed* home per
  test module — the demo corpus listed on 2024-03-17 as ``papertide serve`` lists it,
  the dated arXiv papers of ``web_corpus.py`` (one with ``<script>`` in its title, one
  hidden by a moderator), three accounts holding API tokens (carol is an admin), votes,
  a comment thread and collections — and one client of it shared by the module's read
  tests. ``api_home["pristine"]`` is a copy of its database for tests that write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_corpus import EXTRA, HIDDEN, PASSWORD, SCRIPT_COMMENT, TOKENS
from web_helpers import demo_store_template, make_app, unlimited

from papertide.config import load_config
from papertide.index import update_index
from papertide.ingest import ingest_demo, ingest_files
from papertide.store import open_store
from papertide.web import create_app
from papertide.web.auth import hash_password, token_hash
from papertide.web.demo import demo_paper_ids, list_demo_papers


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return demo_store_template(tmp_path_factory.mktemp("community"))


@pytest.fixture
def app(template, config):
    application = make_app(template, config)
    yield application
    application.state.store.close()


@pytest.fixture(scope="module")
def api_home(tmp_path_factory, demo_embeddings, embedder) -> dict:
    """The indexed home, the demo ids, and a pristine copy of its database files for write tests."""
    root = tmp_path_factory.mktemp("api")
    home = root / "home"
    shutil.copytree(demo_embeddings, home / "embeddings")
    shutil.copytree(demo_embeddings.parent / "models", home / "models")
    cfg = load_config(home, env={})
    extra = root / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(d) for d in EXTRA) + "\n")
    ids = demo_paper_ids()
    with open_store(cfg) as store:
        ingest_demo(store)
        ingest_files(store, [extra])
        assert list_demo_papers(store) == 43
        com = store.community
        users = {}
        for name in TOKENS:
            users[name] = com.create_user(name, "", hash_password(PASSWORD))
            com.create_api_token(users[name].id, "t", token_hash(TOKENS[name]))
        com.update_user(users["carol"].id, role="admin")
        alice, bob = users["alice"].id, users["bob"].id
        for uid, pid in ((alice, ids[7]), (bob, ids[7]), (bob, ids[3])):
            com.vote(uid, pid)
        first = com.add_comment(ids[7], alice, SCRIPT_COMMENT)
        com.add_comment(ids[7], bob, "I *agree*.", parent_id=first.id)
        com.add_comment(ids[7], bob, "A second thought.")
        public = com.create_collection(alice, "Reading list", description="Mine", public=True)
        com.add_item(public.id, ids[7], "read <b>this</b> first")
        com.add_item(public.id, "2403.01234")
        private = com.create_collection(alice, "Secret", public=False)
        com.add_item(private.id, ids[3])
        com.set_paper_hidden(HIDDEN, True)
        update_index(store, cfg, embedder=embedder)
    pristine = root / "pristine"
    pristine.mkdir()
    for f in home.iterdir():
        if f.is_file():
            shutil.copy2(f, pristine / f.name)
    return {"config": cfg, "ids": ids, "pristine": pristine, "public": public.id, "private": private.id}


@pytest.fixture(scope="module")
def api_client(api_home):
    """One client of the indexed home's app, for tests that only read (rate limits out of reach)."""
    with TestClient(unlimited(create_app(api_home["config"])), raise_server_exceptions=False) as c:
        yield c
