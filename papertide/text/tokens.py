"""The tokenizer for paper text: the same tokens for documents and queries.

A researcher who types ``Infini-gram``, ``M\\"uller`` or ``GPT-3.5`` expects the papers
that contain it however they spell it, so text is reduced to tokens that match: Unicode
NFKC, case folding, accents removed (``Müller``, ``M\\"uller`` and ``Muller`` all give
``muller``); LaTeX commands dropped but their arguments kept (``$\\mathcal{O}(n)$`` ->
``o n``; ``\\alpha`` and a lone ``α`` -> ``alpha``); split at punctuation, except that
numbers keep inner dots (``3.5``, ``2401.17377``); a hyphenated or apostrophised word
gives its parts *and* the joined form (``in-context`` -> ``context incontext``,
``GPT-4`` -> ``gpt 4 gpt4``), so both spellings match; possessive ``'s`` dropped;
English function words (:data:`STOP_WORDS`) removed; tokens longer than
:data:`MAX_TOKEN_LENGTH` dropped. No stemming. CJK text is not segmented (a run of
ideographs is one token). One compiled regex pass does the splitting: it runs over
every abstract of a million-paper index.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

TOKENIZER_VERSION = 1  # recorded by indexes: tokens from another version do not match
MAX_TOKEN_LENGTH = 40

# English function words: pronouns, articles, prepositions, conjunctions, auxiliaries
# and connectives, plus the stray letters of "e.g.", "i.e." and contractions. Content
# words frequent in papers ("model", "paper", "propose") stay: IDF discounts them.
STOP_WORDS = frozenset(
    """a about above across after afterwards again against all almost along also although am among
    amongst an and another any are around as at be because been before being below besides between
    beyond both but by can cannot could did do does doing done down due during e each eg either else
    et etc even ever every for from further furthermore g had has have having he hence her here hers
    herself him himself his how however i ie if in into is it its itself just may me might moreover
    most much must my myself neither no nor not of off often on once only onto or other others
    otherwise our ours ourselves out over own per rather s same shall she should since so some still
    such t than that the their theirs them themselves then there thereby therefore these they this
    those though through throughout thus to too toward towards under unless until up upon us very via
    was we were what whatever when whenever where whereas whereby wherein whether which while who whom
    whose why will with within without would yet you your yours yourself yourselves""".split()
)

_GREEK = """alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau
    upsilon phi chi psi omega""".split()
_GREEK_COMMANDS = {name: name for name in _GREEK} | {
    "var" + n: n for n in ("epsilon", "theta", "kappa", "pi", "rho", "sigma", "phi")
}
_GREEK_LETTERS = dict(zip("αβγδεζηθικλμνξοπρστυφχψω", _GREEK)) | {"ς": "sigma"}
_LONE_GREEK = re.compile(r"(?<!\w)[α-ω](?!\w)")  # a symbol, not a Greek word or "μm"
# Latin letters that are not letter + accent in Unicode, folded as Lucene's ASCIIFoldingFilter does.
_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
# Combining marks left by NFKD (é -> e + U+0301): the accents that folding removes.
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# LaTeX letters (\o, \ss, {\i}) first, so that accents on them (\'{\i}) see a letter.
_LATEX_LETTER = re.compile(r"\\(ss|ae|oe|aa|o|l|i|j)(?![a-z])\s*")
_LATEX_LETTERS = {"ss": "ss", "ae": "ae", "oe": "oe", "aa": "a", "o": "o", "l": "l", "i": "i", "j": "j"}
_LATEX = re.compile(
    r"""\\["'`^~=.]\s*(?:\{\s*(?P<a1>[a-z])\s*\}|(?P<a2>[a-z]))"""  # accent on a letter: \"u \'{e}
    r"|\\[cvuhkrdbt]\{\s*(?P<a3>[a-z])\s*\}"  # lettered accent, braces: \c{c} \v{s}
    r"|\\(?P<cmd>[a-z]+)"  # a command: Greek letters become words, the rest go
    r"|\\.|(?P<gone>[{}$])"  # escaped character -> space; braces and $ vanish
)
# A word: letters and digits, possibly joined by hyphens, apostrophes or dots ("in-context",
# "o'brien", "3.5"); the joined ones are split afterwards. Possessive matching keeps it linear.
_ASCII_WORD = re.compile(r"[a-z0-9]++(?:[-'.][a-z0-9]++)*+")
_WORD = re.compile(r"[^\W_]++(?:[-\u2010'\u2019.][^\W_]++)*+")
_JOINER = re.compile(r"[-\u2010'\u2019]")
_NUMBER = re.compile(r"\d+(?:\.\d+)+")


