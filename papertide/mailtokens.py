"""Signed tokens for the links in digest mail: confirm an address, unsubscribe in one click.

A link in a mail must work without a log-in (RFC 8058 one-click unsubscribe is a bare
POST from the mail client), so the link itself carries the authority: an HMAC-SHA256
over the purpose, the subscription id and the lowercased address, keyed with the app
secret. Nothing is stored. A token made for one purpose, subscription or address never
verifies for another, and one cannot be forged without the secret.

Format: ``<subscription id>.<url-safe base64 of the 32-byte MAC, unpadded>`` — safe in
a URL path or query without quoting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

PURPOSES = ("confirm", "unsubscribe")
_DOMAIN = b"papertide-mail-token-v1"  # keeps these MACs apart from anything else keyed with the app secret
_TOKEN = re.compile(r"([1-9][0-9]{0,18})\.([A-Za-z0-9_-]{43})")


def make_token(secret: bytes, purpose: str, subscription_id: int, email: str) -> str:
    """The token for ``purpose`` on subscription ``subscription_id`` of ``email``."""
    _check_secret(secret)
    if not isinstance(subscription_id, int) or isinstance(subscription_id, bool) or subscription_id < 1:
        raise ValueError(f"subscription id must be a positive whole number, not {subscription_id!r}")
    mac = _mac(secret, purpose, subscription_id, email)
    return f"{subscription_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode('ascii')}"


def token_id(token: str) -> int:
    """The subscription id a token names (not yet verified); ``ValueError`` when malformed."""
    return _split(token)


def check_token(secret: bytes, purpose: str, token: str, email: str) -> bool:
    """Whether ``token`` was made for ``purpose`` and ``email`` (and the id it names).

    Malformed tokens are simply not valid; the MACs are compared in constant time.
    """
    _check_secret(secret)
    try:
        sid = _split(token)
    except ValueError:
        return False
    # Comparing whole canonical strings also refuses variants of the last base64 character
    # that decode to the same MAC: exactly one spelling of each token is valid.
    return hmac.compare_digest(make_token(secret, purpose, sid, email).encode("ascii"), token.encode("ascii"))


def _mac(secret: bytes, purpose: str, subscription_id: int, email: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"token purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    if not isinstance(email, str) or "@" not in email:
        raise ValueError(f"not an email address: {email!r}")
    message = b"\x00".join(
        (_DOMAIN, purpose.encode("ascii"), str(subscription_id).encode("ascii"), email.strip().lower().encode("utf-8"))
    )
    return hmac.new(secret, message, hashlib.sha256).digest()


def _split(token: str) -> int:
    m = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if not m:
        raise ValueError("malformed token: expected <subscription id>.<43 url-safe base64 characters>")
    return int(m.group(1))


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, (bytes, bytearray)) or len(secret) < 16:
        raise ValueError("the token secret must be at least 16 bytes")
