"""Papers people submit: an arXiv id or URL becomes a paper listed on today's daily page.

A submission is kept (``community.add_submission``) the moment it is made, so nothing
a user hands in is lost when arXiv cannot be reached: the paper is looked up in the
store first (no network at all when it is already there), else fetched from the arXiv
API by id and written through :func:`papertide.ingest.ingest`, the one way papers
enter the store. Then it is listed on the daily page of the day it was completed,
with the submitter's name.

Outcomes, as the submission's status:

- ``done``: the paper is in the store and listed (or was listed already: the first
  listing wins and the message says which day);
- ``pending``: arXiv could not be reached (network down, timeouts, 5xx after the
  fetcher's retries). :func:`complete_pending_submissions` (``papertide submissions
  retry``) tries again later, asking arXiv for all pending ids at once;
- ``failed``: arXiv answered but has no such paper, or answered with an error
  (:class:`~papertide.errors.SourceRefusedError`: an HTTP 4xx, an error entry).

Requests to arXiv from here go through one process-wide gate so that concurrent
submitters together still keep arXiv's interval between requests.

:class:`PendingRetrier` runs :func:`complete_pending_submissions` every few minutes in a
background thread of ``papertide serve``. With several worker processes only the one
holding a lock file in the home retries (a lease the OS releases when its holder dies);
a round is idempotent anyway, so two hosts sharing one database only ask arXiv twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from papertide.config import Config
from papertide.errors import SourceError, SourceRefusedError
from papertide.ingest import ingest
from papertide.paper import Paper, parse_arxiv_id
from papertide.sources import Item, Rejected
from papertide.store import Store
from papertide.store.community import Submission

log = logging.getLogger("papertide.submissions")

PENDING_MESSAGE = "arXiv could not be reached just now; the paper will be fetched and listed later"


@dataclass(frozen=True)
class Outcome:
    """What became of a batch of fetches: papers found by id, ids arXiv lacks or refused, or a network failure."""

    found: dict[str, Paper]
    missing: dict[str, str]  # paper id -> why
    network: str | None = None  # the network failure, when arXiv could not be reached


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


# ------------------------------------------------------------------ arXiv gate


class _Gate:
    """One arXiv request at a time in this process, at least ``interval`` seconds apart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: float | None = None

    def run(self, interval: float, fn):
        with self._lock:
            if self._last is not None:
                wait = interval - (time.monotonic() - self._last)
                if wait > 0:
                    time.sleep(wait)
            try:
                return fn()
            finally:
                self._last = time.monotonic()


_ARXIV_GATE = _Gate()


def fetch_arxiv(config: Config, ids: list[str]) -> Outcome:
    """Ask the arXiv API for ``ids`` (canonical arXiv ids); never raises for network trouble."""
    from papertide.sources import arxiv_api
    from papertide.sources.http import Fetcher

    def call() -> list[Item]:
        with Fetcher(config, interval=config.arxiv_interval) as fetcher:
            return arxiv_api.fetch(fetcher, config.arxiv_api_url, ids)

    try:
        items = _ARXIV_GATE.run(config.arxiv_interval, call)
    except SourceRefusedError as e:  # arXiv answered: asking again will not help
        return Outcome({}, {pid: f"arXiv refused it: {e}" for pid in ids})
    except SourceError as e:  # the network, timeouts, 5xx after the fetcher's retries
        return Outcome({}, {}, network=str(e))
    except httpx.HTTPError as e:  # anything the fetcher does not wrap (a malformed URL, a protocol error)
        return Outcome({}, {}, network=f"{type(e).__name__}: {e}")
    found = {item.id: item for item in items if isinstance(item, Paper)}
    rejected = {r.where: r.reason for r in items if isinstance(r, Rejected)}
    missing = {}
    for pid in ids:
        if pid not in found:
            why = next((reason for where, reason in rejected.items() if pid in where), None)
            missing[pid] = f"arXiv's record of it could not be read: {why}" if why else f"arXiv has no paper {pid}"
    return Outcome(found, missing)


# ----------------------------------------------------------------- submitting


def submit(store: Store, config: Config, user_id: int, raw: str, *, day: str | None = None) -> Submission:
    """Submit an arXiv id or URL for ``user_id``: the recorded :class:`Submission`, done, pending or failed.

    Raises :class:`~papertide.errors.InvalidIdError` (nothing is recorded) when ``raw``
    is not an arXiv id or URL. The paper is listed on ``day`` (default: today, UTC).
    """
    pid = parse_arxiv_id(raw).id
    com = store.community
    sub = com.add_submission(user_id, raw.strip(), paper_id=pid, status="pending", message=PENDING_MESSAGE)
    return _complete(store, config, [sub], day=day or today())[0]


