"""Offline evaluation of "for you" recommendations on a simulated community of real papers.

The corpus is real: the 200 records of the public arXiv metadata snapshot in
``shared/data/formats`` (April 2007, with the categories their authors chose), in
submission (id) order, and the 43 papers of the seed page (the demo corpus: one
real daily-papers page, mostly machine learning) dropped in at random places of that
order as one more topic, "seed-page". Papers arrive one at a time in that order.

The community is simulated, and its likes are driven by *latent topics the models
never see*: the papers' arXiv categories. A topic is a category or an archive
(``math.CO``, ``math``) holding at least 8 papers. Each user takes 1 to 3 topics, the
bigger ones more often, each with an affinity a ~ U(0.5, 1). A user likes an arriving
paper with probability 1 - prod(1 - a * m) over their topics the paper is in, m = 0.7
when the topic is the paper's primary category (or its archive), 0.35 for a cross-list;
plus 2% of papers liked on a whim whatever their topic. Of the papers outside their
topics and not liked, a user marks 5% "not relevant". Nothing here reads a word of the
text or an embedding, so no method is favoured by construction: each must find the
topics again from what the papers say.

Evaluation: the first 70% of arrivals are history, the last 30% are the period to
recommend from (the candidates, like a digest period). Each user's history likes (and
not-relevant marks) are what a method sees; their likes in the period are hidden and
must be found. Users without a like on both sides are left out. Reported: recall@20
(hidden likes in the top 20 / hidden likes), recall@10, per method, averaged over
users and then over ``--runs`` simulated communities (seeds ``--seed``, ``--seed``+1,
...); the spread is the standard deviation across runs.

Methods, side by side on the same users:

- random, and most recent first (a "new papers" list);
- TF-IDF + linear SVM per user, as arxiv-sanity ranks a tag: scikit-learn's
  ``TfidfVectorizer`` (words and 2-word phrases, sublinear tf, English stop words)
  fitted on all papers, ``LinearSVC(class_weight="balanced")`` trained on the history
  (liked = 1, every other history paper = 0), at C = 0.01 (arxiv-sanity's), 0.1 and 1;
- the centroid of the liked papers' embeddings (cosine to it);
- papertide's model (:func:`papertide.recommend.fit_user_model` and ``score``) with
  its defaults, as ``recommend`` runs it (papers below the similarity floor to every
  liked paper left out), and the same with only its lexical block (no embeddings, so
  no floor) or only its dense block (the other block left empty).

``--timing N`` also times one fit for a user with 100 likes and 5 not-relevant marks on
an index of N synthetic papers (``bench/synth.py`` text, random vectors, so no
similarity floor), then scoring every paper, and a 2,000-paper period for a first user
and the next (whose period's TF-IDF rows are cached: a digest run).

The baselines need scikit-learn (``pip install scikit-learn``); papertide does not.

    python bench/recommend_bench.py [--users 200] [--runs 5] [--seed 7] [--timing 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from papertide.recommend import MIN_SIMILARITY, PaperFeatures, fit_user_model, score  # noqa: E402
from papertide.text.lexical import BM25Index  # noqa: E402

SNAPSHOT = "formats/kaggle-arxiv-metadata-snapshot-200.jsonl"
MIN_TOPIC = 8
HISTORY = 0.7
WHIM, NOT_RELEVANT = 0.02, 0.05
PRIMARY, CROSS = 0.7, 0.35


def shared_data() -> Path:
    for base in (ROOT.parent / "shared" / "data", Path("/work/shared/data")):
        if (base / SNAPSHOT).exists():
            return base
    raise SystemExit(f"cannot find shared/data/{SNAPSHOT} beside the checkout")


# ------------------------------------------------------------------ corpus and community


def load_corpus(seed: int) -> list[dict]:
    """Snapshot papers in id order with the seed page's papers dropped in at random places."""
    data = shared_data()
    papers = []
    for line in (data / SNAPSHOT).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        papers.append({"id": r["id"], "title": " ".join(r["title"].split()), "abstract": " ".join(r["abstract"].split()),
                       "authors": [a.strip() for a in r["authors"].replace(" and ", ",").split(",") if a.strip()],
                       "categories": r["categories"].split()})  # fmt: skip
    papers.sort(key=lambda p: p["id"])
    rng = np.random.default_rng(seed)
    for n, line in enumerate((ROOT / "papertide" / "data" / "demo_papers.jsonl").read_text().splitlines()):
        d = json.loads(line)
        papers.insert(int(rng.integers(0, len(papers) + 1)),
                      {"id": f"seed:{n}", "title": d["title"], "abstract": d["abstract"], "authors": [],
                       "categories": ["seed-page"]})  # fmt: skip
    return papers


