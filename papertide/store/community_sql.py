"""The community store: the :class:`Community` interface in SQL both backends run.

It shares the store's :class:`~papertide.store.db.Database`, so votes and papers live in
one database and one transaction discipline. A vote is an ``INSERT ... ON CONFLICT DO
NOTHING`` on the ``(paper_id, user_id)`` primary key and its count is read back in the
same transaction, so the stored counts are exact under any concurrency, on SQLite
(whose writers take turns) and on PostgreSQL (where they do not). Reads that decide a
write lock what they read (:attr:`Tx.for_update`) or take a key (:meth:`Tx.serialize`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Callable, Iterable

from papertide.errors import ConflictError, NotFoundError
from papertide.store.community import (
    TIME_FORMAT,
    Collection,
    CollectionItem,
    Comment,
    Community,
    Session,
    Submission,
    User,
    check_body,
    check_day,
    check_email,
    check_flag,
    check_id,
    check_page,
    check_paper_id,
    check_role,
    check_secret,
    check_status,
    check_text,
    check_username,
    instant,
    paper_ids_of,
    thread_order,
    username_key,
)
from papertide.store.rows import dumps, now_iso
from papertide.store.db import Part, Tx, UniqueViolation, chunks

_TOKEN_TOUCH = timedelta(minutes=1)  # last_used is written at most this often per token

_USER = "SELECT id, username, email, role, created, password_hash, settings FROM users"
_COMMENT = (
    "SELECT c.id, c.paper_id, c.user_id, u.username, c.parent_id, c.body, c.created, c.hidden "
    "FROM comments c JOIN users u ON u.id = c.user_id"
)
_COLLECTION = (
    "SELECT c.id, c.user_id, u.username, c.name, c.description, c.public, c.created, "
    "(SELECT COUNT(*) FROM collection_items i WHERE i.collection_id = c.id) "
    "FROM collections c JOIN users u ON u.id = c.user_id"
)
_SUBMISSION = "SELECT id, user_id, raw, paper_id, status, message, created FROM submissions"
_NOT_HIDDEN = "{col} NOT IN (SELECT paper_id FROM hidden_papers)"
_ID_TABLES = frozenset({"users", "api_tokens", "comments", "collections", "submissions"})  # keyed by a generated id

_name = partial(check_text, what="a collection name", low=1, high=100)
_description = partial(check_text, what="a description", low=0, high=2_000)
_message = partial(check_text, what="a message", low=0, high=2_000)
_password = partial(check_secret, what="a password hash")


def _user(row: tuple) -> User:
    return User(*row[:6], settings=json.loads(row[6]))


def _comment(row: tuple) -> Comment:
    return Comment(*row[:7], hidden=bool(row[7]))


def _collection(row: tuple) -> Collection:
    cid, uid, username, name, description, public, created, size = row
    return Collection(cid, uid, username, name, description, bool(public), created, size)


def _changes(**fields: tuple[object, Callable[[object], object]]) -> dict[str, object]:
    """The checked values of the fields given (not None), for an UPDATE."""
    return {k: check(v) for k, (v, check) in fields.items() if v is not None}


def _settings(settings: object) -> str:
    if not isinstance(settings, dict):
        raise ValueError("settings must be a dict")
    try:
        return dumps(settings)
    except TypeError as e:
        raise ValueError(f"settings must be JSON data: {e}") from None


class SQLCommunity(Part, Community):
    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _live_paper(db: Tx, paper_id: object) -> str:
        pid = check_paper_id(paper_id)
        row = db.execute("SELECT deleted FROM papers WHERE id = ?", (pid,)).fetchone()
        if row is None or row[0]:
            raise NotFoundError(f"no paper {pid!r} in the store")
        return pid

    @staticmethod
    def _insert(db: Tx, table: str, row: dict[str, object], suffix: str = "") -> int:
        """INSERT one row; its id (0 for tables keyed otherwise, or when ``suffix``'s
        ON CONFLICT skipped it). ``ConflictError`` when it breaks a unique constraint."""
        returning = " RETURNING id" if table in _ID_TABLES else ""
        sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) {suffix}{returning}"
        try:
            cur = db.execute(sql, tuple(row.values()))
        except UniqueViolation:
            raise ConflictError(f"that {table[:-1].replace('_', ' ')} exists already") from None
        found = cur.fetchone() if returning else None
        return found[0] if found else 0

    @staticmethod
    def _update(db: Tx, table: str, row_id: int, changes: dict[str, object]) -> None:
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            db.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*changes.values(), row_id))

    @staticmethod
    def _existing(db: Tx, table: str, what: str, row_id: object) -> int:
        rid = check_id(row_id, f"a {what} id")
        if db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (rid,)).fetchone() is None:
            raise NotFoundError(f"no {what} {rid}")
        return rid

    # --------------------------------------------------------------------- users
    def create_user(self, username: str, email: str, password_hash: str, role: str = "user") -> User:
        name = check_username(username)
        row = dict(username=name, username_key=username_key(name), email=check_email(email),
                   password_hash=_password(password_hash), role=check_role(role), settings="{}", created=now_iso())  # fmt: skip
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE username_key = ?", (row["username_key"],)).fetchone():
                raise ConflictError(f"the username {name!r} is taken")
            return _user(db.execute(f"{_USER} WHERE id = ?", (self._insert(db, "users", row),)).fetchone())

    def user(self, user_id: int) -> User:
        row = self._first(f"{_USER} WHERE id = ?", (check_id(user_id, "a user id"),))
        if row is None:
            raise NotFoundError(f"no user {user_id}")
        return _user(row)

    def user_by_name(self, username: str) -> User | None:
        if not isinstance(username, str):
            return None
        row = self._first(f"{_USER} WHERE username_key = ?", (username_key(username.strip()),))
        return _user(row) if row else None

    def update_user(
        self,
        user_id: int,
        *,
        email: str | None = None,
        password_hash: str | None = None,
        settings: dict | None = None,
        role: str | None = None,
    ) -> User:
        changes = _changes(email=(email, check_email), password_hash=(password_hash, _password),
                           settings=(settings, _settings), role=(role, check_role))  # fmt: skip
        with self._tx() as db:
            uid = self._existing(db, "users", "user", user_id)
            self._update(db, "users", uid, changes)
            return _user(db.execute(f"{_USER} WHERE id = ?", (uid,)).fetchone())

    def user_count(self) -> int:
        return self._all("SELECT COUNT(*) FROM users")[0][0]

    # ------------------------------------------------------------------ sessions
    def create_session(self, user_id: int, token_hash: str, csrf: str, expires: str) -> Session:
        session = Session(check_secret(token_hash, "a token hash"), check_id(user_id, "a user id"),
                          check_secret(csrf, "a CSRF token"), now_iso(), instant(expires))  # fmt: skip
        with self._tx() as db:
            self._existing(db, "users", "user", user_id)
            db.execute("DELETE FROM sessions WHERE expires <= ?", (session.created,))
            self._insert(db, "sessions", vars(session))
        return session

    def session(self, token_hash: str) -> Session | None:
        if not isinstance(token_hash, str):
            return None
        row = self._first(
            "SELECT token_hash, user_id, csrf, created, expires FROM sessions WHERE token_hash = ? AND expires > ?",
            (token_hash, now_iso()),
        )
        return Session(*row) if row else None

    def delete_session(self, token_hash: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def delete_sessions(self, user_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE user_id = ?", (check_id(user_id, "a user id"),))

    # ---------------------------------------------------------------- API tokens
    def create_api_token(self, user_id: int, name: str, token_hash: str) -> int:
        row = dict(user_id=check_id(user_id, "a user id"), name=check_text(name, "a token name", low=1, high=100),
                   token_hash=check_secret(token_hash, "a token hash"), created=now_iso())  # fmt: skip
        with self._tx() as db:
            self._existing(db, "users", "user", user_id)
            return self._insert(db, "api_tokens", row)

    def user_for_token(self, token_hash: str) -> User | None:
        if not isinstance(token_hash, str):
            return None
        row = self._first(
            "SELECT t.id, t.last_used, u.id, u.username, u.email, u.role, u.created, u.password_hash, u.settings "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        now = datetime.now(timezone.utc)
        if row[1] is None or row[1] < (now - _TOKEN_TOUCH).strftime(TIME_FORMAT):
            with self._tx() as db:
                db.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (now.strftime(TIME_FORMAT), row[0]))
        return _user(row[2:])

    def api_tokens(self, user_id: int) -> list[dict]:
        rows = self._all(
            "SELECT id, name, created, last_used FROM api_tokens WHERE user_id = ? ORDER BY id",
            (check_id(user_id, "a user id"),),
        )
        return [dict(zip(("id", "name", "created", "last_used"), r)) for r in rows]

    def delete_api_token(self, user_id: int, token_id: int) -> None:
        uid, tid = check_id(user_id, "a user id"), check_id(token_id, "a token id")
        with self._tx() as db:
            if db.execute("DELETE FROM api_tokens WHERE id = ? AND user_id = ?", (tid, uid)).rowcount == 0:
                raise NotFoundError(f"user {uid} has no API token {tid}")

    # --------------------------------------------------------------------- votes
    def _cast(self, user_id: int, paper_id: str, sql: str, params: Callable[[int, str], tuple]) -> int:
        with self._tx() as db:
            uid = self._existing(db, "users", "user", user_id)
            pid = self._live_paper(db, paper_id)
            db.execute(sql, params(uid, pid))
            return db.execute("SELECT COUNT(*) FROM votes WHERE paper_id = ?", (pid,)).fetchone()[0]

    def vote(self, user_id: int, paper_id: str) -> int:
        sql = "INSERT INTO votes (paper_id, user_id, created) VALUES (?, ?, ?) ON CONFLICT (paper_id, user_id) DO NOTHING"
        return self._cast(user_id, paper_id, sql, lambda uid, pid: (pid, uid, now_iso()))

    def unvote(self, user_id: int, paper_id: str) -> int:
        sql = "DELETE FROM votes WHERE paper_id = ? AND user_id = ?"
        return self._cast(user_id, paper_id, sql, lambda uid, pid: (pid, uid))

    def votes(self, paper_ids: Iterable[str]) -> dict[str, int]:
        ids = paper_ids_of(paper_ids)
        out = dict.fromkeys(ids, 0)
        for chunk, marks in chunks(ids):
            sql = f"SELECT paper_id, COUNT(*) FROM votes WHERE paper_id IN ({marks}) GROUP BY paper_id"
            out.update(self._all(sql, chunk))
        return out

    def voted(self, user_id: int, paper_ids: Iterable[str]) -> set[str]:
        uid, ids, out = check_id(user_id, "a user id"), paper_ids_of(paper_ids), set()
        for chunk, marks in chunks(ids):
            sql = f"SELECT paper_id FROM votes WHERE user_id = ? AND paper_id IN ({marks})"
            out.update(r[0] for r in self._all(sql, [uid, *chunk]))
        return out

    def vote_times(self, paper_ids: Iterable[str], since: str) -> dict[str, list[str]]:
        ids, start = paper_ids_of(paper_ids), instant(since)
        out: dict[str, list[str]] = {pid: [] for pid in ids}
        for chunk, marks in chunks(ids):
            sql = f"SELECT paper_id, created FROM votes WHERE created >= ? AND paper_id IN ({marks}) ORDER BY created"
            for pid, created in self._all(sql, [start, *chunk]):
                out[pid].append(created)
        return out

    def user_votes(self, user_id: int) -> list[tuple[str, str]]:
        sql = (
            "SELECT v.paper_id, v.created FROM votes v JOIN papers p ON p.id = v.paper_id "
            "WHERE v.user_id = ? AND p.deleted = 0 ORDER BY v.created DESC, v.paper_id"
        )
        return [(pid, at) for pid, at in self._all(sql, (check_id(user_id, "a user id"),))]

    def top_voted(
        self, since: str | None, until: str | None, limit: int = 50, offset: int = 0, *, include_hidden: bool = False
    ) -> list[tuple[str, int]]:
        where, params = ["p.deleted = 0"], []
        if since is not None:
            where.append("v.created >= ?")
            params.append(instant(since))
        if until is not None:
            where.append("v.created < ?")
            params.append(instant(until))
        if not include_hidden:
            where.append(_NOT_HIDDEN.format(col="v.paper_id"))
        sql = (
            "SELECT v.paper_id, COUNT(*) AS n FROM votes v JOIN papers p ON p.id = v.paper_id "
            f"WHERE {' AND '.join(where)} GROUP BY v.paper_id ORDER BY n DESC, v.paper_id LIMIT ? OFFSET ?"
        )
        return [(pid, n) for pid, n in self._all(sql, [*params, *check_page(limit, offset)])]

    # ---------------------------------------------------------- "not relevant"
    def mark_not_relevant(self, user_id: int, paper_id: str) -> None:
        with self._tx() as db:
            uid = self._existing(db, "users", "user", user_id)
            row = dict(user_id=uid, paper_id=self._live_paper(db, paper_id), created=now_iso())
            self._insert(db, "not_relevant", row, "ON CONFLICT (user_id, paper_id) DO NOTHING")

    def unmark_not_relevant(self, user_id: int, paper_id: str) -> None:
        uid, pid = check_id(user_id, "a user id"), check_paper_id(paper_id)
        with self._tx() as db:
            db.execute("DELETE FROM not_relevant WHERE user_id = ? AND paper_id = ?", (uid, pid))

    def not_relevant(self, user_id: int) -> set[str]:
        sql = "SELECT paper_id FROM not_relevant WHERE user_id = ?"
        return {r[0] for r in self._all(sql, (check_id(user_id, "a user id"),))}

    # ------------------------------------------------------------- daily listing
    def list_paper(self, paper_id: str, day: str, submitted_by: int | None = None) -> None:
        day = check_day(day)
        with self._tx() as db:
            pid = self._live_paper(db, paper_id)
            if submitted_by is not None:
                self._existing(db, "users", "user", submitted_by)
            row = dict(paper_id=pid, day=day, submitted_by=submitted_by, created=now_iso())
            self._insert(db, "listings", row, "ON CONFLICT (paper_id) DO NOTHING")

    def listed(self, day_from: str, day_to: str, *, include_hidden: bool = False) -> list[tuple[str, str, int | None]]:
        first, last = check_day(day_from), check_day(day_to)
        if first > last:
            raise ValueError(f"the range {first} to {last} ends before it starts")
        hidden = "" if include_hidden else " AND " + _NOT_HIDDEN.format(col="l.paper_id")
        sql = (
            "SELECT l.paper_id, l.day, l.submitted_by FROM listings l JOIN papers p ON p.id = l.paper_id "
            f"WHERE l.day BETWEEN ? AND ? AND p.deleted = 0{hidden} ORDER BY l.day, l.created, l.paper_id"
        )
        return [tuple(r) for r in self._all(sql, (first, last))]

    def listing(self, paper_ids: Iterable[str]) -> dict[str, tuple[str, int | None]]:
        out: dict[str, tuple[str, int | None]] = {}
        for chunk, marks in chunks(paper_ids_of(paper_ids)):
            sql = f"SELECT paper_id, day, submitted_by FROM listings WHERE paper_id IN ({marks})"
            out.update((pid, (day, by)) for pid, day, by in self._all(sql, chunk))
        return out

    # ------------------------------------------------------------------ comments
    def add_comment(self, paper_id: str, user_id: int, body: str, parent_id: int | None = None) -> Comment:
        body = check_body(body)
        with self._tx() as db:
            pid = self._live_paper(db, paper_id)
            uid = self._existing(db, "users", "user", user_id)
            if parent_id is not None:
                parent = db.execute(
                    "SELECT paper_id FROM comments WHERE id = ?", (check_id(parent_id, "a comment id"),)
                ).fetchone()
                if parent is None:
                    raise NotFoundError(f"no comment {parent_id}")
                if parent[0] != pid:
                    raise ValueError(f"comment {parent_id} is on another paper than {pid}")
            row = dict(paper_id=pid, user_id=uid, parent_id=parent_id, body=body, created=now_iso(), hidden=0)
            return _comment(db.execute(f"{_COMMENT} WHERE c.id = ?", (self._insert(db, "comments", row),)).fetchone())

    def comment(self, comment_id: int) -> Comment:
        row = self._first(f"{_COMMENT} WHERE c.id = ?", (check_id(comment_id, "a comment id"),))
        if row is None:
            raise NotFoundError(f"no comment {comment_id}")
        return _comment(row)

    def comments(self, paper_id: str, *, include_hidden: bool = False) -> list[Comment]:
        rows = self._all(f"{_COMMENT} WHERE c.paper_id = ?", (check_paper_id(paper_id),))
        found = [_comment(r) for r in rows]
        return thread_order(c for c in found if include_hidden or not c.hidden)

    def comment_counts(self, paper_ids: Iterable[str]) -> dict[str, int]:
        ids = paper_ids_of(paper_ids)
        out = dict.fromkeys(ids, 0)
        for chunk, marks in chunks(ids):
            sql = f"SELECT paper_id, id, parent_id, hidden FROM comments WHERE paper_id IN ({marks}) ORDER BY id"
            visible: set[int] = set()
            for pid, cid, parent, hidden in self._all(sql, chunk):  # a parent's id is below its replies'
                if not hidden and (parent is None or parent in visible):
                    visible.add(cid)
                    out[pid] += 1
        return out

    def set_comment_hidden(self, comment_id: int, hidden: bool) -> None:
        flag = check_flag(hidden, "hidden")
        with self._tx() as db:
            cid = self._existing(db, "comments", "comment", comment_id)
            db.execute("UPDATE comments SET hidden = ? WHERE id = ?", (int(flag), cid))

    # --------------------------------------------------------------- collections
    @staticmethod
    def _name_free(db: Tx, user_id: int, name: str, collection_id: int = 0) -> None:
        db.serialize(f"collection-names:{user_id}")  # two creators of one name take turns
        taken = db.execute(
            "SELECT 1 FROM collections WHERE user_id = ? AND name = ? AND id != ?", (user_id, name, collection_id)
        ).fetchone()
        if taken:
            raise ConflictError(f"you already have a collection named {name!r}")

    def create_collection(self, user_id: int, name: str, *, description: str = "", public: bool = False) -> Collection:
        now = now_iso()
        row = dict(user_id=check_id(user_id, "a user id"), name=_name(name), description=_description(description),
                   public=int(check_flag(public, "public")), created=now, updated=now)  # fmt: skip
        with self._tx() as db:
            self._existing(db, "users", "user", user_id)
            self._name_free(db, row["user_id"], row["name"])
            cid = self._insert(db, "collections", row)
            return _collection(db.execute(f"{_COLLECTION} WHERE c.id = ?", (cid,)).fetchone())

    def collection(self, collection_id: int) -> Collection:
        row = self._first(f"{_COLLECTION} WHERE c.id = ?", (check_id(collection_id, "a collection id"),))
        if row is None:
            raise NotFoundError(f"no collection {collection_id}")
        return _collection(row)

    def collections(self, user_id: int) -> list[Collection]:
        sql = f"{_COLLECTION} WHERE c.user_id = ? ORDER BY c.updated DESC, c.id DESC"
        return [_collection(r) for r in self._all(sql, (check_id(user_id, "a user id"),))]

    def public_collections(self, limit: int = 50, offset: int = 0) -> list[Collection]:
        sql = f"{_COLLECTION} WHERE c.public = 1 ORDER BY c.updated DESC, c.id DESC LIMIT ? OFFSET ?"
        return [_collection(r) for r in self._all(sql, check_page(limit, offset))]

    def update_collection(
        self, collection_id: int, *, name: str | None = None, description: str | None = None, public: bool | None = None
    ) -> Collection:
        changes = _changes(name=(name, _name), description=(description, _description),
                           public=(public, lambda v: int(check_flag(v, "public"))))  # fmt: skip
        with self._tx() as db:
            cid = self._existing(db, "collections", "collection", collection_id)
            if "name" in changes:
                owner = db.execute("SELECT user_id FROM collections WHERE id = ?", (cid,)).fetchone()[0]
                self._name_free(db, owner, str(changes["name"]), cid)
            self._update(db, "collections", cid, changes and changes | {"updated": now_iso()})
            return _collection(db.execute(f"{_COLLECTION} WHERE c.id = ?", (cid,)).fetchone())

    def delete_collection(self, collection_id: int) -> None:
        with self._tx() as db:
            cid = self._existing(db, "collections", "collection", collection_id)
            db.execute("DELETE FROM collections WHERE id = ?", (cid,))  # items go by ON DELETE CASCADE

    def add_item(self, collection_id: int, paper_id: str, note: str = "") -> None:
        note = check_text(note, "a note", low=0, high=2_000)
        now = now_iso()
        with self._tx() as db:
            cid = self._existing(db, "collections", "collection", collection_id)
            pid = self._live_paper(db, paper_id)
            row = dict(collection_id=cid, paper_id=pid, note=note, added=now)
            self._insert(db, "collection_items", row, "ON CONFLICT (collection_id, paper_id) DO UPDATE SET note = excluded.note")
            db.execute("UPDATE collections SET updated = ? WHERE id = ?", (now, cid))

    def remove_item(self, collection_id: int, paper_id: str) -> None:
        with self._tx() as db:
            cid = self._existing(db, "collections", "collection", collection_id)
            gone = db.execute(
                "DELETE FROM collection_items WHERE collection_id = ? AND paper_id = ?", (cid, check_paper_id(paper_id))
            ).rowcount
            if gone:
                db.execute("UPDATE collections SET updated = ? WHERE id = ?", (now_iso(), cid))

    def items(self, collection_id: int) -> list[CollectionItem]:
        cid = check_id(collection_id, "a collection id")
        with self._db.reading() as tx:  # the existence check and the items from one snapshot
            if tx.one("SELECT 1 FROM collections WHERE id = ?", (cid,)) is None:
                raise NotFoundError(f"no collection {cid}")
            rows = tx.execute(
                "SELECT paper_id, note, added FROM collection_items WHERE collection_id = ? ORDER BY added, paper_id",
                (cid,),
            ).fetchall()
        return [CollectionItem(*r) for r in rows]

    # --------------------------------------------------------------- submissions
    def add_submission(
        self, user_id: int, raw: str, paper_id: str | None = None, status: str = "pending", message: str = ""
    ) -> Submission:
        now = now_iso()
        row = dict(user_id=check_id(user_id, "a user id"), raw=check_text(raw, "a submission", low=1, high=2_000),
                   paper_id=None if paper_id is None else check_paper_id(paper_id), status=check_status(status),
                   message=_message(message), created=now, updated=now)  # fmt: skip
        with self._tx() as db:
            self._existing(db, "users", "user", user_id)
            sid = self._insert(db, "submissions", row)
            return Submission(*db.execute(f"{_SUBMISSION} WHERE id = ?", (sid,)).fetchone())

    def update_submission(
        self, submission_id: int, *, paper_id: str | None = None, status: str | None = None, message: str | None = None
    ) -> Submission:
        changes = _changes(paper_id=(paper_id, check_paper_id), status=(status, check_status),
                           message=(message, _message))  # fmt: skip
        with self._tx() as db:
            sid = self._existing(db, "submissions", "submission", submission_id)
            self._update(db, "submissions", sid, changes and changes | {"updated": now_iso()})
            return Submission(*db.execute(f"{_SUBMISSION} WHERE id = ?", (sid,)).fetchone())

    def pending_submissions(self, limit: int = 100) -> list[Submission]:
        sql = f"{_SUBMISSION} WHERE status = 'pending' ORDER BY created, id LIMIT ?"
        return [Submission(*r) for r in self._all(sql, (check_page(limit, 0)[0],))]

    def submissions(self, user_id: int) -> list[Submission]:
        sql = f"{_SUBMISSION} WHERE user_id = ? ORDER BY created DESC, id DESC"
        return [Submission(*r) for r in self._all(sql, (check_id(user_id, "a user id"),))]

    # ---------------------------------------------------------------- moderation
    def set_paper_hidden(self, paper_id: str, hidden: bool) -> None:
        flag = check_flag(hidden, "hidden")
        with self._tx() as db:
            if flag:
                pid = self._live_paper(db, paper_id)
                row = dict(paper_id=pid, hidden_at=now_iso())
                self._insert(db, "hidden_papers", row, "ON CONFLICT (paper_id) DO NOTHING")
            else:
                db.execute("DELETE FROM hidden_papers WHERE paper_id = ?", (check_paper_id(paper_id),))

    def hidden_papers(self) -> set[str]:
        return {r[0] for r in self._all("SELECT paper_id FROM hidden_papers")}
