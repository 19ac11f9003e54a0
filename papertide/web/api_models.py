"""The JSON API's records: what every ``/api/`` response and request body looks like.

Pydantic models, so FastAPI validates request bodies against them and
``/api/openapi.json`` documents every field. A paper in the API is the stored record
(``papertide.paper.Paper``, with its arXiv ``comments`` field named
``author_comments`` so it is not mistaken for the community's comments) plus what the
community added: upvotes, comment count, the day papertide listed it and who
submitted it. Lists share one envelope (:class:`Listing`): ``items``, ``offset``,
``limit``, ``total`` (when it is cheap to know, else null) and ``next`` (the URL of
the next page, or null on the last one).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**62  # row ids beyond SQLite's integers are refused by validation, not by the database


class ErrorOut(BaseModel):
    """Every error: a status code and a message for a person."""

    detail: str = Field(description="What went wrong, and what to do about it.")


class VersionOut(BaseModel):
    version: int
    date: str | None = None


class Highlights(BaseModel):
    """Character spans ``[start, end)`` of the query's exact phrases and words (Python string offsets)."""

    title: list[tuple[int, int]] = Field(default_factory=list)
    abstract: list[tuple[int, int]] = Field(default_factory=list)


class PaperOut(BaseModel):
    id: str = Field(description="The canonical id: an arXiv id without version, or doi:…, beir:…, pt:….")
    url: str = Field(description="The paper's page on this papertide.")
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list, description="arXiv categories, the primary first.")
    submitted: str | None = Field(None, description="The first version's date (ISO 8601).")
    updated: str | None = None
    version: int | None = None
    versions: list[VersionOut] = Field(default_factory=list)
    doi: str | None = None
    journal_ref: str | None = None
    author_comments: str | None = Field(None, description="The authors' comments field (pages, figures, venue).")
    license: str | None = None
    links: dict[str, str] = Field(default_factory=dict, description="abs, pdf, html, code, doi… URLs.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Source-specific fields (ai_summary, …).")
    votes: int = Field(0, description="Upvotes on this papertide.")
    hf_upvotes: int = Field(0, description="Upvotes on Hugging Face Daily Papers, when imported.")
    comment_count: int = 0
    listed: str | None = Field(None, description="The day papertide listed it among its daily papers.")
    submitter: str | None = None
    voted: bool | None = Field(None, description="Whether the token's user upvoted it (null without a token).")
    score: float | None = Field(None, description="The ranker's score, in ranked lists.")
    highlights: Highlights | None = Field(None, description="Matches of the query, in search results.")


class Listing(BaseModel):
    """One page of a list of papers."""

    items: list[PaperOut]
    offset: int
    limit: int
    total: int | None = Field(None, description="How many there are in all (null when not cheap to know).")
    next: str | None = Field(None, description="The URL of the next page, or null.")


class PapersOut(Listing):
    missing: list[str] = Field(default_factory=list, description="Asked-for ids that are not papers here.")


class DailyOut(Listing):
    kind: str = Field(description="day, week or month")
    first: str = Field(description="The period's first day.")
    last: str = Field(description="The period's last day.")
    source: str = Field(description="listed: papers listed those days; submitted: none were, so the papers "
                                    "submitted (first version) those days.")  # fmt: skip
    note: str | None = None


class TrendingOut(Listing):
    window: str
    half_life_hours: float = Field(description="A vote's weight halves every this many hours.")


class SearchOut(Listing):
    query: str = Field(description="The query as read (the q text plus the filter fields).")
    mode: str
    describe: str | None = Field(None, description="A one-line summary of how the query was read.")
    notes: list[str] = Field(default_factory=list, description="What the query parser could not use, and why.")


class SimilarOut(Listing):
    paper_id: str


class AuthorOut(Listing):
    name: str = Field(description="The name as the newest paper spells it.")


class NgramCountOut(BaseModel):
    phrase: str
    tokens: list[str] = Field(description="The phrase as the n-gram engine reads it (case-folded, punctuation kept).")
    count: int = Field(description="Exact occurrences in every title and abstract.")
    papers: int | None = Field(description="Papers that contain it (null when the phrase is too frequent to list).")


# ------------------------------------------------------------------ community


class VoteOut(BaseModel):
    paper_id: str
    votes: int
    voted: bool


class NotRelevantOut(BaseModel):
    paper_id: str
    not_relevant: bool = Field(description="Whether the paper is now marked not relevant to the token's user.")


class CommentOut(BaseModel):
    id: int
    paper_id: str
    user: str = Field(description="The commenter's username.")
    parent_id: int | None = None
    body: str = Field(description="The Markdown source.")
    html: str = Field(description="The body rendered and sanitised: safe to insert as HTML.")
    created: str
    hidden: bool = False


class CommentsOut(BaseModel):
    paper_id: str
    items: list[CommentOut]
    offset: int
    limit: int
    total: int
    next: str | None = None


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=20_000, description="Markdown (no raw HTML; it is shown as text).")
    parent_id: int | None = Field(None, ge=1, le=MAX_ID, description="The comment this one replies to.")


class CollectionOut(BaseModel):
    id: int
    owner: str
    name: str
    description: str
    public: bool
    created: str
    size: int
    url: str = Field(description="The collection in this API.")


class CollectionItemOut(BaseModel):
    paper_id: str
    note: str
    added: str
    paper: PaperOut | None = Field(None, description="The paper (null if it has left the store since).")


class CollectionDetailOut(CollectionOut):
    items: list[CollectionItemOut]
    offset: int
    limit: int
    next: str | None = None


class CollectionsOut(BaseModel):
    items: list[CollectionOut]
    offset: int
    limit: int
    total: int | None = None
    next: str | None = None


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=1_000)
    description: str = Field("", max_length=10_000)
    public: bool = False


class CollectionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=1_000)
    description: str | None = Field(None, max_length=10_000)
    public: bool | None = None


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2_000)


class UserOut(BaseModel):
    username: str
    role: str
    created: str