def _fold(text: str) -> str:
    """Case-folded, compatibility-normalised text without accents (NFKC, then accents off)."""
    t = _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold()))
    t = unicodedata.normalize("NFC", t).translate(_LETTERS)
    return _LONE_GREEK.sub(lambda m: f" {_GREEK_LETTERS[m.group()]} ", t)


def _latex_replacement(m: re.Match) -> str:
    letter = m.group("a1") or m.group("a2") or m.group("a3")
    if letter:
        return letter
    cmd = m.group("cmd")
    if cmd is not None:
        name = _GREEK_COMMANDS.get(cmd)
        return f" {name} " if name else " "
    return "" if m.group("gone") else " "


def _strip_latex(text: str) -> str:
    text = _LATEX_LETTER.sub(lambda m: _LATEX_LETTERS[m.group(1)], text)
    return _LATEX.sub(_latex_replacement, text)


@lru_cache(maxsize=1 << 16)
def _parts(word: str) -> tuple[str, ...]:
    """The parts of a joined word: "gpt-3.5" -> gpt 3.5, "2401.17377v2" -> 2401.17377 v2, "model's" -> model."""
    if word.endswith(("'s", "\u2019s")):
        word = word[:-2]
    parts: list[str] = []
    for piece in _JOINER.split(word):
        number = _NUMBER.match(piece)  # a number keeps its inner dots; other dots split
        if number:
            parts.append(number.group())
            piece = piece[number.end() :]
        parts += piece.split(".")
    return tuple(p for p in parts if p)


@lru_cache(maxsize=1 << 16)
def _expand(word: str) -> tuple[str, ...]:
    """A joined word's index tokens: its parts, then (if hyphen- or apostrophe-joined) the joined form."""
    parts = _parts(word)
    out = [p for p in parts if p not in STOP_WORDS]
    joined = "".join(parts)
    if len(parts) > 1 and _JOINER.search(word) and joined not in STOP_WORDS and not joined.replace(".", "").isdigit():
        out.append(joined)
    return tuple(out)


def _words(text: str) -> list[str]:
    """Normalised words (joined ones not yet split): folding, LaTeX, then one regex pass."""
    ascii_text = text.isascii()
    t = text.lower() if ascii_text else _fold(text)
    if "\\" in t or "$" in t or "{" in t:
        t = _strip_latex(t)
    return (_ASCII_WORD if ascii_text else _WORD).findall(t)


def tokenize(text: str) -> list[str]:
    """Index tokens of ``text`` in text order, each joined compound right after its parts.

    >>> tokenize("Infini-gram: Scaling Unbounded n-gram Language Models")
    ['infini', 'gram', 'infinigram', 'scaling', 'unbounded', 'n', 'gram', 'ngram', 'language', 'models']
    """
    if not text:
        return []
    if not isinstance(text, str):
        raise TypeError(f"tokenize() takes a string, got {type(text).__name__}")
    tokens = [w for w in _words(text) if w not in STOP_WORDS]
    if not all(map(str.isalnum, tokens)):
        out: list[str] = []
        for w in tokens:
            if w.isalnum():
                out.append(w)
            else:
                out += _expand(w)
        tokens = out
    if tokens and max(map(len, tokens)) > MAX_TOKEN_LENGTH:
        tokens = [w for w in tokens if len(w) <= MAX_TOKEN_LENGTH]
    return tokens


def phrase_words(text: str) -> list[str]:
    """Every word of ``text`` in order, for exact phrase checks on token runs.

    Normalised as :func:`tokenize` does, but stop words stay and a joined word gives
    only its parts, so "language of models" does not contain "language models" and
    "in-context learning" contains "context learning".
    """
    out: list[str] = []
    for w in _words(text) if text else ():
        if w.isalnum():
            out.append(w)
        else:
            out += _parts(w)
    return out


def tokenize_query(text: str) -> list[str]:
    """Query tokens: exactly :func:`tokenize`, since a query matches only what the index holds.

    Exact phrases are checked on :func:`phrase_words` (stop words kept) of the phrase
    and of the candidate's text, so they need nothing special here.
    """
    return tokenize(text)
