"""The demo corpus as the daily papers of the page it came from.

The 43 demo papers carry no dates, so no day's page would show them by submission
date. They are the daily-papers page dated "Mar 17" (DESIGN.md), so they are listed on
papertide's daily page of 2024-03-17, in the page's order, as nobody's submission.
Listing is idempotent (the first listing wins), so running this again changes nothing,
and a demo paper already listed elsewhere keeps its day.
"""

from __future__ import annotations

from importlib.resources import as_file

from papertide.paper import Paper
from papertide.store import Store

DEMO_DAY = "2024-03-17"


def demo_paper_ids() -> list[str]:
    """The ids the demo corpus gets when ingested, in the page's order."""
    from papertide.ingest import demo_corpus_path
    from papertide.sources.files import read

    with as_file(demo_corpus_path()) as path:
        return [item.id for item in read(path, "jsonl") if isinstance(item, Paper)]


def list_demo_papers(store: Store, day: str = DEMO_DAY) -> int:
    """List the stored demo papers that are not listed yet on ``day``; the number listed."""
    ids = demo_paper_ids()
    present = store.get_many(ids)
    community = store.community
    already = community.listing(ids)
    todo = [pid for pid in ids if pid in present and pid not in already]
    for pid in todo:
        community.list_paper(pid, day)
    return len(todo)
