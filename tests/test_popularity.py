"""The trending formula: weights, and the orderings it promises (see papertide/popularity.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from papertide.popularity import (
    as_utc,
    decayed_score,
    half_life,
    lookback_start,
    rank_trending,
    vote_weight,
)

NOW = datetime(2024, 3, 17, 12, 0, tzinfo=timezone.utc)


def ago(**kw) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_half_lives_and_lookback():
    assert half_life("day") == timedelta(hours=6)
    assert half_life("week") == timedelta(hours=42)
    assert half_life("month") == timedelta(days=7.5)
    assert lookback_start(NOW, "week") == NOW - timedelta(days=14)
    with pytest.raises(ValueError, match="day, week, month"):
        half_life("year")


def test_a_vote_halves_every_half_life():
    half = half_life("day")
    assert vote_weight(ago(hours=0), NOW, half) == 1.0
    assert vote_weight(ago(hours=6), NOW, half) == pytest.approx(0.5)
    assert vote_weight(ago(hours=24), NOW, half) == pytest.approx(1 / 16)
    assert vote_weight(ago(hours=-5), NOW, half) == 1.0  # a clock ahead of ours: fresh, never more
    assert decayed_score([ago(hours=6)] * 4, NOW, half) == pytest.approx(2.0)


def test_timestamps_in_every_form_the_store_gives():
    assert as_utc("2024-03-17") == datetime(2024, 3, 17, tzinfo=timezone.utc)
    assert as_utc("2024-03-17T09:30:00.000000Z") == datetime(2024, 3, 17, 9, 30, tzinfo=timezone.utc)
    assert as_utc("2024-03-17T10:30:00+01:00") == datetime(2024, 3, 17, 9, 30, tzinfo=timezone.utc)


def test_fresh_few_votes_beat_old_many_in_a_short_window_but_not_a_long_one():
    votes = {"fresh": [ago(hours=1)] * 3, "old": [ago(days=6)] * 20}
    assert [p for p, _ in rank_trending(votes, NOW, "week")] == ["fresh", "old"]  # 2.95 vs 1.86
    assert [p for p, _ in rank_trending(votes, NOW, "month")] == ["old", "fresh"]  # 11.5 vs 3.0
    # in the day window the six-day-old votes are past the look-back: not trending at all
    assert [p for p, _ in rank_trending(votes, NOW, "day")] == ["fresh"]


def test_more_votes_at_the_same_time_rank_higher():
    votes = {"a": [ago(hours=2)] * 2, "b": [ago(hours=2)] * 5, "c": [ago(hours=2)]}
    assert [p for p, _ in rank_trending(votes, NOW, "day")] == ["b", "a", "c"]


def test_ties_are_broken_by_vote_count_then_latest_vote_then_id():
    half = half_life("day")
    # one vote now weighs exactly as much as two votes one half-life ago
    assert decayed_score([ago(hours=0)], NOW, half) == decayed_score([ago(hours=6)] * 2, NOW, half)
    votes = {"one-fresh": [ago(hours=0)], "two-older": [ago(hours=6)] * 2, "z": [ago(hours=1)], "y": [ago(hours=1)]}
    ranked = [p for p, _ in rank_trending(votes, NOW, "day")]
    assert ranked == ["two-older", "one-fresh", "y", "z"]


def test_papers_without_recent_votes_are_left_out_and_order_is_stable():
    votes = {"none": [], "ancient": [ago(days=90)], "x": [ago(days=1)]}
    ranked = rank_trending(votes, NOW, "month")
    assert [p for p, _ in ranked] == ["x"]
    assert ranked == rank_trending(dict(reversed(list(votes.items()))), NOW, "month")
