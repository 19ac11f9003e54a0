"""Trending phrases, series and charts against a dated synthetic corpus and brute counts."""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from datetime import date

import numpy as np
import pytest

from papertide import trends
from papertide.filters import day_number
from papertide.text.ngram import Doc, NgramIndex, build_segment, doc_tokens, ngram_tokens
from papertide.trends import EDGE_STOP, Trend, period_label, periods, series, trending

NOW = day_number("2024-06-30")


def _filler(rng: np.random.Generator) -> list[str]:
    letters = list("bcdfghklmnprstvz")
    vowels = list("aeiou")
    words = {"".join(rng.choice(letters) + rng.choice(vowels) for _ in range(3)) for _ in range(400)}
    return sorted(words)[:300]


def _text(rng: np.random.Generator, filler: list[str], n: int, inserts: list[str]) -> str:
    words = list(rng.choice(filler, size=n))
    for phrase in inserts:
        at = int(rng.integers(0, len(words) + 1))
        words[at:at] = [phrase]
    return " ".join(words) + "."


def corpus(seed: int = 0, first: int = NOW - 150, last: int = NOW, per_day: int = 8, prefix: str = "p",
           dead_phrase: bool = False) -> list[Doc]:  # fmt: skip
    """Papers every day: "state space model" rises in the last week, "neural network" stays flat,
    "recurrent encoder" falls; "of the" rises too but is a stop-word phrase."""
    rng = np.random.default_rng(seed)
    filler = _filler(np.random.default_rng(99))
    docs = []
    for day in range(first, last + 1):
        recent = day > NOW - 7
        for j in range(per_day):
            inserts = []
            if rng.random() < (0.6 if recent else 0.02):
                inserts.append("state space model")
            if rng.random() < 0.3:
                inserts.append("neural network")
            if rng.random() < (0.02 if recent else 0.3):
                inserts.append("recurrent encoder")
            if recent:
                inserts += ["of the"] * 3
            if dead_phrase and recent:
                inserts.append("zombie phrase")
            title = _text(rng, filler, 6, [])
            docs.append(Doc(f"{prefix}{day}-{j}", day, title, _text(rng, filler, 50, inserts)))
    return docs


def segment(tmp_path, name: str, docs: list[Doc]) -> NgramIndex:
    build_segment(tmp_path / name, docs)
    return NgramIndex(tmp_path / name)


def brute(docs: list[Doc], phrase: str, first: int, last: int) -> tuple[int, int]:
    """(occurrences, distinct papers) of a phrase among docs submitted in [first, last]."""
    want = ngram_tokens(phrase)
    m, occ, papers = len(want), 0, 0
    for d in docs:
        if first <= d.day <= last:
            toks = doc_tokens(d.title, d.abstract)
            c = sum(toks[i:i + m] == want for i in range(len(toks) - m + 1))
            occ, papers = occ + c, papers + (c > 0)
    return occ, papers


@pytest.fixture(scope="module")
def main_docs() -> list[Doc]:
    return corpus()


@pytest.fixture(scope="module")
def main_segment(tmp_path_factory, main_docs) -> NgramIndex:
    return segment(tmp_path_factory.mktemp("trends"), "main", main_docs)


def test_the_rising_phrase_tops_the_week_and_month(main_segment, main_docs):
    segs = [(main_segment, np.ones(len(main_segment), dtype=bool))]
    week = trending(segs, "week")
    assert week and week[0].phrase == "state space model"
    phrases = [t.phrase for t in week]
    assert not {"neural network", "recurrent encoder", "of the", "of the state"} & set(phrases)
    assert "state space" not in phrases and "space model" not in phrases  # nested, same occurrences
    (r0, r1), (b0, b1) = periods("week", NOW)
    top = week[0]
    assert (top.recent, top.recent_papers) == brute(main_docs, top.phrase, r0, r1)
    assert top.baseline == brute(main_docs, top.phrase, b0, b1)[0]
    assert top.ratio > 5 and top.score > 1
    assert trending(segs, "month")[0].phrase == "state space model"


def ngram_counts(docs: list[Doc], first: int, last: int) -> tuple[Counter, Counter]:
    """Occurrences and distinct papers of every 2- to 4-gram (no separator inside) in [first, last]."""
    occ: Counter = Counter()
    papers: Counter = Counter()
    for d in docs:
        if first <= d.day <= last:
            toks = doc_tokens(d.title, d.abstract)
            grams = [" ".join(toks[i:i + m]) for m in (2, 3, 4) for i in range(len(toks) - m + 1)
                     if all(toks[i:i + m])]  # fmt: skip
            occ.update(grams)
            papers.update(set(grams))
    return occ, papers


