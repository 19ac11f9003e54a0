"""Reading bounces: which addresses the mail system could not deliver to, and why.

An SMTP server can accept a digest (250) and fail to deliver it later; it then mails a
delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``)
back to the envelope sender. This module reads those — one message as bytes, or a file
holding one message (``.eml``) or many (mbox) — and returns the recipients whose
delivery *failed*, so the caller can record the bounce and pause the address. Delays
("Action: delayed") and successes are not bounces. Ordinary mail (an out-of-office
reply, a human answer) is not a DSN and yields nothing; a DSN that breaks the RFC's
rules is a :class:`~papertide.errors.FormatError` naming what is missing.
"""

from __future__ import annotations

import email
import mailbox
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Iterator

from papertide.errors import FormatError

ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")  # RFC 3464 section 2.3.3
_STATUS_PARTS = ("message/delivery-status", "message/global-delivery-status")  # RFC 3464, RFC 6533
_SPACE = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


@dataclass(frozen=True)
class Bounce:
    recipient: str  # the address papertide sent to (Original-Recipient when given, else Final-Recipient)
    action: str  # always "failed" in what parse_bounce returns
    status: str  # the RFC 3463 status code, e.g. "5.1.1"
    diagnostic: str  # the remote server's words, e.g. "smtp; 550 5.1.1 User unknown" ("" when absent)


@dataclass
class BounceReport:
    """What a mailbox file held: the bounces, and the messages that could not be read."""

    bounces: list[Bounce] = field(default_factory=list)
    messages: int = 0
    problems: list[str] = field(default_factory=list)  # "message 3: …" for each malformed DSN

    def __iter__(self) -> Iterator[Bounce]:
        return iter(self.bounces)

    def __len__(self) -> int:
        return len(self.bounces)


def parse_bounce(raw: bytes) -> list[Bounce]:
    """The failed recipients reported by one message; [] when it is not a delivery report."""
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError("parse_bounce takes the message's bytes")
    if not raw.strip():
        raise FormatError("empty input: not an email message")
    if raw.startswith(b"From ") and b"\n" in raw:  # an mbox "From " line before a single message
        raw = raw.split(b"\n", 1)[1]
    msg = email.message_from_bytes(bytes(raw), policy=policy.compat32)
    if not msg.keys():
        raise FormatError("not an email message: no header fields before the body")
    return bounces_in(msg)


def bounces_in(msg: Message) -> list[Bounce]:
    """The failed recipients of every delivery report inside ``msg`` (also one forwarded inside it)."""
    found: list[Bounce] = []
    for part in msg.walk():
        if part.get_content_type() != "multipart/report":
            continue
        if (part.get_param("report-type") or "").lower() not in ("delivery-status", "global-delivery-status"):
            continue  # e.g. a disposition (read receipt) or feedback report: not a bounce
        found.extend(_report(part))
    return found


def read_bounces(path: str | Path) -> BounceReport:
    """Bounces in a file holding one message (.eml) or many (mbox, detected by its "From " lines).

    A malformed .eml is a :class:`FormatError`; in an mbox, a malformed message is reported
    in ``problems`` and the others are still read. The report iterates over its bounces.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(5)
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e.strerror or e}") from None
    report = BounceReport()
    if head != b"From ":  # one message: the file is that message, so its problem is the file's
        try:
            report.bounces = parse_bounce(path.read_bytes())
        except FormatError as e:
            raise FormatError(f"{path}: {e}") from None
        report.messages = 1
        return report
    box = mailbox.mbox(str(path), create=False)
    try:
        for n, key in enumerate(box.iterkeys(), start=1):
            report.messages = n
            try:
                report.bounces.extend(parse_bounce(box.get_bytes(key)))
            except FormatError as e:
                report.problems.append(f"{path}: message {n}: {e}")
    finally:
        box.close()
    return report


# --------------------------------------------------------------------------- internals


def _report(report: Message) -> list[Bounce]:
    parts = report.get_payload()
    status = [p for p in parts if isinstance(p, Message) and p.get_content_type() in _STATUS_PARTS] \
        if isinstance(parts, list) else []
    if not status:
        raise FormatError("delivery report without a message/delivery-status part (RFC 3464 section 2)")
    blocks = _blocks(status[0])
    if len(blocks) < 2:
        raise FormatError("delivery-status part has no per-recipient fields (RFC 3464 section 2.3)")
    bounces = []
    for n, block in enumerate(blocks[1:], start=1):
        bounce = _recipient(block, n)
        if bounce.action == "failed":
            bounces.append(bounce)
    return bounces


def _blocks(part: Message) -> list[dict[str, str]]:
    """The groups of fields of a delivery-status part: per-message first, then one per recipient."""
    payload = part.get_payload()
    if isinstance(payload, list) and part.get_content_type() == "message/delivery-status":
        return [_fields(block.items()) for block in payload if block.keys()]
    # message/global-delivery-status (or a status part the parser left alone): split it ourselves.
    text = _raw_payload(part).decode("utf-8", "replace")  # RFC 6533: UTF-8 fields
    groups = [g for g in _BLANK_LINE.split(text.strip()) if g.strip()]
    return [_fields(HeaderParser(policy=policy.compat32).parsestr(g + "\n").items()) for g in groups]


def _raw_payload(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):  # parsed as an embedded message: header block, then the rest as body
        return b"\n\n".join(p.as_bytes() for p in payload if isinstance(p, Message))
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else str(payload).encode("utf-8", "replace")


def _fields(items) -> dict[str, str]:
    return {name.lower(): _SPACE.sub(" ", str(value)).strip() for name, value in items}


def _recipient(fields: dict[str, str], n: int) -> Bounce:
    where = f"recipient block {n} of the delivery status"
    final = fields.get("final-recipient")
    if not final:
        raise FormatError(f"{where} has no Final-Recipient field")
    action = fields.get("action", "").lower()
    if not action:
        raise FormatError(f"{where} ({_address(final)}) has no Action field")
    if action not in ACTIONS:
        raise FormatError(f"{where} ({_address(final)}): unknown Action {action!r} (RFC 3464: {', '.join(ACTIONS)})")
    original = fields.get("original-recipient", "")
    recipient = _address(original) if original and _type(original) in ("rfc822", "utf-8") else ""
    status = fields.get("status", "").split(" ", 1)[0]
    if action == "failed" and not status:
        raise FormatError(f"{where} ({_address(final)}) has no Status field")
    return Bounce(recipient or _address(final), action, status, fields.get("diagnostic-code", ""))


def _type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower() if ";" in value else ""


def _address(value: str) -> str:
    """``rfc822; <User@Example.net>`` -> ``User@Example.net`` (the address type is dropped)."""
    address = value.split(";", 1)[1] if ";" in value else value
    return address.strip().strip("<>").strip()
