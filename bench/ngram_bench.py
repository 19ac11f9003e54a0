"""papertide's n-gram segment next to the infini-gram package's engine, on the same token stream.

Issue 4 asks that papertide's exact phrase counts match the engine of the ``infini-gram``
package (Liu et al., 2024) and come no slower. Everything runs in one process, and the
engines take turns block by block, so the machine's noise hits both alike.

1. **Side by side** (``--tokens``, default 1M): synthetic abstracts (bench/synth.py)
   tokenized once by papertide (``build_stream``). The same uint32 ids go into
   infini-gram's on-disk format, as its ``indexing.py`` (version 4) writes it:
   ``tokenized.0`` where each title and each abstract is its own document, opened by the
   document separator 0xffff (u16; 0xffffffff for u32), and ``offset.0`` with each
   document's byte offset as u64. Word ids stay the same (1..V), and papertide's separator
   0 becomes infini-gram's, so neither engine can match across a title or an abstract.
   The package's own indexer then builds ``table.0`` (``infini_gram.indexing.build_sa``,
   which runs its ``rust_indexing`` binary). The bench prints build time, bytes per token,
   count latency and the phrases whose counts differ. The phrases are 1 to 5 words taken at
   random corpus positions, random combinations of corpus words (mostly absent), and a few
   with an unknown word. papertide is timed on ``count`` with token strings (and text), and
   on ``id_range`` with ids. infini-gram is timed on ``count`` with ids, with its defaults
   (memory-mapped files, madvise prefetch at every bisection step) and with its fastest
   settings here (files loaded into RAM, the shallowest prefetch).
2. **Scale** (``--scale``, default 10M and 100M tokens): token ids generated with numpy,
   not tokenized text. Words are Zipf-distributed (s=1) over a vocabulary that grows by
   Heaps' law; each paper has a title of 6-15 words and an abstract of 100-249 words, each
   ended by the separator. The bench prints papertide's build time, peak memory, size and
   latency, and builds infini-gram up to ``--ig-max``. Above 65,533 words infini-gram needs
   u32 tokens, and its u32 indexer asks for 32 GiB whatever the input size, so it cannot
   run on this 24 GiB machine. The bench reports that, then runs the same size again with
   the vocabulary capped to fit u16, both engines side by side.

    python bench/ngram_bench.py                      # 1M side by side, 10M and 100M scale (~2.5 min here)
    python bench/ngram_bench.py --scale 10000000     # lighter: 10M only (~40 s)
    python bench/ngram_bench.py --scale 100000000 --ig-max 100000000  # infini-gram at 100M too (~5 min)
    BENCH_TMP=/var/tmp python bench/ngram_bench.py   # parent directory of the temporary indexes
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import synth  # noqa: E402

from papertide.text.ngram import (  # noqa: E402
    Doc,
    NgramIndex,
    build_stream,
    ngram_tokens,
    suffix_array,
    write_segment,
)

UNKNOWN = "zzzunknownword"  # a word in no corpus here


# ------------------------------------------------------------------ corpora


def synth_docs(n_tokens: int, seed: int = 0) -> list[Doc]:
    """Synthetic papers (bench/synth.py) until their stream holds about ``n_tokens`` tokens."""
    docs, total = [], 0
    for i, r in enumerate(synth.records(10**9, seed)):
        if total >= n_tokens:
            break
        total += len(ngram_tokens(r["title"])) + len(ngram_tokens(r["abstract"])) + 2
        docs.append(Doc(r["id"], i // 200, r["title"], r["abstract"]))
    return docs


def heaps_vocabulary(n_tokens: int) -> int:
    """Distinct words expected in ``n_tokens`` of text, Heaps' law V = K n^b (K=20, b=0.55)."""
    return max(1000, int(20 * n_tokens**0.55))