def test_counts_of_every_listed_phrase_match_a_brute_count(main_segment, main_docs):
    segs = [(main_segment, np.ones(len(main_segment), dtype=bool))]
    found = trending(segs, "month", k=500, min_count=2, min_papers=1)
    assert len(found) > 3
    (r0, r1), (b0, b1) = periods("month", NOW)
    recent, papers = ngram_counts(main_docs, r0, r1)
    baseline, _ = ngram_counts(main_docs, b0, b1)
    for t in found:
        assert (t.recent, t.recent_papers, t.baseline) == (recent[t.phrase], papers[t.phrase], baseline[t.phrase])
        words = t.phrase.split()
        assert words[0] not in EDGE_STOP and words[-1] not in EDGE_STOP, t
        assert all(w.isalnum() for w in words), t  # the corpus's only marks are full stops
    assert [t.score for t in found] == sorted((t.score for t in found), reverse=True)


def test_noise_does_not_win(tmp_path, main_docs):
    docs = list(main_docs)
    docs += [Doc(f"n{i}", NOW, "quantum banana", "quantum banana peel") for i in range(2)]  # 4 times, 2 papers
    ix = segment(tmp_path, "s", docs)
    segs = [(ix, np.ones(len(ix), dtype=bool))]
    assert "quantum banana" not in [t.phrase for t in trending(segs, "week")]  # below the minimum counts
    loose = trending(segs, "week", min_count=2, min_papers=1)
    assert loose[0].phrase == "state space model"
    noise = next(t for t in loose if t.phrase == "quantum banana")
    assert noise.recent == 4 and noise.baseline == 0 and noise.score < loose[0].score


def test_dead_docs_and_the_delta_segment(tmp_path, main_docs):
    zombies = corpus(seed=1, first=NOW - 6, per_day=10, prefix="z", dead_phrase=True)
    main = segment(tmp_path, "main", main_docs + zombies)
    live = np.array([not d.key.startswith("z") for d in main_docs + zombies])
    fresh = [Doc(f"d{i}", NOW - i % 3, "mambaformer layers", "we stack mambaformer layers.") for i in range(12)]
    delta = segment(tmp_path, "delta", fresh)
    segs = [(main, live), (delta, np.ones(len(delta), dtype=bool))]
    found = {t.phrase: t for t in trending(segs, "week")}
    assert "zombie phrase" not in found
    assert found["state space model"].recent == brute(main_docs, "state space model", NOW - 6, NOW)[0]
    assert found["mambaformer layers"].recent == 24 and found["mambaformer layers"].recent_papers == 12
    everything = {t.phrase for t in trending([(main, np.ones(len(main), dtype=bool))], "week")}
    assert "zombie phrase" in everything


def test_nested_variants_with_nearly_the_same_count_are_suppressed():
    ranked = [((1, 2, 3), 10), ((1, 2), 11), ((2, 3), 30), ((4, 5), 5), ((1, 2, 3, 4), 9), ((5, 6), 5)]
    assert trends._suppress(iter(ranked), 10) == [0, 2, 3, 5]  # (1, 2) and (1, 2, 3, 4) are (1, 2, 3)
    assert trends._suppress(iter(ranked), 2) == [0, 2]


class SlicingIndex(NgramIndex):
    """A segment with the contiguous stream reader trends uses when a segment has one."""

    calls = 0

    def tokens_between(self, lo: int, hi: int) -> np.ndarray:
        SlicingIndex.calls += 1
        return self.tokens_at(np.arange(lo, hi, dtype=np.int64))


def test_contiguous_reads_give_the_same_trends(main_segment, main_docs, monkeypatch):
    live = np.ones(len(main_segment), dtype=bool)
    live[::5] = False  # spans broken by dead papers
    expected = trending([(main_segment, live)], "month", k=50, min_count=2)
    sliced = SlicingIndex(main_segment.directory)
    monkeypatch.setattr(trends, "SPAN_TOKENS", 1)
    assert trending([(sliced, live)], "month", k=50, min_count=2) == expected
    assert SlicingIndex.calls > 1
    monkeypatch.setattr(trends, "CHUNK_TOKENS", 1000)  # many baseline chunks: same counts
    assert trending([(sliced, live)], "month", k=50, min_count=2) == expected


def test_window_validation_and_periods(main_segment):
    segs = [(main_segment, np.ones(len(main_segment), dtype=bool))]
    with pytest.raises(ValueError, match="day, week, month"):
        trending(segs, "fortnight")
    with pytest.raises(ValueError, match=">= 2"):
        trending(segs, n=(1, 2))
    assert periods("day", 100) == ((100, 100), (72, 99))
    assert periods("week", 100) == ((94, 100), (66, 93))
    assert periods("month", 1000) == ((971, 1000), (851, 970))
    assert trending(segs, "week", now=NOW - 1000) == []  # nothing dated before
    assert trending([(main_segment, np.zeros(len(main_segment), dtype=bool))]) == []
    assert trending(segs, "day", min_count=3)[0].phrase == "state space model"


