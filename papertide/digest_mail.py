"""Turning a composed :class:`~papertide.digest.Digest` into the mail a subscriber reads.

Mail clients are a narrower world than browsers: no scripts, no stylesheets they can be
trusted to read, images blocked by default. So the HTML part is a table layout with
inline styles and no images, the plain-text part says the same thing, and both come
from Jinja2 templates in ``mail_templates/`` (HTML autoescaped: titles and abstracts are
untrusted and may carry markup or TeX, which is shown as text). The headers make it a
well-behaved bulk mail: ``List-Unsubscribe`` with RFC 8058 one-click POST, ``List-Id``,
``Auto-Submitted``. Sending is :mod:`papertide.mailer`'s business, not this module's.

Headers are stored as their wire text and never refolded (:data:`_POLICY`): the
``List-Unsubscribe`` URL is longer than a 78-character line, and refolding it turned it
into RFC 2047 encoded words, which no mail client reads as a URL. Speed matters too (a
run renders 10,000 of these, ``bench/digest_bench.py``): what repeats across digests
(a paper's entry, its wrapped text, the encoded Subject) is computed once, and the two
quoted-printable parts are encoded by :func:`binascii.b2a_qp` rather than by the email
package's pure-Python encoder.
"""

from __future__ import annotations

import re
import textwrap
from binascii import b2a_qp
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, getaddresses, make_msgid
from functools import cache, lru_cache
from pathlib import Path
from urllib.parse import quote
from uuid import uuid4

import jinja2

from papertide.digest import Digest, DigestItem, period_bounds
from papertide.store.mailing import Subscription

TEMPLATES_DIR = Path(__file__).parent / "mail_templates"
MAX_AUTHORS = 6  # more than this and the list ends in "et al."
SNIPPET_CHARS = 320  # a second sentence is added only while the snippet stays within this

# Words that end in a full stop without ending a sentence (lowercased, without the final ".").
_ABBREVIATIONS = frozenset(
    "al cf ca ch dr eq eqs et etc fig figs incl mr ms no nos pp prof ref refs resp sec secs st tab vol vs viz approx".split()
)
_BOUNDARY = re.compile(r"([.!?…])([\"'”’)\]]*)\s+(?=[\"“‘(\[$]?[A-Z0-9\\])")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # e.g, i.e, U.S (the final dot is the boundary's)
_SPACE = re.compile(r"\s+")
_POLICY = policy.default.clone(refold_source="none")  # headers go out as set (see the module docstring)


# --------------------------------------------------------------------------- text helpers


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; does not split after "e.g.", "et al.", "Fig.", initials or in decimals."""
    text = _SPACE.sub(" ", text or "").strip()
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.group(1) == "." and _is_abbreviation(text[start:m.start()]):
            continue
        sentences.append(text[start:m.end(2)].strip())
        start = m.end()
    if start < len(text):
        sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _is_abbreviation(before: str) -> bool:
    words = before.rsplit(" ", 1)
    word = words[-1].lstrip("([\"“'") if words else ""
    if not word:
        return False
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. Smith"
    return word.lower() in _ABBREVIATIONS or bool(_DOTTED.fullmatch(word))


def snippet(abstract: str, *, max_chars: int = SNIPPET_CHARS) -> str:
    """The abstract's first sentence, and its second while both fit in ``max_chars``."""
    sentences = split_sentences(abstract)
    if not sentences:
        return ""
    text = sentences[0]
    if len(sentences) > 1 and len(text) + 1 + len(sentences[1]) <= max_chars:
        text = f"{text} {sentences[1]}"
    if len(text) > max_chars:
        text = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    return text


def short_authors(authors: list[str], limit: int = MAX_AUTHORS) -> str:
    """"A, B and C"; past ``limit`` names the first ``limit`` and "et al."."""
    names = [_SPACE.sub(" ", a).strip() for a in authors if a and a.strip()]
    if len(names) > limit:
        return ", ".join(names[:limit]) + " et al."
    if len(names) > 1:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return names[0] if names else ""