def paper_topics(p: dict) -> dict[str, float]:
    """Topic -> m: the paper's categories and their archives, PRIMARY for the primary one."""
    out: dict[str, float] = {}
    for n, cat in enumerate(p["categories"]):
        for t in {cat, cat.split(".")[0]}:
            out[t] = max(out.get(t, 0.0), PRIMARY if n == 0 else CROSS)
    return out


@dataclass
class User:
    interests: dict[str, float]
    likes: list[int] = field(default_factory=list)  # arrival numbers
    not_relevant: list[int] = field(default_factory=list)


def simulate(papers: list[dict], n_users: int, rng: np.random.Generator) -> list[User]:
    topics = [paper_topics(p) for p in papers]
    sizes: dict[str, int] = {}
    for t in topics:
        for name in t:
            sizes[name] = sizes.get(name, 0) + 1
    names = sorted(n for n, s in sizes.items() if s >= MIN_TOPIC)
    prob = np.array([sizes[n] for n in names], dtype=float)
    users = []
    for _ in range(n_users):
        chosen = rng.choice(len(names), size=int(rng.integers(1, 4)), replace=False, p=prob / prob.sum())
        u = User({names[i]: float(rng.uniform(0.5, 1.0)) for i in chosen})
        for i, t in enumerate(topics):
            miss = np.prod([1 - a * t[name] for name, a in u.interests.items() if name in t])
            if rng.random() < 1 - miss or rng.random() < WHIM:
                u.likes.append(i)
            elif miss == 1 and rng.random() < NOT_RELEVANT:
                u.not_relevant.append(i)
        users.append(u)
    return users


# ------------------------------------------------------------------ methods


def tfidf_svm(papers: list[dict], Cs: tuple[float, ...]):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    X = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode", stop_words="english",
                        ).fit_transform([f"{p['title']}. {p['abstract']}" for p in papers])  # fmt: skip

    def rank(C: float, history: list[int], liked: list[int], cand: list[int]) -> list[int]:
        y = np.isin(history, liked).astype(int)
        svm = LinearSVC(class_weight="balanced", C=C, max_iter=10_000, tol=1e-6).fit(X[history], y)
        s = svm.decision_function(X[cand])
        return [cand[j] for j in np.lexsort((np.arange(len(cand)), -s))]

    return {f"TF-IDF + LinearSVC, C={C:g}": (lambda h, lk, nr, c, C=C: rank(C, h, lk, c)) for C in Cs}


def ours(papers: list[dict], vectors: np.ndarray, *, lexical: bool = True, dense: bool = True):
    keys = [p["id"] for p in papers]
    lex = BM25Index.build([(p["id"], p["title"] if lexical else "", p["abstract"] if lexical else "",
                            p["authors"] if lexical else []) for p in papers])  # fmt: skip
    features = PaperFeatures(keys, vectors if dense else np.zeros_like(vectors), lex)
    times: list[float] = []

    def rank(history: list[int], liked: list[int], not_relevant: list[int], cand: list[int]) -> list[int]:
        t0 = time.perf_counter()
        model = fit_user_model(features, [keys[i] for i in reversed(liked)], [keys[i] for i in not_relevant])
        times.append(time.perf_counter() - t0)
        ids, _ = score(features, model, [keys[i] for i in cand], min_similarity=0.0 if not dense else MIN_SIMILARITY)
        at = {k: i for i, k in enumerate(keys)}
        return [at[k] for k in ids]

    return rank, times


def centroid(vectors: np.ndarray):
    def rank(history, liked, not_relevant, cand):
        c = vectors[liked].mean(axis=0)
        s = vectors[cand] @ c
        return [cand[j] for j in np.lexsort((np.arange(len(cand)), -s))]

    return rank


def embed(papers: list[dict]) -> np.ndarray:
    from papertide.config import load_config
    from papertide.index import load_configured_embedder
    from papertide.text.embed import paper_text

    with tempfile.TemporaryDirectory() as home:
        embedder = load_configured_embedder(load_config(home, env={}))
        return embedder.embed([paper_text(p["title"], p["abstract"]) for p in papers])


# ------------------------------------------------------------------ evaluation


