"""Digest periods and composition: which papers a subscriber gets for a period, and why."""

from __future__ import annotations

from datetime import date, datetime, timezone

import json

import pytest
from conftest import cli_run

from papertide.digest import DigestBuilder, last_complete_period, period_bounds, period_of, title_for
from papertide.index import SearchIndex
from papertide.store import open_store
from papertide.store.mailing import Subscription

DAY = "2024-03-17"  # the demo corpus's daily page


def sub(**kw) -> Subscription:
    base = dict(id=1, email="ada@example.org", user_id=None, every="day", trending=False, categories=(),
                searches=(), for_you=False, status="active", reason="", created="2024-03-01T00:00:00Z",
                confirmed="2024-03-01T00:00:00Z", confirm_sent="2024-03-01T00:00:00Z")  # fmt: skip
    base.update(kw)
    return Subscription(**base)


def test_periods_round_trip():
    assert period_of("day", date(2024, 3, 17)) == "2024-03-17"
    assert period_of("week", date(2024, 3, 17)) == "2024-W11"  # a Sunday ends ISO week 11
    assert period_bounds("2024-W11") == (date(2024, 3, 11), date(2024, 3, 17))
    assert period_bounds("2024-03-17") == (date(2024, 3, 17), date(2024, 3, 17))
    assert period_of("week", date(2021, 1, 3)) == "2020-W53"  # ISO years differ from calendar years
    with pytest.raises(ValueError, match="not a period"):
        period_bounds("2024-13-40")
    with pytest.raises(ValueError, match="every"):
        period_of("month", date(2024, 1, 1))


def test_last_complete_period_is_the_one_that_ended():
    monday_noon = datetime(2024, 3, 18, 12, tzinfo=timezone.utc)
    assert last_complete_period("day", monday_noon) == "2024-03-17"
    assert last_complete_period("week", monday_noon) == "2024-W11"
    sunday = datetime(2024, 3, 17, 23, 59, tzinfo=timezone.utc)
    assert last_complete_period("week", sunday) == "2024-W10"  # week 11 has not ended yet


def test_titles_name_the_period():
    assert title_for("day", "2024-03-17") == "Your papertide digest: 17 Mar 2024"
    assert "11 Mar" in title_for("week", "2024-W11") and "17 Mar 2024" in title_for("week", "2024-W11")


CATEGORIZED = [
    {"id": "2403.11111", "title": "Diffusion models for video generation", "authors": ["Ada Lovelace"],
     "categories": ["cs.CV", "cs.LG"], "submitted": DAY, "abstract": "A diffusion model generates video frames."},
    {"id": "2403.22222", "title": "Segmenting anything in medical images", "authors": ["Alan Turing"],
     "categories": ["cs.CV"], "submitted": DAY, "abstract": "We segment organs in CT scans with a vision model."},
    {"id": "2403.33333", "title": "Sparse attention for long documents", "authors": ["Grace Hopper"],
     "categories": ["cs.CL"], "submitted": DAY, "abstract": "Sparse attention reads long documents quickly."},
    {"id": "2403.44444", "title": "Elliptic curves over finite fields", "authors": ["Emmy Noether"],
     "categories": ["math.NT"], "submitted": DAY, "abstract": "We count points on elliptic curves."},
]


@pytest.fixture
def demo(warm_home, config, tmp_path):
    extra = tmp_path / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(p) for p in CATEGORIZED), encoding="utf-8")
    cli_run("demo")
    cli_run("ingest", str(extra))
    cli_run("index")
    store = open_store(config)
    for p in CATEGORIZED:
        store.community.list_paper(p["id"], DAY)
    yield store, SearchIndex.open(config, store)
    store.close()


