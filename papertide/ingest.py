"""The one way papers enter the store: feed a source's items to it in batches.

Items are grouped into batches written in one transaction each; a checkpoint from
a source closes a batch, so it is committed together with the records it covers.
Bad records are collected (with where and why) and the good ones still go in. If
the source fails part-way (network dead, truncated file), what was read before the
failure is still written and the report carries the error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from papertide.errors import PapertideError
from papertide.paper import Paper
from papertide.sources import Checkpoint, Deleted, Item, Rejected, Signal
from papertide.store import Batch, Store

MAX_KEPT_REJECTS = 10_000  # beyond this only the count grows


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    signals: int = 0
    rejected: int = 0
    rejects: list[Rejected] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # sources that failed part-way
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and not self.errors and not self.interrupted

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.deleted:
            parts.append(f"{self.deleted} deleted")
        if self.signals:
            parts.append(f"{self.signals} signals")
        parts.append(f"{self.rejected} rejected")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "signals": self.signals,
            "rejected": self.rejected,
            "rejects": [{"where": r.where, "reason": r.reason} for r in self.rejects],
            "errors": self.errors,
            "interrupted": self.interrupted,
        }

    def merge(self, other: "IngestReport") -> None:
        for name in ("added", "updated", "unchanged", "deleted", "signals", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejects.extend(other.rejects[: MAX_KEPT_REJECTS - len(self.rejects)])
        self.errors.extend(other.errors)
        self.interrupted = self.interrupted or other.interrupted


def ingest(
    store: Store,
    items: Iterable[Item],
    *,
    batch_size: int = 2000,
    on_progress: Callable[[int], None] | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
) -> IngestReport:
    """Write ``items`` to ``store``; return counts of what happened.

    ``on_progress(n)`` is called after each batch with the number of items it held;
    ``on_reject(r)`` as soon as a bad record is met. ``KeyboardInterrupt`` drops only
    the batch in progress (nothing half-written) and is re-raised.
    """
    report = IngestReport()
    batch = Batch()
    pending = 0  # items read since the last flush, for progress

    def reject(r: Rejected) -> None:
        report.rejected += 1
        if len(report.rejects) < MAX_KEPT_REJECTS:
            report.rejects.append(r)
        if on_reject:
            on_reject(r)

    def flush() -> None:
        nonlocal batch, pending
        if len(batch) or batch.checkpoint is not None:
            res = store.write(batch)
            report.added += len(res.added)
            report.updated += len(res.updated)
            report.unchanged += res.unchanged
            report.deleted += len(res.deleted)
            report.signals += res.signals
            for pid in res.orphans:
                reject(Rejected(pid, "upvote signal for a paper that is not in the store"))
        if on_progress and pending:
            on_progress(pending)
        batch, pending = Batch(), 0

    try:
        for item in items:
            pending += 1
            if isinstance(item, Paper):
                batch.papers.append(item)
            elif isinstance(item, Signal):
                batch.signals.append(item)
            elif isinstance(item, Deleted):
                batch.deleted.append(item.id)
            elif isinstance(item, Rejected):
                reject(item)
            elif isinstance(item, Checkpoint):
                batch.checkpoint = item
                flush()
                continue
            else:
                raise TypeError(f"a source yielded {type(item).__name__}, not an item")
            if len(batch) >= batch_size:
                flush()
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    except PapertideError as e:
        report.errors.append(str(e))  # what was read before the failure is still written below
    flush()
    return report


# ----------------------------------------------------------------- per source


def demo_corpus_path():
    """The bundled demo corpus: the 43 papers of the page papertide grew from."""
    from importlib.resources import files

    return files("papertide") / "data" / "demo_papers.jsonl"


def ingest_files(store: Store, paths: Iterable, *, format: str | None = None, dataset: str | None = None,
                 **kw) -> IngestReport:  # fmt: skip
    """Ingest files one after another; a file that cannot be read does not stop the others."""
    from papertide.sources import files

    report = IngestReport()
    for path in paths:
        report.merge(ingest(store, files.read(path, format, dataset=dataset), **kw))
    return report


def ingest_demo(store: Store, **kw) -> IngestReport:
    from importlib.resources import as_file

    with as_file(demo_corpus_path()) as path:
        return ingest_files(store, [path], format="jsonl", **kw)


def ingest_arxiv(store: Store, config, *, set_spec: str | None, prefix: str = "arXiv", from_: str | None = None,
                 until: str | None = None, restart: bool = False, **kw) -> IngestReport:  # fmt: skip
    """Harvest arXiv over OAI-PMH, resuming an interrupted harvest of the same set.

    Without ``from_``/``until``: an unfinished harvest of the set is resumed where it
    stopped; after a finished one, only records changed since it are asked for.
    """
    from papertide.sources import arxiv_oai
    from papertide.sources.http import Fetcher

    name = arxiv_oai.checkpoint_name(set_spec, prefix)
    state = None if restart else store.get_checkpoint(name)
    resume = None
    if state and from_ is None and until is None:
        if not state.get("done"):
            resume, from_, until = state, state.get("from"), state.get("until")
        elif state.get("response_date"):
            from_ = state["response_date"][:10]
    elif state and not state.get("done"):
        resume = state  # used by the harvester only if from/until match
    with Fetcher(config, interval=config.arxiv_interval) as fetcher:
        items = arxiv_oai.harvest(
            fetcher, config.oai_url, set_spec=set_spec, prefix=prefix, from_=from_, until=until, resume=resume
        )
        return ingest(store, items, **kw)


def ingest_arxiv_query(store: Store, config, query: str, *, max_results: int = 100, sort_by: str = "relevance",
                       sort_order: str = "descending", **kw) -> IngestReport:  # fmt: skip
    from papertide.sources import arxiv_api
    from papertide.sources.http import Fetcher

    with Fetcher(config, interval=config.arxiv_interval) as fetcher:
        items = arxiv_api.query(
            fetcher, config.arxiv_api_url, search_query=query, max_results=max_results,
            sort_by=sort_by, sort_order=sort_order,
        )  # fmt: skip
        return ingest(store, items, **kw)


def ingest_hf_daily(store: Store, config, day, **kw) -> IngestReport:
    """One day of Hugging Face daily papers, each *listed* on the day HF featured it: the
    listing puts it on that day's page and in that day's digests (:mod:`papertide.daily`).
    The first listing of a paper wins, so seeing it again another day leaves it be."""
    from papertide.sources import Signal, hf_daily
    from papertide.sources.http import Fetcher

    featured: dict[str, str] = {}

    def noting(items):
        for item in items:
            if isinstance(item, Signal) and item.source == hf_daily.SIGNAL_SOURCE:
                featured.setdefault(item.paper_id, item.day or day.isoformat())
            yield item

    with Fetcher(config, interval=config.hf_interval) as fetcher:
        report = ingest(store, noting(hf_daily.daily(fetcher, config.hf_url, day)), **kw)
    stored = store.get_many(list(featured))
    for pid, listed_on in featured.items():
        if pid in stored:
            store.community.list_paper(pid, listed_on)
    return report
