"""Synthetic papers in the public arXiv metadata snapshot's format, for benchmarks.

The records look like the real snapshot's lines (same keys, RFC 2822 version dates,
``authors_parsed``, categories primary first, occasional DOI and journal ref); titles
and abstracts are drawn from the vocabulary of the demo corpus so their lengths and
word statistics are realistic. Deterministic for a given seed.

    python bench/synth.py 100000 > snapshot.jsonl
"""

from __future__ import annotations

import json
import random
import re
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from importlib.resources import files
from pathlib import Path

CATEGORIES = ["cs.CL", "cs.LG", "cs.AI", "cs.IR", "cs.CV", "stat.ML", "math.OC", "cs.NE", "eess.AS", "q-bio.NC"]
SURNAMES = ["Liu", "Smith", "Wang", "Zhang", "Müller", "García", "Nguyen", "Kim", "Rossi", "Okafor", "Dubois",
            "Ivanova", "Kowalski", "Tanaka", "Silva", "Cohen", "Singh", "O'Brien", "Andersson", "Yılmaz"]  # fmt: skip
FORENAMES = ["A.", "Jiacheng", "Noah A.", "Yejin", "Hannaneh", "Luke", "Maria", "Chen", "Priya", "J. P.", "Olga"]


def _vocabulary() -> list[str]:
    words: list[str] = []
    for line in (files("papertide") / "data" / "demo_papers.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        words += re.findall(r"[A-Za-z][A-Za-z-]+", d["title"] + " " + d["abstract"])
    return words


def records(n: int, seed: int = 0, start: datetime | None = None):
    """Yield ``n`` snapshot-format dicts."""
    rng = random.Random(seed)
    vocab = _vocabulary()
    start = start or datetime(2023, 1, 2, tzinfo=timezone.utc)
    per_month: dict[str, int] = {}
    for i in range(n):
        created = start + timedelta(minutes=7 * i + rng.randrange(7))
        yymm = created.strftime("%y%m")
        per_month[yymm] = per_month.get(yymm, 0) + 1
        n_authors = min(1 + int(rng.expovariate(0.25)), 60)
        authors = [(rng.choice(SURNAMES), rng.choice(FORENAMES), "") for _ in range(n_authors)]
        n_versions = rng.choice([1, 1, 1, 2, 2, 3])
        versions = []
        t = created
        for v in range(1, n_versions + 1):
            versions.append({"version": f"v{v}", "created": format_datetime(t, usegmt=True)})
            t += timedelta(days=rng.randrange(1, 90))
        cats = rng.sample(CATEGORIES, rng.choice([1, 1, 2, 3]))
        title = " ".join(rng.choice(vocab) for _ in range(rng.randrange(6, 16))).capitalize()
        words = [rng.choice(vocab) for _ in range(rng.randrange(100, 250))]
        abstract = "  " + "\n".join(" ".join(words[k : k + 11]) for k in range(0, len(words), 11)) + ".\n"
        has_doi = rng.random() < 0.2
        yield {
            "id": f"{yymm}.{per_month[yymm]:05d}",
            "submitter": f"{authors[0][1]} {authors[0][0]}",
            "authors": ", ".join(f"{f} {s}" for s, f, _ in authors),
            "title": title,
            "comments": f"{rng.randrange(4, 40)} pages, {rng.randrange(1, 12)} figures" if rng.random() < 0.6 else None,
            "journal-ref": f"Journal of Synthetic Results {rng.randrange(1, 40)} ({created.year})" if has_doi else None,
            "doi": f"10.5555/synth.{i}" if has_doi else None,
            "report-no": None,
            "categories": " ".join(cats),
            "license": "http://creativecommons.org/licenses/by/4.0/" if rng.random() < 0.5 else None,
            "abstract": abstract,
            "versions": versions,
            "update_date": t.strftime("%Y-%m-%d"),
            "authors_parsed": [list(a) for a in authors],
        }


def write(path: Path, n: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for rec in records(n, seed):
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for rec in records(count):
        sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