def zipf_stream(n_tokens: int, seed: int = 0,
                max_vocab: int | None = None) -> tuple[np.ndarray, list[str], np.ndarray, list[str], np.ndarray]:
    """A papertide stream of about ``n_tokens`` ids drawn with numpy: words Zipf (s=1.0) over a
    Heaps-law vocabulary in random id order, papers of a 6-15 word title and a 100-249 word
    abstract, each field ended by the separator 0. Same tuple as :func:`build_stream`."""
    rng = np.random.default_rng(seed)
    n_papers = max(1, n_tokens // 187)
    lengths = np.empty(2 * n_papers, dtype=np.int64)
    lengths[0::2] = rng.integers(6, 16, n_papers) + 1  # +1: the separator ending the field
    lengths[1::2] = rng.integers(100, 250, n_papers) + 1
    ends = np.cumsum(lengths)
    total = int(ends[-1])
    v = min(heaps_vocabulary(total), max_vocab or total)
    cdf = np.cumsum(1.0 / np.arange(1, v + 1))
    cdf /= cdf[-1]
    rank_to_id = rng.permutation(v).astype(np.uint32) + 1
    stream = np.empty(total, dtype=np.uint32)
    for a in range(0, total, 10_000_000):  # chunks keep the float temporaries small
        b = min(a + 10_000_000, total)
        stream[a:b] = rank_to_id[np.searchsorted(cdf, rng.random(b - a))]
    stream[ends - 1] = 0
    present = np.bincount(stream, minlength=v + 1) > 0  # keep the words that occur, ids 1..V'
    present[0] = False
    remap = np.zeros(v + 1, dtype=np.uint32)
    remap[present] = np.arange(1, int(present.sum()) + 1, dtype=np.uint32)
    stream = remap[stream]
    vocab = [f"w{i:07d}" for i in range(1, int(present.sum()) + 1)]  # sorted order = id order
    starts = np.concatenate([[0], ends[1::2]]).astype(np.int64)
    keys = [f"p{i}" for i in range(n_papers)]
    return stream, vocab, starts, keys, np.full(n_papers, -1, dtype=np.int32)


# ------------------------------------------------------------- infini-gram


def infini_gram_dtype(vocab_size: int) -> tuple[str, np.dtype, int]:
    """Token dtype name, numpy dtype and document separator value for ids 1..vocab_size."""
    if vocab_size + 2 < 2**16:  # the top value is the separator, one more for an unknown word
        return "u16", np.dtype("<u2"), 2**16 - 1
    return "u32", np.dtype("<u4"), 2**32 - 1


def write_infini_gram_stream(stream: np.ndarray, vocab_size: int, directory: Path) -> str:
    """``tokenized.0`` and ``offset.0`` as infini_gram.indexing writes them (format version 4):
    every title and every abstract one document, opened by the separator. Returns the dtype name."""
    name, dtype, sep = infini_gram_dtype(vocab_size)
    ig = np.empty(len(stream), dtype=dtype)
    ig[0] = sep
    ig[1:] = stream[:-1]  # papertide's trailing separator of field k opens document k + 1
    ig[ig == 0] = sep
    offsets = np.flatnonzero(ig == sep).astype("<u8") * dtype.itemsize
    directory.mkdir(parents=True, exist_ok=True)
    ig.tofile(directory / "tokenized.0")
    offsets.tofile(directory / "offset.0")
    return name


def build_infini_gram(directory: Path, token_width: int) -> None:
    """Build ``table.0`` with the package's own indexer (``build_sa`` driving ``rust_indexing``)."""
    from infini_gram import indexing

    ds_size = (directory / "tokenized.0").stat().st_size
    cpus = os.cpu_count() or 1
    if ds_size // cpus < 2 * indexing.HACK:  # its overlapping parts duplicate suffixes when this small
        cpus = 1
    args = argparse.Namespace(save_dir=str(directory), temp_dir=str(directory.parent / "ig-parts"), worker_id=0,
                              workers=1, shards=1, token_width=token_width, mem=8, cpus=cpus)  # fmt: skip
    os.makedirs(args.temp_dir, exist_ok=True)
    cwd, saved_fd2 = os.getcwd(), os.dup(2)
    with tempfile.TemporaryFile() as err:
        os.dup2(err.fileno(), 2)  # rust_indexing's own messages (it aborts loudly) land here
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                indexing.build_sa(args)  # chdirs into the package to run ./rust_indexing
            failed = False
        except SystemExit:
            failed = True
        finally:
            os.dup2(saved_fd2, 2)
            os.close(saved_fd2)
            os.chdir(cwd)
        err.seek(0)
        said = dict.fromkeys(ln.strip() for ln in err.read().decode(errors="replace").splitlines() if ln.strip())
    if failed:
        raise RuntimeError(f"rust_indexing exited with an error: {'; '.join(said) or 'no message'}")
    ratio = int(np.ceil(np.log2(ds_size) / 8))
    table = (directory / "table.0").stat().st_size
    if table != ds_size // token_width * ratio:
        raise RuntimeError(f"infini-gram table.0 has {table} bytes, expected {ds_size // token_width * ratio}")


def open_infini_gram(directory: Path, dtype: str, vocab_size: int, fastest: bool = False):
    """The package's engine on ``directory``: its defaults (memory-mapped, madvise prefetch 1/3
    levels deep at every bisection step) or, ``fastest``, the settings quickest here (files read
    into RAM, the shallowest prefetch it accepts: 3 madvise calls per step instead of 10)."""
    from infini_gram.engine import InfiniGramEngine

    tuning = {"load_to_ram": True, "ds_prefetch_depth": 0, "sa_prefetch_depth": 1} if fastest else {}
    return InfiniGramEngine(index_dir=str(directory), eos_token_id=0, vocab_size=max(vocab_size + 2, 65535),
                            token_dtype=dtype, **tuning)  # fmt: skip


# ------------------------------------------------------------------ phrases


def sample_phrases(stream: np.ndarray, n_present: int, n_absent: int, n_unknown: int, seed: int) -> list[list[int]]:
    """Id phrases: 1-5 words at random stream positions (never across a separator), random
    combinations of 2-5 corpus words (mostly absent), and some with an unknown word (id -1)."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = []
    while len(out) < n_present:
        p, k = int(rng.integers(0, len(stream) - 5)), int(rng.integers(1, 6))
        ids = stream[p:p + k]
        if not (ids == 0).any():
            out.append([int(i) for i in ids])
    words = stream[stream != 0]
    for _ in range(n_absent):
        out.append([int(i) for i in words[rng.integers(0, len(words), int(rng.integers(2, 6)))]])
    for _ in range(n_unknown):
        ids = [int(i) for i in words[rng.integers(0, len(words), int(rng.integers(1, 4)))]]
        ids.insert(int(rng.integers(0, len(ids) + 1)), -1)
        out.append(ids)
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def brute_count(stream: np.ndarray, ids: Sequence[int]) -> int:
    """Occurrences of ``ids`` in ``stream`` by a plain scan (the reference)."""
    n = len(stream) - len(ids) + 1
    hit = np.ones(max(n, 0), dtype=bool)
    for j, w in enumerate(ids):
        hit &= stream[j:j + n] == w
    return int(hit.sum())


# ------------------------------------------------------------------ timing


class PeakRSS:
    """The process's peak resident memory over the block (Linux: VmHWM, reset on entry)."""

    def __enter__(self) -> Self:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets the high-water mark
        except OSError:
            pass
        self.peak = 0
        return self

    def __exit__(self, *exc: object) -> None:
        with open("/proc/self/status") as f:
            kb = next((line.split()[1] for line in f if line.startswith("VmHWM:")), "0")
        self.peak = int(kb) * 1024


def timed(fn: Callable, *args: object) -> tuple:
    """``(fn(*args), seconds)``."""
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def latencies(paths: dict[str, tuple[Callable, list]], passes: int = 2,
              block: int = 25) -> dict[str, tuple[np.ndarray, list]]:
    """Per-call latency (µs) and results of each path over its prepared queries, after one
    untimed warm-up pass. The paths take turns block by block (``block`` phrases each, the
    order rotating), so drifting machine noise hits all of them while each runs warm."""
    names = list(paths)
    n = len(next(iter(paths.values()))[1])
    results = {k: [f(q) for q in qs] for k, (f, qs) in paths.items()}  # warm-up, and the results
    lat: dict[str, list[float]] = {k: [] for k in names}
    clock = time.perf_counter_ns
    for p in range(passes):
        for b, a in enumerate(range(0, n, block)):
            for j in range(len(names)):
                k = names[(b + j + p) % len(names)]
                f, qs = paths[k]
                out = lat[k]
                for q in qs[a:a + block]:
                    t = clock()
                    f(q)
                    out.append((clock() - t) / 1000)
    return {k: (np.array(lat[k]), results[k]) for k in names}


def stat_row(label: str, us: np.ndarray, extra: str = "") -> str:
    return (f"{label:<40}{np.percentile(us, 50):>9.1f}{np.percentile(us, 99):>9.1f}"
            f"{us.mean():>9.1f}{extra}")  # fmt: skip


# ------------------------------------------------------------- query paths


def papertide_paths(idx: NgramIndex, phrases: list[list[int]]) -> dict[str, tuple[Callable, list]]:
    vocab = idx.vocab
    words = [[vocab[i - 1] if i > 0 else UNKNOWN for i in p] for p in phrases]
    ids = [None if -1 in p else p for p in phrases]

    def by_ids(q: list[int] | None) -> int:
        if q is None:
            return 0
        lo, hi = idx.id_range(q)
        return hi - lo

    return {"papertide count(tokens)": (idx.count, words),
            "papertide count(text)": (idx.count, [" ".join(w) for w in words]),
            "papertide id_range(ids)": (by_ids, ids)}  # fmt: skip


def infini_gram_paths(directory: Path, dtype: str, vocab_size: int,
                      phrases: list[list[int]]) -> dict[str, tuple[Callable, list]]:  # fmt: skip
    ids = [[vocab_size + 1 if i == -1 else i for i in p] for p in phrases]
    default = open_infini_gram(directory, dtype, vocab_size)
    fast = open_infini_gram(directory, dtype, vocab_size, fastest=True)
    cpp = fast.engine
    return {"infini-gram count(ids), defaults": (lambda q: default.count(q)["count"], ids),
            "infini-gram count(ids), fastest": (lambda q: fast.count(q)["count"], ids),
            "infini-gram C++ count only, fastest": (lambda q: cpp.count(input_ids=q).count, ids)}  # fmt: skip


def report_latency(results: dict[str, tuple[np.ndarray, list[int]]], phrases: list[list[int]]) -> int:
    """Print the latency table and any count mismatch; returns the number of differing phrases."""
    ref = next(iter(results.values()))[1]
    differ = [i for i in range(len(phrases)) if len({c[i] for _, c in results.values()}) > 1]
    print(f"{'count path':<40}{'p50 µs':>9}{'p99 µs':>9}{'mean µs':>9}")
    for k, (us, _) in results.items():
        print(stat_row(k, us))
    present = sum(1 for c in ref if c > 0)
    print(f"phrases: {len(phrases)} ({present} occur, {len(phrases) - present} absent); "
          f"phrases whose counts differ between paths: {len(differ)}")  # fmt: skip
    for i in differ[:10]:
        print(f"  MISMATCH {phrases[i]}: " + ", ".join(f"{k}={c[i]}" for k, (_, c) in results.items()))
    ours, theirs = results.get("papertide count(tokens)"), results.get("infini-gram count(ids), fastest")
    if ours and theirs:
        a, b = np.percentile(ours[0], 50), np.percentile(theirs[0], 50)
        met = not differ and a <= b
        print(f"target (identical counts, papertide count(tokens) p50 <= infini-gram's fastest p50): "
              f"{'met' if met else 'NOT met'} ({a:.1f} vs {b:.1f} µs, {b / a:.1f}x)")  # fmt: skip
    return len(differ)


# ------------------------------------------------------------------ sizes


def sizes(directory: Path, core: Sequence[str], n_tokens: int) -> tuple[float, float]:
    """(bytes/token of the token and suffix-array files, bytes/token of every file)."""
    files = [f for f in directory.iterdir() if f.is_file()]
    core_bytes = sum(f.stat().st_size for f in files if f.name in core)
    return core_bytes / n_tokens, sum(f.stat().st_size for f in files) / n_tokens


def build_row(label: str, seconds: float, size: tuple[float, float] | None = None, note: str = "") -> str:
    cells = f"{size[0]:>12.2f}{size[1]:>11.2f}" if size else " " * 23
    return f"{label:<44}{seconds:>9.2f}{cells}  {note}".rstrip()


def file_sizes(directory: Path, n_tokens: int) -> str:
    """Bytes per token of each file of a segment, largest first."""
    files = sorted((f.stat().st_size, f.name) for f in directory.iterdir() if f.is_file())
    return ", ".join(f"{name} {size / n_tokens:.3f}" for size, name in reversed(files))


BUILD_HEAD = f"{'build':<44}{'seconds':>9}{'tok+SA B/t':>12}{'all B/t':>11}"


# ------------------------------------------------------------------ sections


def side_by_side(n_tokens: int, tmp: Path, n_phrases: int) -> None:
    docs = synth_docs(n_tokens)
    (stream, vocab, starts, keys, days), t_tok = timed(build_stream, docs)
    n = len(stream)
    print(f"== side by side: {len(docs):,} synthetic papers (bench/synth.py), {n:,} tokens "
          f"({int((stream == 0).sum()):,} separators), {len(vocab):,} distinct words ==")  # fmt: skip
    pt_dir, ig_dir = tmp / "pt-side", tmp / "ig-side"
    _, t_pt = timed(write_segment, pt_dir, stream, vocab, starts, keys, days)
    _, t_sa = timed(suffix_array, stream)
    dtype, t_ig_write = timed(write_infini_gram_stream, stream, len(vocab), ig_dir)
    width = 2 if dtype == "u16" else 4
    ig_error = None
    try:
        _, t_ig = timed(build_infini_gram, ig_dir, width)
    except RuntimeError as e:
        ig_error, t_ig = str(e), float("nan")
    print(BUILD_HEAD)
    print(build_row("papertide build_stream (tokenizing text)", t_tok, None, "not counted in build"))
    print(build_row("papertide write_segment (stream -> segment)", t_pt,
                    sizes(pt_dir, ["tokens.bin", "sa.bin"], n), "incl. suffix array, fsync"))  # fmt: skip
    print(build_row("  of which suffix_array() alone", t_sa, None, "measured separately"))
    if ig_error is None:
        ig_size = sizes(ig_dir, ["tokenized.0", "table.0"], n)
        print(build_row(f"infini-gram write tokenized.0/offset.0 ({dtype})", t_ig_write))
        print(build_row("infini-gram build_sa (rust_indexing)", t_ig, ig_size))
        print(build_row("infini-gram total", t_ig_write + t_ig, ig_size))
    else:
        print(f"infini-gram: its indexer could not build the index here: {ig_error}")
    idx = NgramIndex(pt_dir)
    phrases = sample_phrases(stream, n_phrases, n_phrases // 4, n_phrases // 40, seed=1)
    paths = papertide_paths(idx, phrases)
    if ig_error is None:
        paths.update(infini_gram_paths(ig_dir, dtype, len(vocab), phrases))
    results = latencies(paths)
    print()
    report_latency(results, phrases)
    checked = [p for p in phrases[:60] if -1 not in p]
    ref = results["papertide count(tokens)"][1]
    wrong = sum(brute_count(stream, p) != ref[phrases.index(p)] for p in checked)
    print(f"brute-force scan of the stream agrees on {len(checked) - wrong} of {len(checked)} phrases")
    breakdown(idx, phrases, None if ig_error else open_infini_gram(ig_dir, dtype, len(vocab), fastest=True))


def breakdown(idx: NgramIndex, phrases: list[list[int]], ig=None) -> None:
    """Where papertide's count time goes (tokenizing text, word -> id lookups, binary searches),
    and infini-gram's fixed cost per count (it starts and joins a thread per bound)."""
    known = [p for p in phrases if -1 not in p]
    words = [[idx.vocab[i - 1] for i in p] for p in known]
    texts = [" ".join(w) for w in words]
    multi = [p for p in known if len(p) > 1]
    paths = {"ngram_tokens(text)": (ngram_tokens, texts),
             "encode(tokens) (word -> id dict)": (idx.encode, words),
             "id_range(ids), 1 word (first.npy)": (idx.id_range, [p for p in known if len(p) == 1]),
             "id_range(ids), 2-5 words (2 searches)": (idx.id_range, multi)}  # fmt: skip
    if ig is not None:
        paths["infini-gram C++ count([]): no search"] = (lambda q: ig.engine.count(input_ids=q).count, [[]] * len(known))
    m = min(len(v[1]) for v in paths.values())
    res = latencies({k: (f, q[:m]) for k, (f, q) in paths.items()})
    steps = [np.log2(max(2, int(idx.first[p[0]] - idx.first[p[0] - 1]))) for p in multi]
    print(f"\nwhere papertide's count time goes ({m} phrases per row; 2-5 word searches take "
          f"~2 x {np.mean(steps):.1f} bisection steps within the first word's range):")  # fmt: skip
    print(f"{'step':<40}{'p50 µs':>9}{'p99 µs':>9}{'mean µs':>9}")
    for k, (us, _) in res.items():
        print(stat_row(k, us))


def scale_row(n_target: int, tmp: Path, n_phrases: int, ig_max: int) -> None:
    """One scale size: papertide on a Heaps-law vocabulary; infini-gram too up to ``ig_max``.
    When that vocabulary needs infini-gram's u32 tokens and its indexer cannot build them, the
    same size is run again with the vocabulary capped to fit u16, both engines side by side."""
    ig_ok = scale_case(n_target, tmp, n_phrases, with_ig=n_target <= ig_max)
    if n_target > ig_max:
        print(f"infini-gram: skipped above --ig-max {ig_max:,} tokens")
    elif not ig_ok:
        scale_case(n_target, tmp, n_phrases, with_ig=True, max_vocab=2**16 - 3)


def scale_case(n_target: int, tmp: Path, n_phrases: int, with_ig: bool, max_vocab: int | None = None) -> bool:
    """Build, size and time one generated stream; returns whether infini-gram ran on it."""
    (stream, vocab, starts, keys, days), t_gen = timed(zipf_stream, n_target, 0, max_vocab)
    n = len(stream)
    cap = f", vocabulary capped at {max_vocab:,} for infini-gram's u16" if max_vocab else ""
    print(f"\n-- {n:,} tokens, {len(vocab):,} distinct words, {len(keys):,} papers "
          f"(numpy Zipf stream, generated in {t_gen:.1f} s{cap}) --")  # fmt: skip
    pt_dir, ig_dir = tmp / f"pt-{n_target}", tmp / f"ig-{n_target}"
    shutil.rmtree(pt_dir, ignore_errors=True)
    shutil.rmtree(ig_dir, ignore_errors=True)
    with PeakRSS() as mem:
        _, t_pt = timed(write_segment, pt_dir, stream, vocab, starts, keys, days)
    print(BUILD_HEAD)
    print(build_row("papertide write_segment", t_pt, sizes(pt_dir, ["tokens.bin", "sa.bin"], n),
                    f"peak RSS {mem.peak / 2**30:.1f} GiB"))  # fmt: skip
    print(f"  papertide bytes/token by file: {file_sizes(pt_dir, n)}")
    idx, t_open = timed(NgramIndex, pt_dir)
    phrases = sample_phrases(stream, n_phrases, n_phrases // 4, n_phrases // 40, seed=2)
    paths = papertide_paths(idx, phrases)
    del paths["papertide count(text)"]
    ig_ok = False
    if with_ig:
        dtype, t_w = timed(write_infini_gram_stream, stream, len(vocab), ig_dir)
        try:
            _, t_ig = timed(build_infini_gram, ig_dir, 2 if dtype == "u16" else 4)
            child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
            print(build_row(f"infini-gram write + build_sa ({dtype})", t_w + t_ig,
                            sizes(ig_dir, ["tokenized.0", "table.0"], n), f"peak child RSS so far {child:.1f} GiB"))  # fmt: skip
            paths.update(infini_gram_paths(ig_dir, dtype, len(vocab), phrases))
            ig_ok = True
        except RuntimeError as e:
            print(f"infini-gram ({dtype}): its indexer could not build the index here: {e}")
    del stream
    gc.collect()
    print(f"papertide NgramIndex() open: {t_open * 1000:.0f} ms")
    report_latency(latencies(paths), phrases)
    autocomplete(idx, phrases)
    return ig_ok


def autocomplete(idx: NgramIndex, phrases: list[list[int]], n: int = 300) -> None:
    """Keystroke latency of ``Phrases.complete``: 0-2 whole words typed, then 1-3 letters."""
    from papertide.phrases import Phrases

    engine = Phrases(idx, None, [], 0)
    rng = np.random.default_rng(5)
    typed = []
    for ids in phrases:
        if len(typed) == n:
            break
        if not ids or 0 in ids or len(ids) < 2:
            continue
        words = [idx.vocab[i - 1] for i in ids]
        ctx = int(rng.integers(0, min(3, len(words))))
        last = words[ctx]
        typed.append(" ".join(words[:ctx] + [last[: int(rng.integers(1, 4))]]))
    us = []
    for t in typed * 2:  # a warm-up pass, then the timed one
        t0 = time.perf_counter()
        engine.complete(t, k=10)
        us.append((time.perf_counter() - t0) * 1e6)
    print(stat_row(f"papertide complete() ({len(typed)} prefixes)", np.array(us[len(typed):])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=1_000_000, help="side-by-side corpus size in tokens")
    ap.add_argument("--scale", default="10000000,100000000", help="comma-separated token counts for the scale section ('' none)")
    ap.add_argument("--ig-max", type=int, default=10_000_000, help="largest scale size that infini-gram also builds")
    ap.add_argument("--phrases", type=int, default=2000, help="phrases drawn from the corpus (plus 25%% absent)")
    args = ap.parse_args()
    scale = [int(s) for s in args.scale.split(",") if s.strip()]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ngram-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        side_by_side(args.tokens, Path(tmp), args.phrases)
        if scale:
            print("\n== scale: papertide" + (" and infini-gram" if min(scale) <= args.ig_max else "")
                  + " on generated token ids (not tokenized text); page cache warm ==")  # fmt: skip
        for n in scale:
            scale_row(n, Path(tmp), args.phrases, args.ig_max)
            gc.collect()
    print(f"\ntotal bench time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