def paper_link(base_url: str, paper_id: str) -> str:
    """The paper's page: ``{base_url}/paper/{id}``, the id quoted as the web app quotes it."""
    return base_url.rstrip("/") + "/paper/" + quote(paper_id, safe="/:")


def describe(subscription: Subscription) -> str:
    """What a subscription brings, in words: "a daily digest of trending papers and cs.CL"."""
    kinds = []
    if subscription.trending:
        kinds.append("trending papers")
    kinds.extend(subscription.categories)
    if subscription.searches:
        n = len(subscription.searches)
        kinds.append(f"{n} saved search{'es' if n > 1 else ''}")
    if subscription.for_you:
        kinds.append("papers picked for you")
    what = (", ".join(kinds[:-1]) + " and " + kinds[-1]) if len(kinds) > 1 else (kinds[0] if kinds else "papers")
    return f"a {'daily' if subscription.every == 'day' else 'weekly'} digest of {what}"


def period_label(period: str) -> str:
    """"25 Nov 2026" for a day, "23–29 Nov 2026" for a week."""
    first, last = period_bounds(period)
    if first == last:
        return f"{first.day} {first:%b %Y}"
    if first.month == last.month:
        return f"{first.day}–{last.day} {last:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


# --------------------------------------------------------------------------- messages


