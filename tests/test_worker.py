"""The worker: one tick harvests Hugging Face daily papers from a loopback server (the
endpoint's real JSON), indexes them, completes a pending submission from a loopback arXiv
API and mails the digest to a real SMTP server; a source that is down is reported and
the other steps still run; ``papertide worker`` stops cleanly on SIGTERM while it sleeps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from browser_server import feed_of, free_dead_url
from conftest import cli_run

from papertide.config import replace
from papertide.ingest import ingest_files
from papertide.store import open_store
from papertide.worker import Worker, parse_source

HF_PATH, ARXIV_PATH = "/api/daily_papers", "/api/query"
HF_DAY = Path(__file__).parent / "fixtures" / "hf_daily" / "day_2024-01-31.json"
HF_IDS = ["2401.18059", "2401.17377", "2402.14776"]  # in the recorded day, in its order
SUBMITTED = "hep-th/9901001"  # the one entry of the recorded arXiv API feed the loopback serves
NOW = datetime.now(timezone.utc).replace(microsecond=0)
TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)
READER = "reader@example.org"
PAPERS = [
    {"id": "2411.00001", "title": "Sparse attention at scale", "authors": ["Ada Lovelace"], "categories": ["cs.LG"],
     "submitted": "2024-11-01", "abstract": "We make attention sparse. It stays accurate."},
    {"id": "2411.00002", "title": "Retrieval for long documents", "authors": ["Grace Hopper"], "categories": ["cs.IR"],
     "submitted": "2024-11-01", "abstract": "Long documents are split and retrieved. Answers improve."},
]


def hf_day(day: date) -> bytes:
    """The recorded HF day as the endpoint answers for ``day``: its papers featured on that day
    (one carries no ``submittedOnDailyAt``, as in the recording: the requested day stands)."""
    items = json.loads(HF_DAY.read_text(encoding="utf-8"))
    for item in items:
        if item["paper"].get("submittedOnDailyAt"):
            item["paper"]["submittedOnDailyAt"] = f"{day.isoformat()}T07:30:00.000Z"
    return json.dumps(items).encode()


def serve_hf(server, *bodies: bytes, status: int = 200) -> None:
    for body in bodies:
        server.queue(HF_PATH, body, status=status, headers={"Content-Type": "application/json; charset=utf-8"})


@pytest.fixture
def cfg(config, server, sink):
    """Settings pointing every source at the loopback server and mail at the sink."""
    return replace(config, hf_url=server.url + HF_PATH, arxiv_api_url=server.url + ARXIV_PATH, smtp_url=sink.url(),
                   mail_rate=0.0)  # fmt: skip


@pytest.fixture
def with_models(cfg, embedder, embedder_home):
    """``cfg`` whose home holds the embedder's derived graphs (built once a run), so the index
    step embeds the few new papers without building them again."""
    shutil.copytree(embedder_home / "models", cfg.home / "models")
    return cfg


def subscribe(cfg, email: str = READER) -> None:
    with open_store(cfg) as store:
        store.mailing.confirm(store.mailing.subscribe(email, every="day", trending=True).id)


def step(report, name: str) -> str:
    [line] = [s for s in report.steps if s.startswith(name + ": ")]
    return line.removeprefix(name + ": ")


# ------------------------------------------------------------------ one tick


def test_a_tick_harvests_lists_indexes_completes_submissions_and_sends_the_digest(with_models, server, sink):
    cfg = with_models
    serve_hf(server, hf_day(YESTERDAY), b"[]")  # yesterday's papers; nothing featured yet today
    server.always(ARXIV_PATH, feed_of("id_list.xml", SUBMITTED), headers={"Content-Type": "application/atom+xml"})
    subscribe(cfg)
    with open_store(cfg) as store:
        com = store.community
        ann = com.create_user("ann", "", "argon2-hash-for-tests")
        com.add_submission(ann.id, SUBMITTED, paper_id=SUBMITTED, status="pending", message="arXiv was unreachable")

    report = Worker(cfg, sources=["hf-daily"], now=lambda: NOW).tick()

    assert report.errors == []
    assert [s.split(":")[0] for s in report.steps] == ["harvest hf-daily", "index", "submissions", "digests"]
    assert step(report, "harvest hf-daily") == ("3 added, 0 updated, 0 unchanged, 3 signals, 0 rejected; "
                                                "0 added, 0 updated, 0 unchanged, 0 rejected")  # fmt: skip
    assert [(r.path, r.query["date"]) for r in server.requests if r.path == HF_PATH] == [
        (HF_PATH, YESTERDAY.isoformat()), (HF_PATH, TODAY.isoformat())]
    assert step(report, "index").startswith("3 papers indexed")
    assert step(report, "submissions") == "1 completed, 0 still pending"
    assert step(report, "digests").startswith("1 sent, 0 empty, 0 deferred, 0 failed")
    with open_store(cfg) as store:
        listing = store.community.listing(HF_IDS + [SUBMITTED])
        [record] = store.mailing.send_log(period=YESTERDAY.isoformat())
    assert {pid: day for pid, (day, _) in listing.items()} == {
        **dict.fromkeys(HF_IDS, YESTERDAY.isoformat()), SUBMITTED: TODAY.isoformat()}  # HF's day; the submission's
    [mail] = [r.message for r in sink.messages]
    assert mail["To"] == READER and mail["Message-ID"] == record.message_id and record.state == "sent"
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert sorted(pid for pid in HF_IDS if f"/paper/{pid}\"" in html) == sorted(HF_IDS)
    assert f"/paper/{SUBMITTED}" not in html  # listed today: tomorrow's digest

    serve_hf(server, hf_day(YESTERDAY), b"[]")
    again = Worker(cfg, sources=["hf-daily"], now=lambda: NOW).tick()
    assert again.errors == [] and step(again, "harvest hf-daily").startswith("0 added, 0 updated, 3 unchanged")
    assert step(again, "index").startswith("4 papers indexed")  # the completed submission joins the index
    assert step(again, "submissions") == "none pending"
    assert step(again, "digests").startswith("0 sent, 0 empty")
    assert len(sink.messages) == 1


def test_a_source_that_is_down_is_reported_and_the_other_steps_still_run(with_models, sink, tmp_path):
    cfg = replace(with_models, hf_url=free_dead_url(), retries=1)
    papers = tmp_path / "papers.jsonl"
    papers.write_text("".join(json.dumps(p) + "\n" for p in PAPERS))
    with open_store(cfg) as store:
        ingest_files(store, [papers])
        for p in PAPERS:
            store.community.list_paper(p["id"], YESTERDAY.isoformat())
    subscribe(cfg)

    report = Worker(cfg, sources=["hf-daily"], now=lambda: NOW).tick()

    [error] = report.errors
    assert error.startswith("harvest hf-daily: ") and "giving up after 2 attempts" in error, error
    assert "(kept: 0 added" in error  # nothing came, nothing is lost
    assert [s.split(":")[0] for s in report.steps] == ["index", "submissions", "digests"]
    assert step(report, "index").startswith("2 papers indexed")
    assert step(report, "digests").startswith("1 sent")
    assert [r.message["To"] for r in sink.messages] == [READER]
    assert report.lines()[-1] == f"  error: {error}"


def test_a_source_failing_part_way_is_reported_and_what_came_first_is_kept(cfg, server):
    serve_hf(server, hf_day(YESTERDAY))
    server.queue(HF_PATH, json.dumps({"error": "Invalid date"}), status=400)

    report = Worker(cfg, sources=["hf-daily"], send=False, index=False, now=lambda: NOW).tick()

    [error] = report.errors
    assert "HTTP 400: Invalid date" in error and "(kept: 3 added, 0 updated, 0 unchanged, 3 signals" in error
    with open_store(cfg) as store:
        assert len(store.get_many(HF_IDS)) == 3
        assert {day for day, _ in store.community.listing(HF_IDS).values()} == {YESTERDAY.isoformat()}


def test_without_smtp_the_digest_step_says_so(cfg):
    report = Worker(replace(cfg, smtp_url=""), index=False, now=lambda: NOW).tick()
    assert report.errors == []
    assert step(report, "digests") == "skipped: no SMTP server configured (PAPERTIDE_SMTP_URL)"


def test_a_multi_line_step_summary_stays_under_its_step():
    from papertide.worker import TickReport

    report = TickReport("2026-11-26T06:00:00Z", steps=["index: 3 papers\nn-gram: 3 papers"], errors=["x: down"])
    assert report.lines() == ["tick at 2026-11-26T06:00:00Z", "  index: 3 papers", "    n-gram: 3 papers",
                              "  error: x: down"]  # fmt: skip


# --------------------------------------------------------------- the loop


def test_the_loop_sleeps_between_ticks_and_a_stop_request_ends_the_sleep(cfg):
    ticks: list[float] = []
    worker = Worker(replace(cfg, smtp_url=""), index=False)
    thread = threading.Thread(target=worker.run, args=(3600,), kwargs={"on_tick": lambda r: ticks.append(1)})
    thread.start()
    deadline = time.monotonic() + 10
    while not ticks and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # asleep now, for an hour
    asked = time.monotonic()
    worker.stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - asked < 1
    assert ticks == [1]


def test_once_runs_one_tick_and_returns(cfg):
    reports = []
    Worker(replace(cfg, smtp_url=""), index=False).run(3600, once=True, on_tick=reports.append)
    assert len(reports) == 1 and step(reports[0], "submissions") == "none pending"


@pytest.mark.slow  # a papertide process starts and catches up an (empty) index: ~3 s
def test_papertide_worker_stops_cleanly_on_sigterm_while_sleeping(with_models, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env["PAPERTIDE_HOME"] = str(with_models.home)
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "papertide", "worker", "--every", "3600", "--no-send"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "submissions: none pending" not in log.read_text():  # the tick is over: it sleeps for an hour
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0 and time.monotonic() - asked < 5, log.read_text()
    text = log.read_text()
    assert text.count("tick at ") == 1 and "stopping after the current step (signal 15)" in text
    assert text.rstrip().endswith("worker: stopped")


# ------------------------------------------------------------------ usage


@pytest.mark.parametrize("spec", ["rss", "hf-daily:today", "arxive:cs", ""])
def test_a_bad_harvest_spec_is_a_usage_error(config, spec):
    result = cli_run("worker", "--once", "--harvest", spec, code=2)
    assert "Invalid value for --harvest" in result.output and f"unknown source {spec!r}" in result.output
    assert "use hf-daily or arxiv:SET" in result.output
    with pytest.raises(ValueError, match="unknown source"):
        Worker(config, sources=[spec])


def test_good_harvest_specs():
    assert parse_source("hf-daily") == ("hf-daily", None)
    assert parse_source("arxiv:cs:cs:CL") == ("arxiv", "cs:cs:CL")
    assert parse_source("arxiv") == ("arxiv", None)


def test_an_interval_outside_its_range_is_a_usage_error():
    result = cli_run("worker", "--every", "0", code=2)
    assert "Invalid value for '--every'" in result.output
