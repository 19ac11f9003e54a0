"""Comments' Markdown to safe HTML, and to plain text for feeds.

Two independent layers, so that a bug in one is not an exploit:

1. markdown-it-py's CommonMark parser with raw HTML disabled: ``<script>`` typed in a
   comment is text, shown as typed, and markdown-it already refuses ``javascript:``,
   ``vbscript:``, ``file:`` and most ``data:`` link targets.
2. nh3 (the Rust ammonia sanitiser) with an explicit allow-list of tags and attributes;
   links keep only http, https and mailto targets (or relative ones, e.g. ``/paper/…``)
   and get ``rel="nofollow noopener"``. Everything else is stripped.

Images are never shown (a comment must not make readers' browsers fetch third-party
URLs, and the page's CSP only loads images from the site): ``![alt](url)`` becomes a
plain link ``<a href="url">alt</a>``. Headings are demoted by two levels (``#`` is an
``<h3>``) so a comment cannot out-shout the page's own titles.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore

ALLOWED_TAGS = frozenset({
    "p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr", "h3", "h4", "h5", "h6",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener"
# The longest comment source the web layer should accept. Rendering is linear but not
# free: ~0.7 s for 20,000 characters of the worst input found (``"![" * 10_000``).
MAX_SOURCE_CHARS = 20_000
_HEADING_SHIFT = 2


def _demote_headings(state: StateCore) -> None:
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(int(token.tag[1]) + _HEADING_SHIFT, 6)
            token.tag = f"h{level}"


def _image_as_link(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    text = self.renderInlineAsText(token.children or [], options, env) or src
    title = token.attrGet("title")
    title_attr = f' title="{escapeHtml(str(title))}"' if title else ""
    return f'<a href="{escapeHtml(src)}"{title_attr}>{escapeHtml(text)}</a>'


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.core.ruler.push("papertide_demote_headings", _demote_headings)
    md.add_render_rule("image", _image_as_link)
    return md


_MD = _parser()


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "ol" and attr == "start":
        return value if value.isascii() and value.isdigit() and len(value) <= 9 else None
    return value


def sanitize(fragment: str) -> str:
    """An HTML fragment cut down to the comment allow-list (usable on its own, e.g. for imported HTML)."""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


@lru_cache(maxsize=2048)
def render_markdown(text: str) -> str:
    """Markdown source (a comment) to sanitised HTML, safe to put in a page unescaped.

    Cached by source text, so a busy paper page does not re-render its comments.
    """
    if not text:
        return ""
    return sanitize(_MD.render(text))


def plain_text(text: str) -> str:
    """The words of a Markdown text, without markup, on one line (images give their alt text)."""
    parts: list[str] = []
    for token in _MD.parse(text or ""):
        if token.type == "inline":
            for child in token.children or []:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
                elif child.type == "image":
                    parts.append("".join(c.content for c in child.children or []))
        elif token.type in ("fence", "code_block"):
            parts.append(" " + token.content + " ")
        elif token.nesting == -1 or token.type == "hr":
            parts.append(" ")
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def plain_snippet(text: str, n: int = 200) -> str:
    """At most ``n`` characters of :func:`plain_text`, cut at a word boundary with "…" when shortened.

    Plain text, not HTML: the caller escapes it for wherever it goes (a template, a feed).
    """
    if n < 1:
        raise ValueError("plain_snippet needs n >= 1")
    words = plain_text(text)
    if len(words) <= n:
        return words
    cut = words[: n - 1]
    space = cut.rfind(" ")
    if space > n // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"

