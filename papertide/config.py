"""Settings, loaded by a factory and never at import time.

Precedence, lowest first: built-in defaults < ``config.toml`` in the papertide home
< ``PAPERTIDE_*`` environment variables < explicit arguments (the CLI's flags, a
test's overrides). The home itself comes from ``--home``, else ``PAPERTIDE_HOME``,
else the platform's user data dir.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

import platformdirs

from papertide import __version__
from papertide.errors import ConfigError


@dataclass(frozen=True)
class Config:
    home: Path
    database_url: str | None = None  # default: sqlite file in home; postgresql://user@host/db for PostgreSQL
    database_pool: int = 10  # PostgreSQL connections per process at most (each serve worker and the worker)
    contact: str = ""  # e-mail put in the User-Agent, as arXiv asks of harvesters
    oai_url: str = "https://oaipmh.arxiv.org/oai"
    arxiv_api_url: str = "http://export.arxiv.org/api/query"
    hf_url: str = "https://huggingface.co/api/daily_papers"
    arxiv_interval: float = 3.0  # seconds between requests to arXiv (its terms)
    hf_interval: float = 0.5
    timeout: float = 30.0  # seconds, per request
    retries: int = 5  # attempts after the first for 5xx, 429 and network errors
    backoff: float = 2.0  # first retry wait in seconds; doubles each time
    max_retry_after: float = 600.0  # a longer Retry-After is an error, not a wait
    # The sentence embedder behind dense search (see README "Embeddings"). The default is
    # the packaged all-MiniLM-L6-v2 with int8 dense layers, reading 128 tokens, the length
    # it was trained at: 3.6x sentence-transformers' speed on abstracts at 99-101% of its
    # nDCG@10 here (bench/embed_bench.py). fp32 with 0 (= the model's 256) is the faithful one.
    embed_model: str = ""  # "" = packaged all-MiniLM-L6-v2; else a model directory or cached HF name
    embed_precision: str = "int8"  # int8 | fp32
    embed_max_tokens: int = 128  # 0 = the model's own limit
    # Where dense search runs: "auto" = pgvector's HNSW index when the store is PostgreSQL with
    # the vector extension, else papertide's own index; "own" = always the own index;
    # "pgvector" = required (an error where the store cannot have it). The own index is built
    # in every mode; `papertide index` keeps the pgvector table in step with it.
    vector_search: str = "auto"
    # Digests (issue 6). Links in mail point at base_url; the SMTP server comes from
    # PAPERTIDE_SMTP_URL, e.g. smtp://user:pass@host:587?starttls=1 or smtps://host:465.
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str = ""  # "" = no mail is sent (digest send refuses, preview works)
    mail_from: str = ""  # "" = papertide@<the base_url's host>
    mail_rate: float = 10.0  # messages per second at most, per run
    mail_max_per_run: int = 0  # 0 = no cap; else a run stops after this many messages
    # JSON API rate limits per account (or client address without a token), per process.
    api_search_per_minute: int = 120  # /api/search, /api/similar, /api/ngram/count; 0 = no limit
    api_writes_per_minute: int = 60  # votes, comments, collections, submissions; 0 = no limit

    @property
    def db_path(self) -> Path:
        return self.home / "papertide.db"

    @property
    def user_agent(self) -> str:
        contact = f"; mailto:{self.contact}" if self.contact else ""
        return f"papertide/{__version__} (self-hosted paper discovery{contact})"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("PAPERTIDE_HOME"):
        return Path(env["PAPERTIDE_HOME"]).expanduser()
    return Path(platformdirs.user_data_dir("papertide", appauthor=False))


def _coerce(name: str, typ: type, value: object, where: str) -> object:
    if typ is float or typ == "float":
        try:
            v = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be a number, not {value!r}") from None
        if v < 0:
            raise ConfigError(f"{where}: {name} must not be negative")
        return v
    if typ is int or typ == "int":
        try:
            v = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be a whole number, not {value!r}") from None
        if v < 0:
            raise ConfigError(f"{where}: {name} must not be negative")
        return v
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {name} must be a string")
    return value


def load_config(
    home: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: object,
) -> Config:
    """Build the settings for one run. ``env`` defaults to ``os.environ``."""
    env = os.environ if env is None else env
    home_path = Path(home).expanduser() if home else default_home(env)
    types = {f.name: f.type for f in fields(Config) if f.name != "home"}
    values: dict[str, object] = {}

    cfg_file = home_path / "config.toml"
    if cfg_file.is_file():
        try:
            data = tomllib.loads(cfg_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{cfg_file}: {e}") from None
        for k, v in data.items():
            if k not in types:
                raise ConfigError(f"{cfg_file}: unknown setting {k!r} (known: {', '.join(sorted(types))})")
            values[k] = _coerce(k, _base_type(types[k]), v, str(cfg_file))
    for k, typ in types.items():
        var = "PAPERTIDE_" + k.upper()
        if env.get(var):
            values[k] = _coerce(k, _base_type(typ), env[var], var)
    for k, v in overrides.items():
        if k not in types:
            raise ConfigError(f"unknown setting {k!r}")
        if v is not None:
            values[k] = _coerce(k, _base_type(types[k]), v, "argument")
    return Config(home=home_path, **values)  # type: ignore[arg-type]


def _base_type(t: object) -> object:
    # dataclass field types are strings under ``from __future__ import annotations``
    s = str(t)
    if s.startswith("float"):
        return float
    if s.startswith("int"):
        return int
    return str


def replace(cfg: Config, **changes: object) -> Config:
    return dataclasses.replace(cfg, **changes)
