"""The arXiv OAI-PMH harvester against a real loopback server, and saved OAI-PMH pages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from papertide.errors import FormatError, SourceError
from papertide.paper import Paper, Version
from papertide.sources import Checkpoint, Deleted, Rejected
from papertide.sources.arxiv_oai import checkpoint_name, harvest, list_sets, read_file, split_authors
from papertide.sources.http import Fetcher

SHARED = SHARED_DATA / "formats"
OAI = "/oai"


def page(fixtures: Path, name: str) -> bytes:
    return (fixtures / "oai" / name).read_bytes()


def serve(server, fixtures, *names: str) -> None:
    for name in names:
        server.queue(OAI, page(fixtures, name), headers={"Content-Type": "text/xml; charset=utf-8"})


def run(config, server, **kw) -> list:
    kw.setdefault("set_spec", "cs")
    with Fetcher(config) as f:
        return list(harvest(f, server.url + OAI, **kw))


def papers(items) -> list[Paper]:
    return [i for i in items if isinstance(i, Paper)]


def checkpoints(items) -> list[Checkpoint]:
    return [i for i in items if isinstance(i, Checkpoint)]


# ----------------------------------------------------------------- formats


def test_arxiv_format_field_by_field(server, config, fixtures):
    serve(server, fixtures, "listrecords_arxiv.xml")
    items = run(config, server, from_="2024-02-01", until="2024-02-02")
    p = items[0]
    assert isinstance(p, Paper) and p.id == "2401.12345" and p.source == "arxiv-oai"
    assert p.title == r"Tidal Embeddings: $\alpha$-Scaled Retrieval for Paper Discovery"
    assert p.abstract == (
        r"We embed papers with $\alpha$-scaled vectors & rank them by \emph{tide} scores. "
        r"Results improve on the $k$-NN baseline."
    )
    assert p.authors == ["Grace B. Hopper Jr", "Alan Turing", "The Tide Collaboration"]
    assert p.extra["affiliations"] == [["Example Institute of Technology", "Harbour Lab"], [], []]
    assert p.categories == ["cs.CL", "cs.IR", "stat.ML"] and p.primary_category == "cs.CL"
    assert (p.submitted, p.updated) == ("2024-01-22", "2024-01-30")
    assert p.comments == "12 pages, 3 figures; v2 fixes a typo"
    assert p.extra["report_no"] == "TIDE-2024-01"
    assert p.extra["msc_class"] == "68T50" and p.extra["acm_class"] == "H.3.3; I.2.7"
    assert p.journal_ref == "J. Paper Discov. 1 (2024) 1-12"
    assert p.doi == "10.1234/JPD.2024.001" and p.links["doi"] == "https://doi.org/10.1234/JPD.2024.001"
    assert p.license == "http://creativecommons.org/licenses/by/4.0/"
    assert p.links["abs"] == "https://arxiv.org/abs/2401.12345"
    old = items[4]
    assert isinstance(old, Paper) and old.id == "math/0605001" and old.categories == ["math.GT", "cs.DS"]
    assert "affiliations" not in old.extra and "report_no" not in old.extra


def test_deleted_and_bad_records_are_reported_and_neighbours_kept(server, config, fixtures):
    serve(server, fixtures, "listrecords_arxiv.xml")
    items = run(config, server)
    assert items[1] == Deleted("2401.00002", "oai:arXiv.org:2401.00002")
    bad_date, no_title = items[2], items[3]
    assert isinstance(bad_date, Rejected) and bad_date.where == "oai:arXiv.org:2401.00003"
    assert "created" in bad_date.reason and "2024-02-30" in bad_date.reason
    assert isinstance(no_title, Rejected) and no_title.where == "oai:arXiv.org:2401.00004"
    assert "no title" in no_title.reason
    assert [p.id for p in papers(items)] == ["2401.12345", "math/0605001"]
    [cp] = checkpoints(items)
    assert cp.state["records"] == 5 and cp.state["done"] is True and cp.state["complete_list_size"] == 5
    assert cp.state["last_datestamp"] == "2024-02-02"


def test_arxivraw_format_field_by_field(server, config, fixtures):
    serve(server, fixtures, "listrecords_arxivraw.xml")
    items = run(config, server, set_spec="physics:hep-th", prefix="arXivRaw")
    assert server.requests[0].query == {"verb": "ListRecords", "metadataPrefix": "arXivRaw", "set": "physics:hep-th"}
    p = items[0]
    assert isinstance(p, Paper) and p.id == "2303.01234"
    assert p.title == r"Strings on the Tide: A Note on $\mathcal{N}=4$ Amplitudes"
    assert p.abstract == r"We compute $\mathcal{N}=4$ amplitudes on a tidal background and find that they \emph{ebb}."
    assert p.authors == ["Ada Lovelace", "Charles Babbage Jr.", "Mary Somerville", "G. H. Hardy"]
    assert p.extra["affiliations"] == [
        ["University of London", "Royal Society"],
        [],
        ["Royal Society"],
        [],
    ]
    assert p.extra["submitter"] == "Ada Lovelace"
    assert p.versions == [
        Version(1, "2023-03-02T17:04:11Z"),
        Version(2, "2023-03-20T09:30:00Z"),
        Version(3, "2024-03-04T12:00:05Z"),
    ]
    assert (p.version, p.submitted, p.updated) == (3, "2023-03-02T17:04:11Z", "2024-03-04T12:00:05Z")
    assert p.categories == ["hep-th", "math-ph", "math.MP"]
    assert p.comments == "30 pages; v3: published version" and p.extra["report_no"] == "RS-TH-23-07"
    assert p.journal_ref == "Phys. Tide Lett. 7 (2024) 101" and p.doi == "10.5555/PTL.7.101"
    assert p.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    single = items[1]
    assert isinstance(single, Paper) and single.id == "hep-th/0101001" and single.authors == ["E. Noether"]
    assert single.version == 1 and single.submitted == single.updated == "2001-01-01T00:00:01Z"
    assert "affiliations" not in single.extra
    bad = items[2]
    assert isinstance(bad, Rejected) and bad.where == "oai:arXiv.org:2303.09999" and "'first'" in bad.reason


def test_split_authors():
    assert split_authors("A. B, C. D and E. F") == [("A. B", []), ("C. D", []), ("E. F", [])]
    assert split_authors("Ann Lee, Bo Chen, and Cy Dow et al.") == [("Ann Lee", []), ("Bo Chen", []), ("Cy Dow", [])]
    assert split_authors(r"C. Bal\'azs (Argonne and Chicago), E. L. Berger") == [
        (r"C. Bal\'azs", ["Argonne and Chicago"]),
        ("E. L. Berger", []),
    ]
    assert split_authors("") == []


# ------------------------------------------------------------------ paging


def test_paging_sends_token_alone_and_checkpoints_each_page(server, config, fixtures):
    serve(server, fixtures, "paging_1.xml", "paging_2.xml", "paging_3.xml")
    items = run(config, server, from_="2024-02-01", until="2024-02-29")
    assert [r.query for r in server.requests] == [
        {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs", "from": "2024-02-01", "until": "2024-02-29"},
        {"verb": "ListRecords", "resumptionToken": "6045817|1001"},
        {"verb": "ListRecords", "resumptionToken": "6045817|2001"},
    ]
    kinds = ["P" if isinstance(i, Paper) else "C" if isinstance(i, Checkpoint) else "?" for i in items]
    assert kinds == list("PPCPPCPPC")
    states = [c.state for c in checkpoints(items)]
    assert all(c.name == "oai:arXiv:cs" for c in checkpoints(items))
    assert [s["token"] for s in states] == ["6045817|1001", "6045817|2001", None]
    assert [s["done"] for s in states] == [False, False, True]
    assert [s["records"] for s in states] == [2, 4, 6]
    assert [s["last_datestamp"] for s in states] == ["2024-02-05", "2024-02-09", "2024-02-12"]
    assert [s["response_date"][-3:] for s in states] == ["01Z", "05Z", "09Z"]
    assert states[0]["complete_list_size"] == 6 and states[0]["from"] == "2024-02-01"
    assert json.loads(json.dumps(states[-1])) == states[-1]
    assert [p.id for p in papers(items)] == [f"2402.0000{n}" for n in range(1, 7)]


def test_interrupted_harvest_resumes_from_its_token(server, config, fixtures):
    serve(server, fixtures, "paging_1.xml")
    seen: list[str] = []
    state = None
    with Fetcher(config) as f:
        for item in harvest(f, server.url + OAI, set_spec="cs", from_="2024-02-01", until="2024-02-29"):
            if isinstance(item, Paper):
                seen.append(item.id)
            elif isinstance(item, Checkpoint):
                state = item.state
                break  # the process dies after committing page 1
    assert state is not None and state["token"] == "6045817|1001"
    state = json.loads(json.dumps(state))  # as the store would keep it
    serve(server, fixtures, "paging_2.xml", "paging_3.xml")
    items = run(config, server, from_="2024-02-01", until="2024-02-29", resume=state)
    seen += [p.id for p in papers(items)]
    assert sorted(seen) == [f"2402.0000{n}" for n in range(1, 7)] and len(seen) == len(set(seen))
    assert server.requests[1].query == {"verb": "ListRecords", "resumptionToken": "6045817|1001"}
    assert checkpoints(items)[-1].state["records"] == 6 and checkpoints(items)[-1].state["done"]


def test_resume_state_of_another_harvest_is_ignored(server, config, fixtures):
    serve(server, fixtures, "paging_3.xml")
    other = {"set": "math", "prefix": "arXiv", "from": None, "until": None, "token": "xyz", "done": False, "records": 9}
    items = run(config, server, resume=other)
    assert server.requests[0].query == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs"}
    assert checkpoints(items)[-1].state["records"] == 2


def test_expired_token_restarts_the_list_once(server, config, fixtures, caplog):
    resume = {"set": "cs", "prefix": "arXiv", "from": "2024-02-01", "until": "2024-02-29",
              "token": "6045817|1001", "done": False, "records": 2}
    serve(server, fixtures, "error_badResumptionToken.xml", "paging_1.xml", "paging_2.xml", "paging_3.xml")
    with caplog.at_level(logging.WARNING, logger="papertide.sources.arxiv_oai"):
        items = run(config, server, from_="2024-02-01", until="2024-02-29", resume=resume)
    tokens = [r.query.get("resumptionToken") for r in server.requests]
    assert tokens == ["6045817|1001", None, "6045817|1001", "6045817|2001"]
    assert server.requests[1].query["from"] == "2024-02-01" and server.requests[1].query["until"] == "2024-02-29"
    assert len(papers(items)) == 6
    last = checkpoints(items)[-1].state
    assert last["done"] and last["restarts"] == 1 and last["records"] == 6
    assert any("restarting" in r.message for r in caplog.records)


def test_expired_token_twice_is_an_error(server, config, fixtures):
    resume = {"set": "cs", "prefix": "arXiv", "from": None, "until": None, "token": "t", "done": False}
    serve(server, fixtures, "error_badResumptionToken.xml", "paging_1.xml", "error_badResumptionToken.xml")
    with pytest.raises(SourceError, match="badResumptionToken: Invalid or expired"):
        run(config, server, resume=resume)


def test_no_records_match_is_an_empty_finished_harvest(server, config, fixtures):
    serve(server, fixtures, "error_noRecordsMatch.xml")
    items = run(config, server, from_="2030-01-01")
    assert len(items) == 1 and isinstance(items[0], Checkpoint)
    assert items[0].state["done"] is True and items[0].state["records"] == 0 and items[0].state["token"] is None


@pytest.mark.parametrize("status", [200, 400])
def test_oai_error_raises_with_code_and_message(server, config, fixtures, status):
    server.queue(OAI, page(fixtures, "error_badArgument.xml"), status=status)
    with pytest.raises(SourceError, match=r"OAI-PMH error badArgument: Invalid set: nonsense") as e:
        run(config, server, set_spec="nonsense", from_="2024-02-01")
    assert "verb=ListRecords" in str(e.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"prefix": "oai_dc"}, r"one of 'arXiv', 'arXivRaw', not 'oai_dc'"),
        ({"from_": "2024-2-1"}, "from must be a date YYYY-MM-DD"),
        ({"until": "2024-02-30"}, "until must be a date YYYY-MM-DD"),
        ({"from_": "2024-03-01", "until": "2024-02-01"}, "is after until"),
        ({"set_spec": "cs CL"}, "not an OAI-PMH set"),
    ],
)
def test_arguments_are_checked_when_called(server, config, kw, message):
    kw.setdefault("set_spec", "cs")
    with Fetcher(config) as f, pytest.raises(ValueError, match=message):
        harvest(f, server.url + OAI, **kw)  # not iterated: the check is eager
    assert server.requests == []


def test_checkpoint_names():
    assert checkpoint_name("cs:cs:CL", "arXiv") == "oai:arXiv:cs:cs:CL"
    assert checkpoint_name(None, "arXivRaw") == "oai:arXivRaw:*"


# --------------------------------------------------------------- politeness


def test_503_retry_after_is_honoured(server, config, fixtures):
    server.queue(OAI, "busy", status=503, headers={"Retry-After": "1"})
    serve(server, fixtures, "paging_3.xml")
    items = run(config, server)
    assert len(papers(items)) == 2 and len(server.requests) == 2
    assert server.requests[1].at - server.requests[0].at >= 0.95
    assert server.requests[1].query == server.requests[0].query


def test_truncated_transfer_and_broken_xml_are_retried(server, config, fixtures):
    body = page(fixtures, "paging_3.xml")
    server.queue(OAI, body, truncate_at=len(body) // 2)  # connection dies mid-body
    server.queue(OAI, body[: len(body) // 2])  # a complete answer, but of broken XML
    serve(server, fixtures, "paging_3.xml")
    items = run(config, server)
    assert len(server.requests) == 3
    assert [p.id for p in papers(items)] == ["2402.00005", "2402.00006"]


def test_broken_xml_every_time_gives_up(server, config):
    server.always(OAI, "<OAI-PMH><ListRecords>")
    with pytest.raises(SourceError, match="malformed OAI-PMH XML"):
        run(config, server)
    assert len(server.requests) == config.retries + 1


def test_not_an_oai_response_is_an_error(server, config):
    server.queue(OAI, "<html><body>maintenance</body></html>")
    with pytest.raises(SourceError, match="not an OAI-PMH response"):
        run(config, server)


def test_minimum_interval_between_requests(server, config, fixtures):
    serve(server, fixtures, "paging_1.xml", "paging_2.xml", "paging_3.xml")
    with Fetcher(config, interval=0.2) as f:
        items = list(harvest(f, server.url + OAI, set_spec="cs"))
    assert len(papers(items)) == 6
    times = [r.at for r in server.requests]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Measured at the server, so a little scheduling/GC jitter of one arrival is allowed;
    # without the interval the gaps would be a few milliseconds.
    assert len(gaps) == 2 and all(g >= 0.17 for g in gaps), gaps
    assert times[-1] - times[0] >= 0.37, gaps


def test_list_sets_follows_tokens(server, config, fixtures):
    serve(server, fixtures, "listsets_1.xml", "listsets_2.xml")
    with Fetcher(config) as f:
        sets = list_sets(f, server.url + OAI)
    assert sets == [
        ("cs", "Computer Science"),
        ("cs:cs:CL", "Computation and Language"),
        ("physics:hep-th", "High Energy Physics - Theory"),
    ]
    assert [r.query for r in server.requests] == [
        {"verb": "ListSets"},
        {"verb": "ListSets", "resumptionToken": "sets|2"},
    ]


# --------------------------------------------------------------- saved files


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared recordings not present")
def test_read_file_on_the_real_recording():
    items = list(read_file(SHARED / "arxiv-oai-listrecords_list-identifiers-from-arxiv.xml"))
    assert [p.id for p in items] == ["1412.8544", "hep-th/9504118"]
    first, second = items
    assert first.authors == ["Sander Uijlen", "Bas Westerbaan"]
    assert first.extra["affiliations"] == [["Radboud Universiteit"], ["Radboud Universiteit"]]
    assert first.doi == "10.4204/EPTCS.172.11" and first.submitted == "2014-12-29"
    assert second.extra["report_no"] == "GOET-TP 101/95"
    assert r"'{\it cellular network}'" in second.abstract and '"strength"' in second.abstract


def test_read_file_parses_like_the_harvester(fixtures):
    items = list(read_file(fixtures / "oai" / "listrecords_arxivraw.xml"))
    assert [type(i).__name__ for i in items] == ["Paper", "Paper", "Rejected"]
    assert items[0].version == 3
    assert items[2].where == f"{fixtures / 'oai' / 'listrecords_arxivraw.xml'}:oai:arXiv.org:2303.09999"


def test_read_file_truncated_keeps_good_records_and_reports_the_line(fixtures):
    path = fixtures / "oai" / "truncated.xml"
    items = list(read_file(path))
    assert [p.id for p in items[:2]] == ["2402.00001", "2402.00002"]
    assert len(items) == 3 and isinstance(items[2], Rejected)
    last_line = path.read_text().count("\n") + 1
    assert items[2].where == f"{path}:{last_line}"
    assert items[2].reason.startswith("malformed XML")


def test_read_file_no_records_match_is_empty(fixtures):
    assert list(read_file(fixtures / "oai" / "error_noRecordsMatch.xml")) == []


def test_read_file_rejects_what_is_not_a_listrecords_page(fixtures, tmp_path):
    other = tmp_path / "feed.xml"
    other.write_text('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry/></feed>')
    with pytest.raises(FormatError, match="not an OAI-PMH response"):
        list(read_file(other))
    with pytest.raises(FormatError, match="ListSets response holds no records"):
        list(read_file(fixtures / "oai" / "listsets_1.xml"))
    with pytest.raises(FormatError, match="badArgument: Invalid set"):
        list(read_file(fixtures / "oai" / "error_badArgument.xml"))
    garbage = tmp_path / "notes.xml"
    garbage.write_text("just some text\n")
    with pytest.raises(FormatError, match="not an OAI-PMH XML response"):
        list(read_file(garbage))