def _voter(store, name: str) -> int:
    return store.community.create_user(name, f"{name}@example.org", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA").id


def test_trending_section_follows_votes_cast_in_the_period(demo):
    store, index = demo
    day_ids = [pid for pid, _, _ in store.community.listed(DAY, DAY)]
    a, b = _voter(store, "ann"), _voter(store, "bob")
    # votes carry the time they are cast (now), so the digest's period is today's
    for uid in (a, b):
        store.community.vote(uid, day_ids[3])
    store.community.vote(a, day_ids[5])
    today = datetime.now(timezone.utc)
    builder = DigestBuilder(store, index, now=today)
    digest = builder.build(sub(trending=True), period_of("day", today.date()))
    heading, items = digest.sections[0]
    assert heading == "Trending"
    assert [i.paper.id for i in items[:2]] == [day_ids[3], day_ids[5]]
    when = f"on {today.day} {today:%b}"
    assert items[0].reason == f"among the most upvoted {when}" and items[0].upvotes == 2
    assert items[1].reason == items[0].reason and items[1].upvotes == 1


def test_trending_falls_back_to_the_periods_papers_when_nobody_voted(demo):
    store, index = demo
    digest = DigestBuilder(store, index).build(sub(trending=True), DAY)
    listed = {pid for pid, _, _ in store.community.listed(DAY, DAY)}
    items = digest.sections[0][1]
    assert 0 < len(items) <= 10 and {i.paper.id for i in items} <= listed
    assert all(i.section == "trending" for i in items)


def test_categories_and_searches_pick_the_periods_papers_with_reasons(demo):
    store, index = demo
    digest = DigestBuilder(store, index).build(sub(categories=("cs.CV",), searches=('"sparse attention"',)), DAY)
    by_section = {items[0].section: items for _, items in digest.sections}
    listed = {pid for pid, _, _ in store.community.listed(DAY, DAY)}
    assert {i.paper.id for i in by_section["category"]} == {"2403.11111", "2403.22222"}
    for item in by_section["category"]:
        assert any(c == "cs.CV" for c in item.paper.categories) and item.reason == "new in cs.CV"
        assert item.paper.id in listed
    assert [i.paper.id for i in by_section["search"]] == ["2403.33333"]
    assert by_section["search"][0].reason == "matches your search “\"sparse attention\"”"
    ids = [i.paper.id for _, items in digest.sections for i in items]
    assert len(ids) == len(set(ids)), "a paper appears once per digest"


def test_archive_matches_every_category_in_it(demo):
    store, index = demo
    digest = DigestBuilder(store, index).build(sub(categories=("cs",)), DAY)
    items = digest.sections[0][1]
    assert {i.paper.id for i in items} == {"2403.11111", "2403.22222", "2403.33333"}
    assert {i.reason for i in items} == {"new in cs"}


def test_a_period_with_no_papers_gives_an_empty_digest(demo):
    store, index = demo
    digest = DigestBuilder(store, index).build(sub(trending=True, categories=("cs",), searches=("attention",)),
                                                "1999-01-01")  # fmt: skip
    assert digest.empty and digest.size == 0


def test_hidden_papers_never_reach_a_digest(demo):
    store, index = demo
    first = DigestBuilder(store, index).build(sub(trending=True), DAY).sections[0][1][0].paper.id
    store.community.set_paper_hidden(first, True)
    ids = [i.paper.id for _, items in DigestBuilder(store, index).build(sub(trending=True), DAY).sections
           for i in items]  # fmt: skip
    assert first not in ids


def _by_title(store, ids, prefix: str) -> str:
    return next(pid for pid, p in store.get_many(ids).items() if p.title.startswith(prefix))


def test_for_you_recommends_the_periods_papers_like_the_ones_the_user_upvoted(demo):
    store, index = demo
    com = store.community
    listed = [pid for pid, _, _ in com.listed(DAY, DAY)]
    uid = _voter(store, "emma")
    liked = [_by_title(store, listed, t) for t in ("2D Matryoshka", "Scalable Attentive Sentence-Pair",
                                                   "L3Cube-MahaSBERT")]  # fmt: skip
    for pid in liked:
        com.vote(uid, pid)
    refused = _by_title(store, listed, "A Survey of Large Language Models")
    com.mark_not_relevant(uid, refused)
    digest = DigestBuilder(store, index).build(sub(user_id=uid, for_you=True), DAY)
    heading, items = digest.sections[0]
    assert heading == "For you" and len(digest.sections) == 1
    ids = [i.paper.id for i in items]
    assert 3 <= len(ids) <= 10 and set(ids) <= set(listed)  # the period's papers
    assert not set(ids) & {*liked, refused}  # never what the user upvoted or refused
    assert "2403.44444" not in ids  # elliptic curves: unlike anything they liked
    assert _by_title(store, listed, "From Word Vectors to Multimodal Embeddings") in ids[:3]
    titles = {store.get(p).title for p in liked}
    for item in items:
        assert item.section == "for_you" and item.upvotes == com.votes([item.paper.id]).get(item.paper.id, 0)
        assert item.reason.startswith(("close to “", "related to “", "for: ")), item.reason
        if not item.reason.startswith("for: "):  # it names the upvoted paper it is close to
            assert item.reason.endswith(", which you upvoted")
            assert any(f"“{t[:40]}" in item.reason for t in titles), item.reason
        else:
            assert len(item.reason) > len("for: ")
    # With trending too: the upvoted papers may trend (votes are not personal), but "for you"
    # still never offers them, nor repeats a trending paper.
    both = DigestBuilder(store, index).build(sub(user_id=uid, for_you=True, trending=True), DAY)
    (_, trending), (heading, mine) = both.sections
    assert heading == "For you" and mine
    assert not {i.paper.id for i in mine} & ({*liked, refused} | {i.paper.id for i in trending})


def test_for_you_without_a_user_starts_from_the_subscriptions_categories(demo):
    store, index = demo
    com = store.community
    com.vote(_voter(store, "fan"), "2403.22222")
    digest = DigestBuilder(store, index).build(sub(for_you=True, categories=("cs.CV",)), DAY)
    heading, items = digest.sections[0]
    assert heading == "For you"
    assert [(i.paper.id, i.reason) for i in items] == [("2403.22222", "1 upvote in cs.CV"),
                                                       ("2403.11111", "new in cs.CV")]  # fmt: skip
    assert len(digest.sections) == 1  # the category section would repeat them: a paper appears once
    newcomer = _voter(store, "newcomer")  # an account that has liked nothing yet: the same cold start
    cold = DigestBuilder(store, index).build(sub(user_id=newcomer, for_you=True, categories=("cs.CV",)), DAY)
    assert [i.paper.id for i in cold.sections[0][1]] == ["2403.22222", "2403.11111"]
    nothing = DigestBuilder(store, index).build(sub(for_you=True), DAY)  # no user, no categories
    assert nothing.empty


def test_saved_searches_find_papers_listed_in_the_period_though_submitted_earlier(demo, config, tmp_path):
    store, _ = demo
    old = {"id": "1706.03762", "title": "Attention is all you need", "authors": ["Ashish Vaswani"],
           "categories": ["cs.CL"], "submitted": "2017-06-12", "abstract": "The Transformer uses attention only."}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(old), encoding="utf-8")
    cli_run("ingest", str(path))
    cli_run("index")
    day2 = "2024-03-18"
    store.community.list_paper(old["id"], day2)  # featured on a day long after its submission
    digest = DigestBuilder(store, SearchIndex.open(config, store)).build(sub(searches=('"attention is all"',)), day2)
    assert [i.paper.id for _, items in digest.sections for i in items] == [old["id"]]
    none = DigestBuilder(store, SearchIndex.open(config, store)).build(sub(searches=('"attention is all"',)), DAY)
    assert none.empty  # not listed on DAY, nor submitted then
