"""Fixtures for the web app's community tests, loaded with ``pytest_plugins = ["web_fixtures"]``.

``template`` is a home with the demo corpus built once per test module; ``app`` is a
fresh app over a copy of it for every test (see ``web_helpers.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from web_helpers import demo_store_template, make_app


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return demo_store_template(tmp_path_factory.mktemp("community"))


@pytest.fixture
def app(template, config):
    application = make_app(template, config)
    yield application
    application.state.store.close()
