"""Which papers belong to a day, week or month: the rule the daily page and the digests share.

A paper belongs to the day it was *listed* on papertide's daily page (by the Hugging Face
daily import, a submission or the demo). A period in which nothing was listed falls back
to the papers *submitted* in it, found through the search index's date facts.
"""

from __future__ import annotations

from datetime import date

from papertide.query import Query
from papertide.rank import search


def listed_ids(community, first: date, last: date, *, limit: int) -> list[str]:
    """Papers listed on the days ``first``..``last``, first listing first, hidden ones left out."""
    listed = community.listed(first.isoformat(), last.isoformat())
    return list(dict.fromkeys(pid for pid, _, _ in listed))[:limit]


def submitted_ids(index, first: date, last: date, *, limit: int) -> list[str]:
    """Papers submitted on the days ``first``..``last``, newest first."""
    ids, _ = search(index, Query(since=first, until=last), k=limit)
    return ids


def period_papers(store, index, first: date, last: date, *, limit: int) -> list[str]:
    """The period's listed papers, or when none were listed its submitted ones (not hidden)."""
    ids = listed_ids(store.community, first, last, limit=limit)
    if ids:
        return ids
    if index is None:
        return []
    hidden = store.community.hidden_papers()
    return [i for i in submitted_ids(index, first, last, limit=limit) if i not in hidden]