def _label(d: date, period: str) -> str:
    if period == "week":
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    return d.isoformat() if period == "day" else d.strftime("%Y-%m")


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_series_equals_a_brute_count_per_period(tmp_path, period):
    gap = corpus(seed=2, first=NOW - 120, last=NOW - 80, per_day=2) + corpus(seed=3, first=NOW - 20, per_day=2)
    undated = Doc("u", -1, "state space model", "state space model")
    delta_docs = [Doc("x", NOW, "a state space model", "")]
    main = segment(tmp_path, "main", [*gap, undated])
    live = np.ones(len(main), dtype=bool)
    live[3] = False
    segs = [(main, live), (segment(tmp_path, "delta", delta_docs), np.ones(1, dtype=bool))]
    got = series(segs, "State Space Model", period=period)
    counts: Counter = Counter()
    totals: Counter = Counter()
    for i, d in enumerate(gap + delta_docs):
        if i == 3 or d.day < 0:
            continue
        label = _label(date.fromordinal(date(1970, 1, 1).toordinal() + d.day), period)
        counts[label] += brute([d], "state space model", d.day, d.day)[0]
        totals[label] += sum(1 for t in doc_tokens(d.title, d.abstract) if t)
    assert {lab: (c, t) for lab, c, t in got if t} == {lab: (counts[lab], totals[lab]) for lab in totals}
    labels = [lab for lab, _, _ in got]
    assert labels[0] == min(totals) and labels[-1] == max(totals) and labels == sorted(labels)
    assert len(labels) == len(set(labels))
    assert series(segs, "State Space Model", period=period) == got  # the second answer comes from the cache
    if period != "day":
        assert any(t == 0 for _, _, t in got)  # the gap is there, as zeros
    else:
        assert len(got) == 121


def test_series_totals_are_cached_per_segment_and_live_mask(tmp_path, main_docs, monkeypatch):
    main = segment(tmp_path, "main", main_docs)
    live = np.ones(len(main), dtype=bool)
    computed = []
    real = trends._compute_periods
    monkeypatch.setattr(trends, "_compute_periods", lambda *a: computed.append(a[2]) or real(*a))  # a spy
    first = series([(main, live)], "state space model", period="week")
    again = series([(main, live.copy())], "state space model", period="week")  # an equal mask: a cache hit
    assert again == first and computed == ["week"]
    assert series([(main, live)], "neural network", period="week") != first and computed == ["week"]
    assert sum(c for _, c, _ in first) == brute(main_docs, "state space model", -1, NOW)[0]

    dead = live.copy()
    dead[: len(main) // 2] = False  # another live mask (dead rows): its own entry, its own totals
    half = series([(main, dead)], "state space model", period="week")
    assert computed == ["week", "week"] and half != first
    kept = [d for d, ok in zip(main_docs, dead.tolist()) if ok]
    assert sum(c for _, c, _ in half) == brute(kept, "state space model", -1, NOW)[0]
    assert sum(t for _, _, t in half) == sum(len([t for t in doc_tokens(d.title, d.abstract) if t]) for d in kept)
    assert series([(main, live)], "state space model", period="week") == first and len(computed) == 2

    # A new engine version is a new segment: computed afresh; the old one's entries go with it.
    rebuilt = segment(tmp_path, "main2", main_docs[: len(main_docs) // 3])
    assert series([(rebuilt, np.ones(len(rebuilt), dtype=bool))], "state space model", period="week") != first
    assert len(computed) == 3 and main in trends._PERIODS and rebuilt in trends._PERIODS
    gone, where = weakref.ref(main), main.directory
    del main
    gc.collect()
    assert gone() is None and all(ix.directory != where for ix in trends._PERIODS)  # nothing pins it


def test_series_rejects_bad_input(main_segment):
    segs = [(main_segment, np.ones(len(main_segment), dtype=bool))]
    with pytest.raises(ValueError, match="day, week, month"):
        series(segs, "state space", period="year")
    with pytest.raises(ValueError, match="empty"):
        series(segs, "   ")
    assert all(c == 0 for _, c, _ in series(segs, "absent words"))


def test_period_labels():
    assert period_label(day_number("2024-03-05"), "day") == "2024-03-05"
    assert period_label((day_number("2024-03-01") + 3) // 7, "week") == "2024-W09"
    assert period_label((day_number("2021-01-03") + 3) // 7, "week") == "2020-W53"
    assert period_label(54 * 12 + 2, "month") == "2024-03"


def test_trend_is_a_small_record():
    t = Trend("state space model", 30, 4, 20, 2.5, 7.0)
    assert (t.phrase, t.recent, t.baseline, t.recent_papers) == ("state space model", 30, 4, 20)
