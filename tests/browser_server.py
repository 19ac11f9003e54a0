"""What the browser tests stand on: the real web app on a real port, the browser, a watched page.

:class:`LiveServer` runs ``papertide.web.create_app`` under uvicorn in a background
thread on 127.0.0.1 (a socket bound to a free port first, so there is no race for the
port) and returns once the app answers. :func:`chromium_path` finds Debian's Chromium
(``apt-get install chromium``), which Playwright launches by its executable path:
nothing is ever downloaded. :func:`unavailable` is how a missing browser is reported:
a skip with the reason on a developer's machine, a failure in CI (``CI`` set), where
``.ci/run`` installs Chromium and the browser tests must run. :class:`Watched` is a
Playwright page with what its console, its scripts and the CSP reported; :func:`feed_of`
cuts a recorded arXiv API feed down to the one entry the API would answer for an id.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

CHROMIUM_NAMES = ("chromium", "chromium-browser")
ARXIV_FEEDS = Path(__file__).parent / "fixtures" / "arxiv_api"
CSP_WORDS = ("Content Security Policy", "Refused to")  # how Chromium's console reports a blocked script or style
START_TIMEOUT = 30.0  # seconds for the app to answer its first request


def in_ci() -> bool:
    """Whether this run is CI's (GitHub, GitLab and most others set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the browser tests with ``reason`` — or fail them in CI, where they must run."""
    if in_ci():
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """The Chromium to launch: ``PAPERTIDE_CHROMIUM`` if set, else ``chromium`` on the PATH."""
    wanted = os.environ.get("PAPERTIDE_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).is_file() and os.access(wanted, os.X_OK) else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def artifacts_dir(fallback: Path) -> Path:
    """Where screenshots go: ``PAPERTIDE_ARTIFACTS`` (CI keeps it), else ``fallback`` (pytest's tmp dir)."""
    path = Path(os.environ.get("PAPERTIDE_ARTIFACTS") or fallback)
    path.mkdir(parents=True, exist_ok=True)
    return path


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 from a background thread."""

    def __init__(self, app) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the web app's server stopped while starting (see the log above)")
            if self._server.started:
                try:
                    if httpx.get(self.url + "/static/app.js", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"the web app did not answer on {self.url} within {START_TIMEOUT:.0f} s")

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "LiveServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_dead_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago): "offline"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/query"


def feed_of(name: str, arxiv_id: str) -> str:
    """A recorded arXiv API feed cut down to the entry of ``arxiv_id``, as the API answers ``id_list=arxiv_id``."""
    feed = (ARXIV_FEEDS / name).read_text(encoding="utf-8")
    entries = re.findall(r"\n  <entry>.*?</entry>", feed, flags=re.S)
    for entry in entries:
        if f"/abs/{arxiv_id}v" not in entry:
            feed = feed.replace(entry, "")
    assert feed.count("<entry>") == 1, arxiv_id
    return re.sub(r"(<opensearch:totalResults[^>]*>)\d+", r"\g<1>1", feed)


class Watched:
    """A page and what its console and the CSP reported while the test drove it."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base = page, base
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        # securitypolicyviolation events, recorded from the first byte of every document
        page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                             " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")  # fmt: skip

    def goto(self, path: str):
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None and response.status == 200, (path, response and response.status)
        return response

    def csp_violations(self) -> list[str]:
        reported = self.page.evaluate("window.__csp || []")
        return reported + [text for _, text in self.console if any(w in text for w in CSP_WORDS)]

    def pwned(self):
        return self.page.evaluate("typeof window.__pwned === 'undefined' ? null : window.__pwned")
