"""Settings precedence: defaults < config.toml < PAPERTIDE_* env < explicit arguments."""

from __future__ import annotations

import pytest

from papertide.config import default_home, load_config
from papertide.errors import ConfigError


def test_defaults(tmp_path):
    cfg = load_config(tmp_path, env={})
    assert cfg.home == tmp_path and cfg.db_path == tmp_path / "papertide.db"
    assert cfg.arxiv_interval == 3.0 and cfg.oai_url == "https://oaipmh.arxiv.org/oai"
    assert cfg.user_agent.startswith("papertide/")


def test_precedence(tmp_path):
    (tmp_path / "config.toml").write_text('contact = "file@example.org"\ntimeout = 10\nretries = 2\n')
    env = {"PAPERTIDE_TIMEOUT": "20", "PAPERTIDE_RETRIES": "4"}
    cfg = load_config(tmp_path, env=env, retries=7)
    assert cfg.contact == "file@example.org"  # from the file
    assert cfg.timeout == 20.0  # env beats the file
    assert cfg.retries == 7  # an explicit argument beats everything
    assert "mailto:file@example.org" in cfg.user_agent


def test_home_from_env_or_platform(tmp_path):
    assert default_home({"PAPERTIDE_HOME": str(tmp_path)}) == tmp_path
    assert default_home({}).name == "papertide"
    assert load_config(env={"PAPERTIDE_HOME": str(tmp_path)}).home == tmp_path


@pytest.mark.parametrize(
    "text,message",
    [
        ("timeout = 'soon'", "timeout must be a number"),
        ("retries = -1", "must not be negative"),
        ("colour = 'red'", "unknown setting 'colour'"),
        ("timeout = ", "config.toml"),
    ],
)
def test_bad_config_file_is_named(tmp_path, text, message):
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env={})


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="PAPERTIDE_ARXIV_INTERVAL"):
        load_config(tmp_path, env={"PAPERTIDE_ARXIV_INTERVAL": "fast"})