def complete_pending_submissions(store: Store, config: Config, *, limit: int = 100, day: str | None = None) -> int:
    """Try the pending submissions again (oldest first, up to ``limit``); the number now done.

    Papers already in the store are listed without asking arXiv; the others are asked
    for in one batch. When arXiv is still unreachable every one stays pending.
    """
    pending = store.community.pending_submissions(limit)
    done = _complete(store, config, pending, day=day or today())
    return sum(s.status == "done" for s in done)


def _complete(store: Store, config: Config, subs: Iterable[Submission], *, day: str) -> list[Submission]:
    subs = list(subs)
    com = store.community
    ids = {s.id: _paper_id(s) for s in subs}
    present = store.get_many({pid for pid in ids.values() if pid})
    wanted = sorted({pid for pid in ids.values() if pid and pid not in present})
    outcome = fetch_arxiv(config, wanted) if wanted else Outcome({}, {})
    if outcome.found:
        ingest(store, outcome.found.values())
        present |= store.get_many(outcome.found)
    out = []
    for s in subs:
        pid = ids[s.id]
        if pid is None:
            out.append(com.update_submission(s.id, status="failed", message=f"not an arXiv id: {s.raw[:100]!r}"))
        elif pid in present:
            out.append(com.update_submission(s.id, paper_id=pid, status="done", message=_list(store, pid, s, day)))
        elif pid in outcome.missing:
            out.append(com.update_submission(s.id, status="failed", message=outcome.missing[pid]))
        else:
            message = f"{PENDING_MESSAGE} ({outcome.network or 'no answer'})"
            out.append(com.update_submission(s.id, status="pending", message=message[:2000]))
    return out


def _paper_id(sub: Submission) -> str | None:
    if sub.paper_id:
        return sub.paper_id
    try:
        return parse_arxiv_id(sub.raw).id
    except ValueError:
        return None


def _list(store: Store, paper_id: str, sub: Submission, day: str) -> str:
    com = store.community
    com.list_paper(paper_id, day, submitted_by=sub.user_id)
    listed_day, by = com.listing([paper_id])[paper_id]
    if by == sub.user_id and listed_day == day:
        return f"listed on {day}"
    return f"already listed on {listed_day}"


# ------------------------------------------------------------ retrying in serve


def retry_lease_path(config: Config) -> Path:
    """The lock file whose holder is the one process of a home that retries submissions."""
    return config.home / "submissions-retry.lock"


class PendingRetrier:
    """Retries the pending submissions every ``every`` seconds in a daemon thread.

    The first round runs at :meth:`start` (papers submitted while arXiv was down get
    listed soon after a restart). A round runs only in the process holding an exclusive
    ``flock`` on :func:`retry_lease_path`: taken without waiting, then kept until
    :meth:`stop`, so among ``serve --workers N`` one worker retries and, if it dies, the
    OS frees the lock and another takes over at its next tick. Rounds share the store
    the app uses (thread-safe) and the process-wide arXiv gate, so requests are never
    blocked on arXiv.
    """

    def __init__(self, store: Store, config: Config, every: float, *, limit: int = 100) -> None:
        if every <= 0:
            raise ValueError(f"the retry interval must be positive, not {every!r} seconds")
        self.store, self.config, self.every, self.limit = store, config, every, limit
        self.rounds = 0  # rounds run by this process (tests, logs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: int | None = None  # the locked file descriptor while this process holds the lease

    @property
    def holds_lease(self) -> bool:
        return self._lease is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="papertide-retry-submissions", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread (after the round in progress) and give up the lease; False when the
        round did not end within ``timeout`` seconds (the daemon thread is then abandoned)."""
        self._stop.set()
        ended = True
        if self._thread is not None:
            self._thread.join(timeout)
            ended = not self._thread.is_alive()
        if ended:
            self._release()
        return ended

    def run_once(self) -> int | None:
        """One round: the number of submissions now done, or None when another process holds the lease."""
        if not self._take_lease():
            return None
        self.rounds += 1
        return complete_pending_submissions(self.store, self.config, limit=self.limit)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
                if done:
                    log.info("retried pending submissions: %d now listed", done)
            except Exception:  # a bug or a closed store must not kill the thread silently
                log.exception("retrying pending submissions failed")
            self._stop.wait(self.every)

    def _take_lease(self) -> bool:
        if self._lease is not None:
            return True
        path = retry_lease_path(self.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another process retries
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking
        self._lease = fd
        return True

    def _release(self) -> None:
        if self._lease is not None:
            os.close(self._lease)  # closing the descriptor drops the flock
            self._lease = None
