"""Digest subscriptions on the web: subscribe, confirm by link, unsubscribe in one click.

- ``/subscribe``: the form (frequency; trending, categories, saved searches, and "for
  you" for signed-in users, whose upvotes and collections train it). Posting it stores a
  *pending* subscription and mails a confirmation link (after the response, when an SMTP
  server is configured; otherwise the worker's next ``digest send`` mails it). Nothing
  else goes to an address until its link is followed (double opt-in). Posts are limited
  per client address, and an address is mailed at most one link per
  :data:`CONFIRM_RESEND` seconds whoever asks, so the form cannot be used to mail-bomb someone.
- Whose subscription is it? The account it is linked to (``user_id``: set when a
  signed-in user subscribes, never taken over from another account). Account addresses
  are not verified, so a matching account address proves nothing: only the linked
  account sees, changes (once active) or stops a subscription on this page; anyone else
  gets 409 for an active address and must use the links in its mail.
- ``/subscribe/confirm/<token>``: a page with one button; pressing it (a POST) confirms.
  A GET never changes anything, so mail scanners that prefetch links confirm nothing.
- ``/unsubscribe/<token>``: the page behind a digest's unsubscribe link (a button), and the
  RFC 8058 one-click endpoint: a POST (``List-Unsubscribe=One-Click``, from a mail
  client, without cookies) unsubscribes at once. The tokens are HMAC-signed for one
  purpose, one subscription and its address (:mod:`papertide.mailtokens`), so no token
  can be forged or moved to another address; no CSRF token is needed because the
  token itself is the proof.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime, timezone

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from papertide.errors import ConflictError, NotFoundError, PapertideError
from papertide.store.mailing import Subscription
from papertide.web import auth
from papertide.web.pages_common import PAGE_METHODS, render, store
from papertide.web.session import CsrfForm, current_user

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
SUBSCRIBE_LIMIT = (10, 3600.0)  # subscription posts per client address per hour
CONFIRM_RESEND = 600.0  # seconds before a pending address is mailed another confirmation link
_SPLIT = re.compile(r"[\s,;]+")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _secret(request: Request) -> bytes:
    secret = getattr(request.app.state, "mail_secret", None)
    if secret is None:
        secret = request.app.state.mail_secret = auth.load_or_create_secret(request.app.state.config.home)
    return secret


def _limiter(request: Request) -> auth.RateLimiter:
    limiter = getattr(request.app.state, "subscribe_limiter", None)
    if limiter is None:
        limiter = request.app.state.subscribe_limiter = auth.RateLimiter(*SUBSCRIBE_LIMIT, limits=store(request).limits,
                                                                         name="subscribe")  # fmt: skip
    return limiter


def _mine(request: Request) -> Subscription | None:
    """The signed-in user's subscription: the one of their account's address, when linked to their account."""
    user = current_user(request)
    if user is None or not user.email:
        return None
    sub = store(request).mailing.subscription_by_email(user.email)
    return sub if sub is not None and sub.user_id == user.id else None


def _recently_mailed(sub: Subscription) -> bool:
    """Whether ``sub``'s address got a confirmation link less than :data:`CONFIRM_RESEND` seconds ago."""
    if not sub.confirm_sent:
        return False
    try:
        sent = datetime.fromisoformat(sub.confirm_sent.replace("Z", "+00:00"))
    except ValueError:
        return False
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - sent).total_seconds() < CONFIRM_RESEND


def _form_of(sub: Subscription | None, email: str = "") -> dict:
    if sub is None:
        return {"email": email, "every": "day", "trending": True, "categories": "", "searches": "", "for_you": False}
    return {"email": sub.email, "every": sub.every, "trending": sub.trending, "categories": " ".join(sub.categories),
            "searches": "\n".join(sub.searches), "for_you": sub.for_you}  # fmt: skip


@router.api_route("/subscribe", name="subscribe", methods=PAGE_METHODS)
def subscribe_page(request: Request) -> Response:
    user = current_user(request)
    sub = _mine(request)
    ctx = {"form": _form_of(sub, user.email if user else ""), "sub": sub}
    return render(request, "subscribe.html", ctx, headers=NO_STORE)


@router.post("/subscribe")
def subscribe(request: Request, form: CsrfForm, background: BackgroundTasks) -> Response:
    user = current_user(request)
    values = {
        "email": _text(form, "email").strip(), "every": _text(form, "every") or "day",
        "trending": bool(form.get("trending")), "categories": _text(form, "categories"),
        "searches": _text(form, "searches"), "for_you": bool(form.get("for_you")) and user is not None,
    }  # fmt: skip

    def fail(message: str, status: int = 400, headers: dict | None = None) -> Response:
        ctx = {"form": values, "sub": _mine(request), "error": message}
        return render(request, "subscribe.html", ctx, status=status, headers=NO_STORE | (headers or {}))

    key = f"ip:{request.client.host if request.client else 'unknown'}"
    wait = _limiter(request).take(key)  # every post counts; checked and counted at once for all processes
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        return fail(f"Too many subscriptions from your address. Try again in {seconds} seconds.", 429,
                    {"Retry-After": str(seconds)})  # fmt: skip
    existing = store(request).mailing.subscription_by_email(values["email"]) if values["email"] else None
    owner = user is not None and existing is not None and existing.user_id == user.id
    if existing is not None and existing.status == "active" and not owner:
        return fail("This address already receives a digest. To change it, log in with the account that uses "
                    "this address; to stop it, use the link at the end of any digest.", 409)  # fmt: skip
    try:
        sub = store(request).mailing.subscribe(
            values["email"], every=values["every"], trending=values["trending"],
            categories=tuple(c for c in _SPLIT.split(values["categories"]) if c),
            searches=tuple(s.strip() for s in values["searches"].splitlines() if s.strip()),
            for_you=values["for_you"], user_id=_link(user, existing))  # fmt: skip
    except ValueError as e:
        return fail(str(e)[:1].upper() + str(e)[1:])
    if sub.status == "pending":
        if not _recently_mailed(sub):
            background.add_task(_mail_confirmation, request.app, sub)
        return render(request, "message.html", {
            "title": "Check your inbox",
            "message": f"We sent a confirmation link to {sub.email}. Nothing else is sent to this address "
                       "until the link is followed.",
        }, headers=NO_STORE)  # fmt: skip
    return RedirectResponse("/subscribe?saved=1", status_code=303)


