"""What bench/load_bench.py stands on: the built home, the per-scenario copies, accounts, processes.

- :func:`cached_home` builds the corpus once into a SQLite home and caches it under
  $BENCH_TMP (else the system temp dir) in ``papertide-load-bench/synthetic-<N>-v<V>``:
  N papers in the arXiv snapshot's format (bench/synth.py), the newest 300 listed on the
  newest day, web_bench's community (40 users, votes, comments), the search indexes with
  web_bench's synthetic dense vectors (the real model embeds the queries: its graph is
  built once here, under ``models/``).
- :func:`scenario_home` copies it per run, so a run never writes to the cache (the
  PostgreSQL scenario copies the SQLite store into its database with ``papertide db copy``).
- :func:`make_users` signs up the load's users, each with a personal API token stored
  by its SHA-256 as the web app does (papertide.web.auth).
- :class:`Processes` starts ``papertide serve`` / ``papertide worker`` each in its own
  process group and always stops them: SIGTERM, then SIGKILL to the whole group.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from web_bench import SERVER_ENV, SyntheticEmbedder, cached, free_port, seed_community, wait_ready  # noqa: E402

from papertide.config import Config, load_config  # noqa: E402
from papertide.store import Store, open_store  # noqa: E402

BUILD_VERSION = 1  # bump when the recipe changes: cached homes are rebuilt
READY = "load-bench.json"
SNAPSHOT = "snapshot.jsonl"
LISTED = 300  # papers on the daily page: the ones voted on
BROWSED_OTHERS = 200  # older papers whose pages are browsed too
STOP_TIMEOUT = 15.0


def bench_root() -> Path:
    return Path(os.environ.get("BENCH_TMP") or tempfile.gettempdir()) / "papertide-load-bench"


# ------------------------------------------------------------------ corpus


def fill_store(store: Store, snapshot: Path) -> dict:
    """Papers from the snapshot, the newest listed on their day, web_bench's community."""
    from papertide.ingest import ingest_files

    ingest_files(store, [snapshot], format="arxiv-snapshot")
    newest = store.list_papers(limit=LISTED + 2000, order="submitted")
    day = newest[0].submitted[:10]
    listed = [p.id for p in newest[:LISTED]]
    for pid in listed:
        store.community.list_paper(pid, day)
    votes, comments = seed_community(store, listed)
    others = random.Random(1).sample([p.id for p in newest[LISTED:]], BROWSED_OTHERS)
    return {"papers": store.count(), "day": day, "listed": listed, "browsed": listed + others, "votes": votes,
            "comments": comments, "watermark": store.watermark()}  # fmt: skip


def index_store(store: Store, config: Config) -> str:
    """Catch the indexes up with web_bench's synthetic vectors (named as the configured model)."""
    from papertide.index import configured_embedder_name, update_index

    embedder = SyntheticEmbedder(configured_embedder_name(config))
    return update_index(store, config, embedder=embedder).summary()


def cached_home(n: int, rebuild: bool) -> tuple[Path, dict, bool]:
    """The built SQLite home (built now unless cached): (home, info, reused)."""

    def build(home: Path) -> dict:
        config = load_config(home, env={})
        snapshot = synth.write(home / SNAPSHOT, n)
        with open_store(config) as store:
            info = fill_store(store, snapshot)
            info["index"] = index_store(store, config)
        from papertide.index import load_configured_embedder

        load_configured_embedder(config, threads=1).embed(["warm up"])  # builds the model graph into <home>/models
        return info

    return cached(bench_root() / f"synthetic-{n}-v{BUILD_VERSION}", build, rebuild, READY)


def scenario_home(cache: Path, dest: Path, *, with_sqlite: bool) -> Path:
    """A private copy of the cached home (indexes, models), with or without its SQLite store."""
    skip = [SNAPSHOT, READY, "*.log"] + ([] if with_sqlite else ["papertide.db*"])
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(cache, dest, ignore=shutil.ignore_patterns(*skip))
    return dest


