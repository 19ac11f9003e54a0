"""A polite HTTP fetcher shared by every network source.

One place decides how papertide talks to other people's servers: a descriptive
User-Agent, timeouts, a minimum interval between requests (arXiv asks for at least
3 s), retries with exponential backoff on network errors, 429 and 5xx, and
``Retry-After`` honoured on 503/429. Sources call :meth:`Fetcher.get` and parse what
comes back; they never build their own client.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Iterable, Mapping

import httpx

from papertide.config import Config
from papertide.errors import SourceError, SourceRefusedError

log = logging.getLogger("papertide.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Retry(Exception):
    """Raised by a ``check`` callback: the body is unusable (e.g. truncated); try again."""


def make_client(config: Config) -> httpx.Client:
    return httpx.Client(
        headers={"User-Agent": config.user_agent},
        timeout=httpx.Timeout(config.timeout),
        follow_redirects=True,
    )


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


class Fetcher:
    """GETs with a minimum interval, retries and backoff. Use one per source run."""

    def __init__(
        self,
        config: Config,
        *,
        interval: float | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.interval = config.arxiv_interval if interval is None else interval
        self.client = client or make_client(config)
        self._own_client = client is None
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None
        self.requests = 0  # requests actually sent, for reports and tests

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_turn(self) -> None:
        if self._last is not None:
            wait = self.interval - (self._clock() - self._last)
            if wait > 0:
                self._sleep(wait)
        self._last = self._clock()

    def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None = None,
        *,
        accept: Iterable[int] = (),
        check: Callable[[httpx.Response], None] | None = None,
    ) -> httpx.Response:
        """GET ``url``; return a 2xx response (or one whose status is in ``accept``).

        Network errors, 429 and 5xx are retried up to ``config.retries`` times with
        doubling backoff; a ``Retry-After`` header sets the wait instead. ``check``
        may raise :class:`Retry` for a body that arrived broken. Another status raises
        :class:`SourceRefusedError`; running out of retries, :class:`SourceError`; both
        name the URL.
        """
        accepted = set(accept)
        attempts = self.config.retries + 1
        backoff = self.config.backoff
        where = _describe(url, params)
        last_problem = ""
        for attempt in range(1, attempts + 1):
            self._wait_turn()
            self.requests += 1
            wait = backoff * 2 ** (attempt - 1)
            try:
                resp = self.client.get(url, params=params)
                resp.read()
            except httpx.TimeoutException:
                last_problem = f"timed out after {self.config.timeout:g} s"
            except httpx.TransportError as e:
                last_problem = f"network error: {e.__class__.__name__}: {e}"
            else:
                if resp.status_code in RETRY_STATUSES:
                    last_problem = f"HTTP {resp.status_code}"
                    after = retry_after_seconds(resp.headers.get("Retry-After"))
                    if after is not None:
                        if after > self.config.max_retry_after:
                            raise SourceError(
                                f"{where}: server asks to retry after {after:g} s "
                                f"(more than max_retry_after={self.config.max_retry_after:g} s); try later"
                            )
                        wait = after
                        last_problem += f" (Retry-After: {after:g} s)"
                elif 200 <= resp.status_code < 300 or resp.status_code in accepted:
                    if check is None:
                        return resp
                    try:
                        check(resp)
                        return resp
                    except Retry as e:
                        last_problem = str(e)
                else:
                    raise SourceRefusedError(f"{where}: HTTP {resp.status_code} {_snippet(resp)}")
            if attempt < attempts:
                log.warning("%s: %s; retry %d/%d in %.1f s", where, last_problem, attempt, attempts - 1, wait)
                self._sleep(wait)
        raise SourceError(f"{where}: giving up after {attempts} attempts: {last_problem}")


def _describe(url: str, params: Mapping[str, str | int] | None) -> str:
    if not params:
        return url
    return str(httpx.URL(url, params=dict(params)))


def _snippet(resp: httpx.Response) -> str:
    text = resp.text[:200].strip().replace("\n", " ")
    return f"({text})" if text else ""