def render_digest(digest: Digest, *, base_url: str, sender: str, unsubscribe_url: str, preferences_url: str,
                  message_id: str | None = None, date: datetime | None = None,
                  list_id: str | None = None) -> EmailMessage:
    """The digest as a multipart/alternative message (text, then HTML) with bulk-mail headers."""
    sub = digest.subscription
    sections = [{"heading": heading, "items": [_item(base_url, it) for it in items]}
                for heading, items in digest.sections if items]
    context = {
        "title": _one_line(digest.title), "period": period_label(digest.period), "what": describe(sub),
        "email": sub.email, "sections": sections, "base_url": base_url.rstrip("/"),
        "unsubscribe_url": unsubscribe_url, "preferences_url": preferences_url,
        "preheader": _preheader(sections),
    }
    msg = _message(sender, sub.email, context["title"], message_id=message_id, date=date)
    _header(msg, "List-Id", list_id or f"papertide {'daily' if sub.every == 'day' else 'weekly'} digest "
                                       f"<digest.{_domain(sender)}>")  # fmt: skip
    _header(msg, "List-Unsubscribe", f"<{_url(unsubscribe_url)}>")
    _header(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    _header(msg, "Precedence", "bulk")
    _bodies(msg, "digest", context)
    return msg


def render_confirmation(email: str, confirm_url: str, *, sender: str, base_url: str = "",
                        subscription: Subscription | None = None, message_id: str | None = None,
                        date: datetime | None = None) -> EmailMessage:
    """The double opt-in mail: one link that confirms the address; nothing else is sent before."""
    context = {
        "email": email, "confirm_url": confirm_url, "base_url": base_url.rstrip("/"),
        "what": describe(subscription) if subscription else "papertide digests",
        "title": "Confirm your papertide subscription",
    }
    msg = _message(sender, email, context["title"], message_id=message_id, date=date)
    _bodies(msg, "confirm", context)
    return msg


def write_preview(msg: EmailMessage, path_stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.eml`` (the whole message) and ``<stem>.html`` (its HTML part)."""
    stem = Path(path_stem)
    html = html_body(msg)
    stem.parent.mkdir(parents=True, exist_ok=True)
    eml_path, html_path = stem.with_name(stem.name + ".eml"), stem.with_name(stem.name + ".html")
    eml_path.write_bytes(bytes(msg))
    html_path.write_text(html, encoding="utf-8")
    return eml_path, html_path


def html_body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    if part is None:
        raise ValueError("the message has no HTML part")
    return part.get_content()


def text_body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        raise ValueError("the message has no plain-text part")
    return part.get_content()


# --------------------------------------------------------------------------- internals


def _item(base_url: str, item: DigestItem) -> dict[str, object]:
    p = item.paper
    return _entry(base_url, p.id, p.title, p.abstract, tuple(p.authors), p.categories[0] if p.categories else "",
                  item.upvotes, item.reason)  # fmt: skip


@lru_cache(maxsize=8192)
def _entry(base_url: str, pid: str, title: str, abstract: str, authors: tuple[str, ...], category: str,
           upvotes: int, reason: str) -> dict[str, object]:  # fmt: skip
    """One paper's entry; the same paper with the same reason recurs in many digests of a run
    (templates only read it)."""
    return {
        "url": paper_link(base_url, pid), "title": _one_line(title) or pid, "authors": short_authors(list(authors)),
        "snippet": snippet(abstract), "upvotes": upvotes, "upvotes_label": f"{upvotes} upvote{'' if upvotes == 1 else 's'}",
        "reason": _one_line(reason), "category": category,
    }


def _preheader(sections: list[dict]) -> str:
    titles = [it["title"] for s in sections for it in s["items"]][:3]
    return " · ".join(titles)[:140]


def _message(sender: str, to: str, subject: str, *, message_id: str | None, date: datetime | None) -> EmailMessage:
    domain = _domain(sender)
    msg = EmailMessage(policy=_POLICY)
    _header(msg, "From", sender)
    _header(msg, "To", str(_address(to)))
    _header(msg, "Subject", subject)
    _header(msg, "Date", format_datetime(date or datetime.now(timezone.utc)))
    _header(msg, "Message-ID", message_id or make_msgid(idstring="digest", domain=domain))
    _header(msg, "MIME-Version", "1.0")
    _header(msg, "Auto-Submitted", "auto-generated")
    return msg


def _header(msg: MIMEPart, name: str, value: str) -> None:
    """Add a header as its wire text: as given when it is printable ASCII, else folded and
    RFC 2047-encoded by the email package (once per distinct value)."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"a {name} header cannot contain a line break: {value[:80]!r}")
    plain = value.isascii() and value.isprintable() and len(value) <= 900
    msg.set_raw(name, value if plain else _folded(name, value))


@lru_cache(maxsize=1024)
def _folded(name: str, value: str) -> str:
    wire = _POLICY.header_factory(name, value).fold(policy=_POLICY)  # "Name: value\n" with continuation lines
    return wire[len(name) + 1 :].lstrip(" ").rstrip("\r\n")


def _url(url: str) -> str:
    """A URL that can go into a header as it is (RFC 2369 angle brackets around it)."""
    if not (url.isascii() and url.isprintable()) or any(c in url for c in " <>"):
        raise ValueError(f"a header URL must be printable ASCII without spaces or angle brackets: {url[:80]!r}")
    return url


def _bodies(msg: EmailMessage, name: str, context: dict[str, object]) -> None:
    """multipart/alternative: the text part, then the HTML part, both quoted-printable UTF-8."""
    env = _env()
    text = env.get_template(f"{name}.txt").render(context)
    html = env.get_template(f"{name}.html").render(context)
    # "=_" never occurs in quoted-printable text (a literal "=" is written "=3D")
    msg.set_raw("Content-Type", f'multipart/alternative; boundary="=_{uuid4().hex}"')
    msg.attach(_text_part(text, "plain"))
    msg.attach(_text_part(html, "html"))


def _text_part(text: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_raw("Content-Transfer-Encoding", "quoted-printable")
    part.set_payload(b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def _address(to: str) -> Address:
    if not isinstance(to, str) or to.count("@") != 1 or any(c in to for c in "\r\n<>,; "):
        raise ValueError(f"not a single email address: {to!r}")
    user, domain = to.strip().split("@")
    if not user or not domain:
        raise ValueError(f"not a single email address: {to!r}")
    return Address(addr_spec=to.strip())


def _domain(sender: str) -> str:
    addresses = [a for _, a in getaddresses([sender]) if "@" in a]
    if len(addresses) != 1:
        raise ValueError(f"the sender must be one address, like 'papertide <digest@example.org>', not {sender!r}")
    return addresses[0].rsplit("@", 1)[1]


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text or "").strip()


@lru_cache(maxsize=16384)
def _wrap(text: str, width: int = 72, indent: str = "") -> str:
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap
    return env