def _link(user, existing: Subscription | None) -> int | None:
    """The account to link the subscription to: the signed-in user's, unless another account has it
    (None keeps the existing link)."""
    if user is None or (existing is not None and existing.user_id not in (None, user.id)):
        return None
    return user.id


def _mail_confirmation(app, sub: Subscription) -> None:
    """After the response: mail the link now when SMTP is configured (else the worker will)."""
    config = app.state.config
    if not config.smtp_url:
        return
    from papertide.digest_send import Links, send_confirmation
    from papertide.mailer import MailError, Mailer, SmtpSettings

    secret = getattr(app.state, "mail_secret", None) or auth.load_or_create_secret(config.home)
    try:
        with Mailer(SmtpSettings.from_url(config.smtp_url), rate=0, retries=1) as mailer:
            send_confirmation(app.state.store, config, mailer, Links(config, secret), sub)
    except (MailError, PapertideError, ValueError) as e:
        log.warning("confirmation mail to %s not sent now (%s); the next digest run retries", sub.email, e)


def _from_token(request: Request, purpose: str, token: str) -> Subscription:
    from papertide.mailtokens import check_token, token_id

    try:
        sub = store(request).mailing.subscription(token_id(token))
    except (ValueError, NotFoundError):
        sub = None
    if sub is None or not check_token(_secret(request), purpose, token, sub.email):
        raise HTTPException(404, "This link is not valid: it may have been copied incompletely.")
    return sub


@router.api_route("/subscribe/confirm/{token}", name="confirm", methods=PAGE_METHODS)
def confirm_page(request: Request, token: str) -> Response:
    sub = _from_token(request, "confirm", token)
    return render(request, "mail_action.html", {
        "title": "Confirm your subscription", "action": f"/subscribe/confirm/{token}", "button": "Confirm",
        "message": f"Send the {'daily' if sub.every == 'day' else 'weekly'} papertide digest to {sub.email}?",
        "details": _details(request, sub), "done": sub.status == "active",
        "ended": "This subscription was ended. Subscribe again to receive digests."
                 if sub.status in ("unsubscribed", "paused") else None,
    }, headers=NO_STORE)  # fmt: skip


def _details(request: Request, sub: Subscription) -> str:
    """What the confirmed subscription brings, and whose upvotes choose "for you" (the mailbox's holder decides)."""
    from papertide.digest_mail import describe

    text = f"It is {describe(sub)}."
    if sub.for_you and sub.user_id is not None:
        try:
            name = store(request).community.user(sub.user_id).username
        except NotFoundError:
            return text
        text += f" The papers for you are learned from the papertide account “{name}”."
    return text


@router.post("/subscribe/confirm/{token}")
def confirm(request: Request, token: str) -> Response:
    sub = _from_token(request, "confirm", token)
    try:
        sub = store(request).mailing.confirm(sub.id)
    except ConflictError:
        return render(request, "message.html", {
            "title": "Subscription ended",
            "message": "This subscription was ended. Subscribe again to receive digests.",
        }, status=409, headers=NO_STORE)  # fmt: skip
    return render(request, "message.html", {
        "title": "Subscription confirmed",
        "message": f"{sub.email} will receive the {'daily' if sub.every == 'day' else 'weekly'} digest. Every "
                   "digest has a link to unsubscribe.",
    }, headers=NO_STORE)  # fmt: skip


@router.api_route("/unsubscribe/{token}", name="unsubscribe", methods=PAGE_METHODS)
def unsubscribe_page(request: Request, token: str) -> Response:
    sub = _from_token(request, "unsubscribe", token)
    return render(request, "mail_action.html", {
        "title": "Unsubscribe", "action": f"/unsubscribe/{token}", "button": "Unsubscribe",
        "message": f"Stop sending papertide digests to {sub.email}?", "done": sub.status == "unsubscribed",
    }, headers=NO_STORE)  # fmt: skip


@router.post("/unsubscribe/{token}")
def unsubscribe(request: Request, token: str) -> Response:
    """The button's POST and RFC 8058's one-click POST alike (no cookies, no CSRF token)."""
    sub = _from_token(request, "unsubscribe", token)
    store(request).mailing.unsubscribe(sub.id, "unsubscribed by link")
    return render(request, "message.html", {
        "title": "Unsubscribed", "message": f"No more digests go to {sub.email}.",
    }, headers=NO_STORE)  # fmt: skip


@router.post("/subscribe/stop")
def stop(request: Request, form: CsrfForm) -> Response:  # noqa: ARG001 - the dependency checks CSRF
    """A signed-in user ends the subscription of their account's address."""
    sub = _mine(request)
    if sub is not None:
        store(request).mailing.unsubscribe(sub.id, "unsubscribed on the settings page")
    return RedirectResponse("/subscribe", status_code=303)
