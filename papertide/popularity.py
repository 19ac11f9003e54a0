"""Trending papers: a time-decayed score over the community's upvotes.

A paper is trending when people are upvoting it *now*. Every upvote counts, but its
weight halves every half-life since it was cast, so a burst of fresh votes can beat a
larger pile of old ones, and a paper drifts down the list by itself when the votes stop:

    score(paper) = sum over its votes v of 2 ** (-age(v) / half_life),   age(v) = now - time(v)

Each trending window is a time scale: ``day``, ``week`` or ``month`` (1, 7, 30 days).
Its half-life is a quarter of the window (6 hours, 42 hours, 7.5 days), so a vote one
window old weighs 1/16 of a fresh one; votes older than two windows (weight below
1/256) are not read at all (:func:`lookback_start`), which bounds the work of a ranking.
A vote cast "in the future" (a clock ahead of ours) counts as fresh, never more.

Ties (equal scores, e.g. the same number of votes cast at the same instants) go to the
paper with more votes in the look-back, then the one with the latest vote, then by
paper id, so the order is total and stable.

The functions here are pure: they take vote times and ``now`` and return numbers; the
web layer reads the times from the store (``community.vote_times``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone

WINDOWS: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
HALF_LIFE_SHARE = 0.25  # half-life = a quarter of the window
LOOKBACK_WINDOWS = 2  # votes older than this many windows are ignored (weight < 2**-8)


def _check_window(window: str) -> timedelta:
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}; not {window!r}")
    return WINDOWS[window]


def half_life(window: str) -> timedelta:
    """The half-life of a vote's weight in a trending window."""
    return _check_window(window) * HALF_LIFE_SHARE


def lookback_start(now: datetime, window: str) -> datetime:
    """The oldest vote time that still counts in ``window``."""
    return as_utc(now) - _check_window(window) * LOOKBACK_WINDOWS


def as_utc(when: datetime | date | str) -> datetime:
    """An aware UTC datetime from an ISO string (``…Z`` or a bare day), a date or a datetime."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when.strip())
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day)
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def vote_weight(cast: datetime | str, now: datetime, half: timedelta) -> float:
    """``2 ** (-age / half)``; a vote from the future counts as fresh (weight 1)."""
    age = (as_utc(now) - as_utc(cast)).total_seconds()
    return 2.0 ** (-max(age, 0.0) / half.total_seconds())


def decayed_score(times: Iterable[datetime | str], now: datetime, half: timedelta) -> float:
    """The sum of the weights of the votes cast at ``times``."""
    return sum(vote_weight(t, now, half) for t in times)


def rank_trending(vote_times: Mapping[str, Iterable[datetime | str]], now: datetime,
                  window: str = "week") -> list[tuple[str, float]]:  # fmt: skip
    """Papers with at least one vote in the look-back, best first, with their scores.

    ``vote_times`` maps paper ids to the times of their votes (older ones than
    :func:`lookback_start` are skipped here, so a caller may pass more).
    """
    half = half_life(window)
    start = lookback_start(now, window)
    rows = []
    for pid, times in vote_times.items():
        recent = [t for t in map(as_utc, times) if t >= start]
        if recent:
            rows.append((pid, decayed_score(recent, now, half), len(recent), max(recent)))
    rows.sort(key=lambda r: (-r[1], -r[2], -r[3].timestamp(), r[0]))
    return [(pid, score) for pid, score, _, _ in rows]