def evaluate(papers, vectors, users, seed: int) -> tuple[dict[str, tuple[float, float]], int, dict]:
    n = len(papers)
    split = int(HISTORY * n)
    history, cand = list(range(split)), list(range(split, n))
    rng = np.random.default_rng(seed + 10_000)
    rank_ours, t_ours = ours(papers, vectors)
    rank_lex, _ = ours(papers, vectors, dense=False)
    rank_dense, _ = ours(papers, vectors, lexical=False)
    methods = {
        "random": lambda h, lk, nr, c: [c[j] for j in rng.permutation(len(c))],
        "most recent first": lambda h, lk, nr, c: sorted(c, reverse=True),
        **tfidf_svm(papers, (0.01, 0.1, 1.0)),
        "centroid of liked embeddings": centroid(vectors),
        "papertide, lexical block only": rank_lex,
        "papertide, dense block only": rank_dense,
        "papertide": rank_ours,
    }
    recalls = {m: ([], []) for m in methods}
    evaluated = 0
    for u in users:
        liked = [i for i in u.likes if i < split]
        hidden = {i for i in u.likes if i >= split}
        if not liked or not hidden:
            continue
        evaluated += 1
        nr = [i for i in u.not_relevant if i < split]
        for name, method in methods.items():
            ranking = method(history, liked, nr, cand)
            for at, out in zip((20, 10), recalls[name]):
                out.append(len(hidden.intersection(ranking[:at])) / len(hidden))
    stats = {"fit ms p50": 1000 * float(np.median(t_ours)), "fit ms p95": 1000 * float(np.percentile(t_ours, 95)),
             "likes/user": float(np.mean([len([i for i in u.likes if i < split]) for u in users]))}  # fmt: skip
    return {m: (float(np.mean(r20)), float(np.mean(r10))) for m, (r20, r10) in recalls.items()}, evaluated, stats


def timing(n: int) -> str:
    """One fit (100 likes, 5 not relevant) and one scoring of every paper, on n synthetic papers."""
    sys.path.insert(0, str(ROOT / "bench"))
    from synth import records

    rng = np.random.default_rng(0)
    recs = list(records(n, seed=0))
    t0 = time.perf_counter()
    lex = BM25Index.build([(r["id"], r["title"], r["abstract"], []) for r in recs])
    build = time.perf_counter() - t0
    vec = rng.standard_normal((n, 384)).astype(np.float32)
    keys = [r["id"] for r in recs]
    features = PaperFeatures(keys, vec, lex)
    t0 = time.perf_counter()
    features._inv_norm, features.key_rank  # noqa: B018 - once per index (a run reuses them)
    once = time.perf_counter() - t0
    liked = [keys[i] for i in rng.choice(n, 105, replace=False)]
    fits = []
    for _ in range(3):
        t0 = time.perf_counter()
        model = fit_user_model(features, liked[:100], liked[100:])
        fits.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    score(features, model, k=20, min_similarity=0)
    everything = time.perf_counter() - t0
    period = [keys[i] for i in rng.choice(n, 2000, replace=False)]
    t0 = time.perf_counter()
    score(features, model, period, k=20, min_similarity=0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    score(features, model, period, k=20, min_similarity=0)
    again = time.perf_counter() - t0
    return (f"timing on {n:,} synthetic papers ({len(lex.docs):,} postings; BM25 build {build:.1f} s, "
            f"tf-idf norms and id order once {1000 * once:.0f} ms):\n"
            f"  fit, 100 likes + 5 not relevant + 300 background: {1000 * min(fits):.0f} ms (best of 3; "
            f"{model.iterations} Newton steps, {len(model.terms):,} terms)\n"
            f"  score all {n:,} papers: {1000 * everything:.0f} ms; a 2,000-paper period: {1000 * first:.0f} ms "
            f"first, {1000 * again:.0f} ms for the next user")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timing", type=int, default=0, metavar="N", help="also time a fit on N synthetic papers")
    args = ap.parse_args()
    papers = load_corpus(args.seed)
    vectors = embed(papers)
    per_run, counts, stats = [], [], []
    for run in range(args.runs):
        users = simulate(papers, args.users, np.random.default_rng(args.seed + run))
        result, evaluated, st = evaluate(papers, vectors, users, args.seed + run)
        per_run.append(result)
        counts.append(evaluated)
        stats.append(st)
    split = int(HISTORY * len(papers))
    print(f"python bench/recommend_bench.py --users {args.users} --runs {args.runs} --seed {args.seed}"
          + (f" --timing {args.timing}" if args.timing else ""))  # fmt: skip
    print(f"{len(papers)} real papers ({split} history, {len(papers) - split} candidates); {args.users} simulated "
          f"users a run, {np.mean(counts):.0f} evaluated on average, "
          f"{np.mean([s['likes/user'] for s in stats]):.1f} history likes a user; {args.runs} runs")  # fmt: skip
    print(f"{'method':34} {'recall@20':>16} {'recall@10':>16}")
    for name in per_run[0]:
        r20 = np.array([r[name][0] for r in per_run])
        r10 = np.array([r[name][1] for r in per_run])
        print(f"{name:34} {r20.mean():9.3f} ± {r20.std():.3f} {r10.mean():9.3f} ± {r10.std():.3f}")
    print(f"papertide fit time on this corpus: p50 {np.median([s['fit ms p50'] for s in stats]):.1f} ms, "
          f"p95 {np.median([s['fit ms p95'] for s in stats]):.1f} ms")  # fmt: skip
    if args.timing:
        print(timing(args.timing))


if __name__ == "__main__":
    main()
