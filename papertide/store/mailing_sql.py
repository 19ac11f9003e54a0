"""The mailing store: the :class:`Mailing` interface in SQL both backends run.

Like :mod:`papertide.store.community_sql` it shares the store's
:class:`~papertide.store.db.Database`. Every change of a subscription reads its row
locked (:attr:`Tx.for_update`) and decides inside the same transaction, so a confirm
racing an unsubscribe never brings the address back. That is also what makes
:meth:`claim_send` exclusive: the claim locks the subscription row, then reads the send
log row, decides and writes, so of any number of threads and processes claiming the same
(subscription, period) exactly one gets it (on SQLite the write transaction excludes
every other writer anyway).

The argument checks at the top raise ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Iterable

from papertide.errors import ConflictError, NotFoundError
from papertide.paper import is_arxiv_category
from papertide.store.community import (
    TIME_FORMAT,
    check_email,
    check_flag,
    check_id,
    check_page,
    check_text,
)
from papertide.store.mailing import (
    FINAL_SEND_STATES,
    MAX_CATEGORIES,
    MAX_SEARCH_CHARS,
    MAX_SEARCHES,
    SEND_STATES,
    SUB_STATUSES,
    MailEvent,
    Mailing,
    SendRecord,
    Subscription,
)
from papertide.store.rows import dumps, now_iso
from papertide.store.db import Part, Tx

EVERY = ("day", "week")
EVENT_KINDS = ("bounce", "failure", "complaint")
PAUSING_KINDS = ("bounce", "failure")
FINISH_STATES = ("sent", "empty", "deferred", "failed")
MAX_DETAIL = 2_000
MAX_MESSAGE_ID = 500
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_SUB = (
    "SELECT id, email, user_id, every, trending, categories, searches, for_you, status, reason, "
    "created, confirmed, confirm_sent FROM subscriptions"
)
_LOG = "SELECT subscription_id, period, state, message_id, attempts, started, finished, detail, owner FROM send_log"
_EVENT = "SELECT id, email, kind, detail, created FROM mail_events"
_FINAL = "state IN ({})".format(", ".join(f"'{s}'" for s in FINAL_SEND_STATES))

# ------------------------------------------------------------------------ checks


def email_key(email: str) -> str:
    """The case-insensitive key addresses are unique by."""
    return email.strip().lower()


def check_address(email: object) -> str:
    """A required email address (see :func:`community.check_email`)."""
    email = check_email(email)
    if not email:
        raise ValueError("an email address is required")
    return email


def check_every(every: object) -> str:
    if every not in EVERY:
        raise ValueError(f"every must be one of {', '.join(EVERY)}, not {every!r}")
    return str(every)


def check_sub_status(status: object) -> str:
    if status not in SUB_STATUSES:
        raise ValueError(f"status must be one of {', '.join(SUB_STATUSES)}, not {status!r}")
    return str(status)


def period_kind(period: object) -> str:
    """``"day"`` for ``2026-11-25``, ``"week"`` for ``2026-W48``; ``ValueError`` otherwise."""
    if isinstance(period, str):
        try:
            if _DAY.fullmatch(period):
                date.fromisoformat(period)
                return "day"
            m = _WEEK.fullmatch(period)
            if m:
                date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
                return "week"
        except ValueError:
            pass
    raise ValueError(f"not a period: {period!r} (expected a day like 2026-11-25 or a week like 2026-W48)")


def _list_of_text(values: object, what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"{what} must be a list of strings, not {values!r:.80}")
    out = list(values)
    if not all(isinstance(v, str) for v in out):
        raise ValueError(f"{what} must be strings")
    return out


def check_categories(categories: object) -> tuple[str, ...]:
    """arXiv categories (``cs.CL``, ``math.AG``) or archives (``cs``, ``hep-th``), duplicates dropped."""
    cats = list(dict.fromkeys(c.strip() for c in _list_of_text(categories, "categories")))
    for c in cats:
        if not is_arxiv_category(c):
            raise ValueError(f"not an arXiv category or archive: {c[:60]!r} (like cs.CL, cs, math.AG, hep-th)")
    if len(cats) > MAX_CATEGORIES:
        raise ValueError(f"at most {MAX_CATEGORIES} categories, not {len(cats)}")
    return tuple(cats)


def check_searches(searches: object) -> tuple[str, ...]:
    """Query strings, whitespace runs folded to one space, duplicates dropped."""
    found = [" ".join(q.split()) for q in _list_of_text(searches, "searches")]
    out = tuple(dict.fromkeys(check_text(q, "a saved search", low=1, high=MAX_SEARCH_CHARS) for q in found))
    if len(out) > MAX_SEARCHES:
        raise ValueError(f"at most {MAX_SEARCHES} saved searches, not {len(out)}")
    return out


def check_message_id(message_id: object) -> str:
    """A Message-ID: 1 to 500 printable ASCII characters without spaces."""
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_MESSAGE_ID:
        raise ValueError(f"a Message-ID must be 1 to {MAX_MESSAGE_ID} characters, not {message_id!r:.80}")
    if any(not 33 <= ord(ch) <= 126 for ch in message_id):
        raise ValueError(f"a Message-ID must be printable ASCII without spaces: {message_id!r:.80}")
    return message_id


def check_lease(lease: object) -> float:
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease >= 0:
        raise ValueError(f"a lease is a number of seconds >= 0, not {lease!r}")
    return float(lease)


def clean_detail(detail: object, what: str = "a detail") -> str:
    """Diagnostic text (SMTP replies, reasons): control characters become spaces, the
    edges are stripped, and it is cut to 2,000 characters (machine text is never refused)."""
    if not isinstance(detail, str):
        raise ValueError(f"{what} must be text, not {detail!r:.80}")
    text = _CONTROL.sub(" ", detail).strip()
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


# ----------------------------------------------------------------------- records


def _subscription(row: tuple) -> Subscription:
    sid, email, uid, every, trending, cats, searches, for_you, status, reason, created, confirmed, sent = row
    return Subscription(sid, email, uid, every, bool(trending), tuple(json.loads(cats)), tuple(json.loads(searches)),
                        bool(for_you), status, reason, created, confirmed, sent)  # fmt: skip


class SQLMailing(Part, Mailing):
    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _sub(db: Tx, subscription_id: object, *, lock: bool = False) -> Subscription:
        sid = check_id(subscription_id, "a subscription id")
        row = db.execute(f"{_SUB} WHERE id = ?{db.for_update if lock else ''}", (sid,)).fetchone()
        if row is None:
            raise NotFoundError(f"no subscription {sid}")
        return _subscription(row)

    @staticmethod
    def _set(db: Tx, sid: int, **changes: object) -> Subscription:
        sets = ", ".join(f"{k} = ?" for k in changes)
        db.execute(f"UPDATE subscriptions SET {sets} WHERE id = ?", (*changes.values(), sid))
        return SQLMailing._sub(db, sid)

    # ------------------------------------------------------------- subscriptions
    def subscribe(self, email: str, *, every: str, trending: bool = False, categories: tuple[str, ...] = (),
                  searches: tuple[str, ...] = (), for_you: bool = False, user_id: int | None = None) -> Subscription:
        """Create or replace; see :meth:`Mailing.subscribe`. A re-subscription that returns to
        ``pending`` clears ``confirmed`` and ``reason``; ``user_id=None`` keeps an existing link."""
        address, every = check_address(email), check_every(every)
        trending, for_you = check_flag(trending, "trending"), check_flag(for_you, "for_you")
        cats, queries = check_categories(categories), check_searches(searches)
        if not (trending or for_you or cats or queries):
            raise ValueError("a subscription needs some content: trending, a category, a saved search or for you")
        content = dict(every=every, trending=int(trending), categories=dumps(list(cats)),
                       searches=dumps(list(queries)), for_you=int(for_you))  # fmt: skip
        uid = None if user_id is None else check_id(user_id, "a user id")
        with self._tx() as db:
            if uid is not None and db.execute("SELECT 1 FROM users WHERE id = ?", (uid,)).fetchone() is None:
                raise NotFoundError(f"no user {uid}")
            db.serialize(f"subscribe:{email_key(address)}")  # two first subscriptions of one address take turns
            old = db.execute(f"{_SUB} WHERE email_key = ?{db.for_update}", (email_key(address),)).fetchone()
            if old is None:
                row = dict(email=address, email_key=email_key(address), user_id=uid, **content, status="pending",
                           reason="", created=now_iso(), confirmed=None, confirm_sent=None)  # fmt: skip
                sql = f"INSERT INTO subscriptions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) RETURNING id"
                return self._sub(db, db.scalar(sql, tuple(row.values())))
            sub = _subscription(old)
            changes: dict[str, object] = dict(email=address, **content)
            if uid is not None:
                changes["user_id"] = uid
            if sub.status not in ("pending", "active"):
                changes.update(status="pending", reason="", confirmed=None)
            return self._set(db, sub.id, **changes)

    def subscription(self, subscription_id: int) -> Subscription:
        with self._db.reading() as tx:
            return self._sub(tx, subscription_id)

    def subscription_by_email(self, email: str) -> Subscription | None:
        if not isinstance(email, str):
            return None
        rows = self._all(f"{_SUB} WHERE email_key = ?", (email_key(email),))
        return _subscription(rows[0]) if rows else None

    @staticmethod
    def _where(status: str | None, every: str | None) -> tuple[str, list[object]]:
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(check_sub_status(status))
        if every is not None:
            where.append("every = ?")
            params.append(check_every(every))
        return (" WHERE " + " AND ".join(where)) if where else "", params

    def subscriptions(self, *, status: str | None = None, every: str | None = None,
                      limit: int = 1000, offset: int = 0) -> list[Subscription]:  # fmt: skip
        where, params = self._where(status, every)
        rows = self._all(f"{_SUB}{where} ORDER BY id LIMIT ? OFFSET ?", [*params, *check_page(limit, offset)])
        return [_subscription(r) for r in rows]

    def subscription_count(self, *, status: str | None = None) -> int:
        where, params = self._where(status, None)
        return self._all(f"SELECT COUNT(*) FROM subscriptions{where}", params)[0][0]

    def confirm(self, subscription_id: int) -> Subscription:
        with self._tx() as db:
            sub = self._sub(db, subscription_id, lock=True)
            if sub.status == "active":
                return sub
            if sub.status != "pending":
                raise ConflictError(f"subscription {sub.id} is {sub.status}: subscribe again to receive digests")
            return self._set(db, sub.id, status="active", reason="", confirmed=now_iso())

    def mark_confirm_sent(self, subscription_id: int) -> None:
        with self._tx() as db:
            self._set(db, self._sub(db, subscription_id, lock=True).id, confirm_sent=now_iso())

    def unsubscribe(self, subscription_id: int, reason: str = "") -> Subscription:
        """Any status -> unsubscribed; on one already unsubscribed nothing changes (its
        first reason stays)."""
        why = clean_detail(reason, "a reason")
        with self._tx() as db:
            sub = self._sub(db, subscription_id, lock=True)
            if sub.status == "unsubscribed":
                return sub
            return self._set(db, sub.id, status="unsubscribed", reason=why)

    def pause(self, subscription_id: int, reason: str) -> Subscription:
        """pending, active or paused -> paused with this reason; an unsubscribed one stays
        unsubscribed (pausing never brings an address back)."""
        why = clean_detail(reason, "a reason")
        with self._tx() as db:
            sub = self._sub(db, subscription_id, lock=True)
            if sub.status == "unsubscribed":
                return sub
            return self._set(db, sub.id, status="paused", reason=why)

    # ------------------------------------------------------------------ send log
    def due(self, every: str, period: str, *, limit: int = 1000, after_id: int = 0) -> list[Subscription]:
        kind, every = period_kind(period), check_every(every)
        if kind != every:
            raise ValueError(f"{period} is a {kind}, not a {every}: the period does not fit every={every!r}")
        after = check_id(after_id, "after_id")
        # walks subscriptions_due in id order; the NOT EXISTS probes send_log's primary key
        sql = (
            f"{_SUB} WHERE status = 'active' AND every = ? AND id > ? AND NOT EXISTS "
            f"(SELECT 1 FROM send_log l WHERE l.subscription_id = subscriptions.id AND l.period = ? AND l.{_FINAL}) "
            "ORDER BY id LIMIT ?"
        )
        return [_subscription(r) for r in self._all(sql, (every, after, period, check_page(limit, 0)[0]))]

    def claim_send(
        self, subscription_id: int, period: str, message_id: str, *, lease: float = 600.0, owner: str = ""
    ) -> SendRecord | None:
        """See :meth:`Mailing.claim_send`. Also None when the subscription is no longer
        ``active`` (unsubscribed or paused since :meth:`due` listed it)."""
        period_kind(period)
        mid, lease = check_message_id(message_id), check_lease(lease)
        owner = clean_detail(owner)[:200]
        with self._tx() as db:
            sub = self._sub(db, subscription_id, lock=True)
            if sub.status != "active":
                return None
            now = datetime.now(timezone.utc)
            started, expired = now.strftime(TIME_FORMAT), (now - timedelta(seconds=lease)).strftime(TIME_FORMAT)
            key = (sub.id, period)
            row = db.execute(f"{_LOG} WHERE subscription_id = ? AND period = ?", key).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO send_log (subscription_id, period, state, message_id, attempts, started, finished, "
                    "detail, owner) VALUES (?, ?, 'sending', ?, 1, ?, NULL, '', ?)",
                    (*key, mid, started, owner),
                )
            elif row[2] == "deferred" or (row[2] == "sending" and row[5] <= expired):
                db.execute(
                    "UPDATE send_log SET state = 'sending', attempts = attempts + 1, started = ?, finished = NULL, "
                    "owner = ? WHERE subscription_id = ? AND period = ?",
                    (started, owner, *key),
                )
            else:
                return None  # final, or a live claim of another sender
            return SendRecord(*db.execute(f"{_LOG} WHERE subscription_id = ? AND period = ?", key).fetchone())

    def finish_send(self, subscription_id: int, period: str, state: str, detail: str = "") -> SendRecord:
        if state not in FINISH_STATES:
            raise ValueError(f"a send finishes as one of {', '.join(FINISH_STATES)}, not {state!r}")
        period_kind(period)
        text = clean_detail(detail)
        with self._tx() as db:
            key = (check_id(subscription_id, "a subscription id"), period)
            self._sub(db, key[0], lock=True)  # a finish and a re-claim of the same send take turns
            row = db.execute(f"{_LOG} WHERE subscription_id = ? AND period = ?", key).fetchone()
            if row is None or row[2] != "sending":
                why = "no claim" if row is None else f"it is {row[2]!r}, not claimed"
                raise ValueError(f"cannot finish the send of subscription {key[0]} for {period}: {why}")
            db.execute(
                "UPDATE send_log SET state = ?, finished = ?, detail = ? WHERE subscription_id = ? AND period = ?",
                (state, now_iso(), text, *key),
            )
            return SendRecord(*db.execute(f"{_LOG} WHERE subscription_id = ? AND period = ?", key).fetchone())

    def send_log(self, *, subscription_id: int | None = None, period: str | None = None, state: str | None = None,
                 limit: int = 1000) -> list[SendRecord]:  # fmt: skip
        where, params = [], []
        if state is not None:
            if state not in SEND_STATES:
                raise ValueError(f"a send state is one of {', '.join(SEND_STATES)}, not {state!r}")
            where.append("state = ?")
            params.append(state)
        if subscription_id is not None:
            where.append("subscription_id = ?")
            params.append(check_id(subscription_id, "a subscription id"))
        if period is not None:
            period_kind(period)
            where.append("period = ?")
            params.append(period)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        sql = f"{_LOG}{clause} ORDER BY started DESC, subscription_id DESC, period DESC LIMIT ?"
        return [SendRecord(*r) for r in self._all(sql, [*params, check_page(limit, 0)[0]])]

    # --------------------------------------------------------- delivery failures
    def record_event(self, email: str, kind: str, detail: str) -> MailEvent:
        """See :meth:`Mailing.record_event`; the pause follows :meth:`pause`'s rules (an
        unsubscribed address stays unsubscribed) and its reason is the detail, or the kind
        when the detail is empty."""
        address = check_address(email)
        if kind not in EVENT_KINDS:
            raise ValueError(f"a mail event is one of {', '.join(EVENT_KINDS)}, not {kind!r}")
        text = clean_detail(detail)
        with self._tx() as db:
            row = (address, email_key(address), kind, text, now_iso())
            eid = db.scalar(
                "INSERT INTO mail_events (email, email_key, kind, detail, created) VALUES (?, ?, ?, ?, ?) RETURNING id", row
            )
            if kind in PAUSING_KINDS:
                db.execute(
                    "UPDATE subscriptions SET status = 'paused', reason = ? "
                    "WHERE email_key = ? AND status IN ('pending', 'active', 'paused')",
                    (text or kind, email_key(address)),
                )
            return MailEvent(eid, address, kind, text, row[-1])

    def events(self, email: str | None = None, *, limit: int = 100) -> list[MailEvent]:
        n = check_page(limit, 0)[0]
        if email is None:
            return [MailEvent(*r) for r in self._all(f"{_EVENT} ORDER BY id DESC LIMIT ?", (n,))]
        if not isinstance(email, str):
            raise ValueError(f"an email address must be text, not {email!r:.80}")
        rows = self._all(f"{_EVENT} WHERE email_key = ? ORDER BY id DESC LIMIT ?", (email_key(email), n))
        return [MailEvent(*r) for r in rows]
