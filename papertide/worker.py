"""``papertide worker``: the long-running process that keeps a papertide fresh.

Every ``interval`` seconds it runs one *tick*: harvest the configured sources (Hugging
Face daily papers for today and yesterday, each listed on the day HF featured it; arXiv
OAI-PMH sets from their checkpoints), bring the search index and n-gram engine up to the
store, retry pending submissions, and send the digests that are due. Each step's failure
is reported (a source that failed part-way too: what it sent first is kept) and the next
step still runs; a source that is down is tried again next tick. SIGTERM or SIGINT asks it to
stop: the step under way finishes its current message or batch and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from papertide.config import Config
from papertide.errors import PapertideError, SourceError

log = logging.getLogger(__name__)

FIRST_HARVEST_DAYS = 3  # an arXiv set never harvested before starts this many days back


def parse_source(spec: str) -> tuple[str, str | None]:
    """``hf-daily`` or ``arxiv:SET`` (``arxiv:cs:cs:CL``; ``arxiv`` alone = every set)."""
    kind, _, arg = spec.partition(":")
    if kind == "hf-daily" and not arg:
        return "hf-daily", None
    if kind == "arxiv":
        return "arxiv", arg or None
    raise ValueError(f"unknown source {spec!r}: use hf-daily or arxiv:SET (e.g. arxiv:cs:cs:CL)")


@dataclass
class TickReport:
    started: str
    steps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """For the log: one line per step (a multi-line summary indented under it), errors last."""
        out = [f"tick at {self.started}"]
        for prefix, texts in (("", self.steps), ("error: ", self.errors)):
            for text in texts:
                first, *more = text.splitlines() or [""]
                out += ["  " + prefix + first] + ["    " + line for line in more]
        return out


class Worker:
    def __init__(self, config: Config, *, sources: list[str] = (), send: bool = True, index: bool = True,
                 stop: threading.Event | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.sources = [parse_source(s) for s in sources]
        self.send, self.index = send, index
        self.stop = stop or threading.Event()
        self.now = now or (lambda: datetime.now(timezone.utc))

    # --- one tick
    def tick(self) -> TickReport:
        from papertide.store import open_store

        report = TickReport(self.now().strftime("%Y-%m-%dT%H:%M:%SZ"))
        with open_store(self.config) as store:
            for kind, arg in self.sources:
                self._step(report, f"harvest {kind}{':' + arg if arg else ''}",
                           lambda kind=kind, arg=arg: self._harvest(store, kind, arg))  # fmt: skip
            if self.index:
                self._step(report, "index", lambda: self._index(store))
            self._step(report, "submissions", lambda: self._submissions(store))
            if self.send:
                self._step(report, "digests", lambda: self._digests(store))
        return report

    def _step(self, report: TickReport, name: str, fn: Callable[[], str]) -> None:
        if self.stop.is_set():
            return
        try:
            report.steps.append(f"{name}: {fn()}")
        except (PapertideError, OSError, ValueError) as e:
            report.errors.append(f"{name}: {e}")
            log.warning("%s failed: %s", name, e)

    def _harvest(self, store, kind: str, arg: str | None) -> str:
        from papertide import ingest

        if kind == "hf-daily":
            today = self.now().date()
            reports = [self._hf_day(store, day) for day in (today - timedelta(days=1), today)]
        else:
            from papertide.sources import arxiv_oai

            from_ = None
            if store.get_checkpoint(arxiv_oai.checkpoint_name(arg, "arXiv")) is None:
                from_ = (self.now().date() - timedelta(days=FIRST_HARVEST_DAYS)).isoformat()
            reports = [ingest.ingest_arxiv(store, self.config, set_spec=arg, from_=from_)]
        summary = "; ".join(r.summary() for r in reports)
        errors = [e for r in reports for e in r.errors]  # ingest keeps what came before a failure
        if errors:
            raise SourceError(f"{'; '.join(errors)} (kept: {summary})")
        return summary

    def _hf_day(self, store, day: date):
        from papertide.ingest import ingest_hf_daily

        return ingest_hf_daily(store, self.config, day)

    def _index(self, store) -> str:
        from papertide.index import update_index

        return update_index(store, self.config).summary()

    def _submissions(self, store) -> str:
        from papertide.submissions import complete_pending_submissions

        if not store.community.pending_submissions(1):
            return "none pending"
        done = complete_pending_submissions(store, self.config)
        return f"{done} completed, {len(store.community.pending_submissions(10_000))} still pending"

    def _digests(self, store) -> str:
        if not self.config.smtp_url:
            return "skipped: no SMTP server configured (PAPERTIDE_SMTP_URL)"
        from papertide.digest_send import DigestRun
        from papertide.index import IndexMissingError, SearchIndex
        from papertide.mailer import Mailer, SmtpSettings
        from papertide.web.auth import load_or_create_secret

        try:
            index = SearchIndex.open(self.config, store)
        except IndexMissingError:
            index = None
        settings = SmtpSettings.from_url(self.config.smtp_url)
        with Mailer(settings, rate=self.config.mail_rate) as mailer:
            run = DigestRun(store, index, self.config, load_or_create_secret(self.config.home), mailer=mailer,
                            now=self.now(), stop=self.stop)  # fmt: skip
            return run.run().summary()

    # --- the loop
    def run(self, interval: float, *, once: bool = False, on_tick: Callable[[TickReport], None] = lambda r: None) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            on_tick(self.tick())
            if once:
                return
            self.stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def handle_signals(self) -> None:
        """SIGTERM and SIGINT set the stop flag (main thread only)."""
        def stop(signum, frame) -> None:  # noqa: ARG001
            log.warning("stopping after the current step (signal %d)", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def today_utc() -> date:
    return datetime.now(timezone.utc).date()