def make_users(store: Store, n: int) -> list[tuple[int, str]]:
    """``n`` accounts ``load000``… with one API token each: [(user id, token)]."""
    from papertide.web.auth import new_token, token_hash

    com, out = store.community, []
    for i in range(n):
        user = com.create_user(f"load{i:03d}", f"load{i:03d}@example.org", "load-bench-account-no-login")
        token = new_token()
        com.create_api_token(user.id, "load bench", token_hash(token))
        out.append((user.id, token))
    return out


# --------------------------------------------------------------- processes


def server_env(extra: dict[str, str], *, rate_limits: bool = False) -> dict[str, str]:
    """This process's environment without PAPERTIDE_* settings, plus ``extra`` and, unless
    ``rate_limits``, web_bench's settings that lift the API's rate limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    return env | ({} if rate_limits else SERVER_ENV) | extra


class Processes:
    """Child processes, each in its own process group, all stopped by :meth:`stop_all`."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path, *, keep_stdout: bool = False) -> int:
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out if keep_stdout else subprocess.DEVNULL,
                                    stderr=out, env=env, start_new_session=True)  # fmt: skip
        self.running[name] = (proc, log)
        return proc.pid

    def serve(self, name: str, home: Path, env: dict[str, str]) -> tuple[str, int]:
        """``papertide serve --no-index`` (one uvicorn worker) on a free port: (base URL, pid)."""
        port = free_port()
        cmd = [sys.executable, "-m", "papertide", "--home", str(home), "serve", "--no-index", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--retry-submissions", "0"]  # fmt: skip
        # uvicorn's access log goes to stdout (dropped), errors and tracebacks to stderr (kept)
        pid = self.start(name, cmd, env, home / f"{name}.log")
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, self.running[name][0])
        return base, pid

    def worker(self, name: str, home: Path, env: dict[str, str], every: float) -> int:
        """``papertide worker`` without harvesting or mail: index catch-up + submissions every ``every`` s."""
        cmd = [sys.executable, "-m", "papertide", "--home", str(home), "worker", "--every", str(every), "--no-send"]
        return self.start(name, cmd, env, home / f"{name}.log", keep_stdout=True)

    def stop(self, name: str) -> int | None:
        """Stop one: SIGTERM to its group (uvicorn and the worker finish cleanly), SIGKILL after
        STOP_TIMEOUT s; its exit status. (Not SIGINT: a child of a shell's background job
        inherits SIGINT ignored.)"""
        proc, _ = self.running.pop(name)
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                return proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return None

    def stop_all(self) -> dict[str, int | None]:
        return {name: self.stop(name) for name in list(self.running)}

    def logs(self) -> dict[str, Path]:
        return {name: log for name, (_, log) in self.running.items()}


CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def tracebacks(log: Path, limit: int = 3, lines: int = 60) -> tuple[int, list[str]]:
    """(error lines, the first ``limit`` tracebacks with the line before each) in a process's log."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = sum(1 for x in text if x.startswith("ERROR") or x.startswith("Traceback"))
    found: list[str] = []
    i = 0
    while i < len(text) and len(found) < limit:
        if text[i].startswith("Traceback"):
            j = i + 1
            while j < len(text) and (text[j][:1] in (" ", "\t", "") or text[j].startswith(CHAINED + ("Traceback",))
                                     or (j + 2 < len(text) and text[j + 2].startswith(CHAINED))):  # fmt: skip
                j += 1
            block = text[max(0, i - 1) : j + 1]
            found.append("\n".join(block if len(block) <= lines else block[:10] + ["    ..."] + block[-(lines - 11):]))
            i = j
        i += 1
    return errors, found


def worker_ticks(log: Path) -> tuple[int, list[str]]:
    """(ticks the worker reported, its ``error:`` lines) from its log."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return sum(1 for x in text if x.startswith("tick at")), [x.strip() for x in text if x.strip().startswith("error:")]
