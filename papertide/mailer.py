"""Handing finished messages to an SMTP server: the one place papertide speaks SMTP.

Digests go out in runs of thousands, so a :class:`Mailer` keeps one connection open for
a batch of messages, paces them to a rate limit, and sorts every failure into what the
caller must do next:

- :class:`TransientMailError` — try this message again later (4xx replies, dropped
  connections, timeouts, a refused connection), raised only after the retries here
  (exponential backoff, each on a fresh connection) are spent;
- :class:`PermanentMailError` — this message to this recipient will never go through
  (a 5xx reply to RCPT or DATA): the address can be paused;
- :class:`MailServerError` — the server or papertide's own settings are wrong (login
  refused, STARTTLS missing, an untrusted certificate, our sender address refused):
  no recipient is at fault, and the run should stop rather than pause anyone.

Settings come from one URL (``PAPERTIDE_SMTP_URL``), parsed by :meth:`SmtpSettings.from_url`.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from urllib.parse import parse_qsl, unquote, urlsplit

from papertide.errors import PapertideError

SECURITY = ("plain", "starttls", "ssl")
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_QUERY_KEYS = ("starttls", "timeout")


class MailError(PapertideError):
    """Base class of the failures of handing a message to SMTP."""


class TransientMailError(MailError):
    """The message was not accepted, but may be later: retry it in a later run."""

    def __init__(self, message: str, code: int | None = None, reply: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reply = reply


class PermanentMailError(MailError):
    """The server refused this message for this recipient for good (a 5xx reply)."""

    def __init__(self, code: int, reply: str, recipient: str) -> None:
        super().__init__(f"{recipient}: refused for good: {code} {reply}".strip())
        self.code = code
        self.reply = reply
        self.recipient = recipient


class MailServerError(MailError):
    """The server or the settings are wrong; no recipient is at fault."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "plain"  # one of SECURITY
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Parse ``smtp://[user[:pass]@]host[:port][?starttls=1&timeout=30]`` or ``smtps://…``.

        ``smtps`` is TLS from the first byte (default port 465); ``smtp`` is plain unless
        ``starttls=1`` (default port 25). User and password are percent-decoded. A
        ``ValueError`` names what is wrong and never repeats the password.
        """
        if not isinstance(url, str) or not url.strip():
            raise ValueError("SMTP URL is empty (expected smtp://[user:password@]host[:port][?starttls=1])")
        shown = redact_url(url)
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"SMTP URL {shown}: scheme must be smtp or smtps, not {parts.scheme or 'missing'!r}")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"SMTP URL {shown}: unexpected path or fragment after the host")
        host = parts.hostname
        if not host:
            raise ValueError(f"SMTP URL {shown}: no host")
        port = _port(parts, scheme, shown)
        username, password = _credentials(parts, shown)
        starttls, timeout = _query(parts.query, shown)
        if scheme == "smtps" and starttls:
            raise ValueError(f"SMTP URL {shown}: smtps is TLS from the start; starttls=1 applies to smtp:// only")
        security = "ssl" if scheme == "smtps" else "starttls" if starttls else "plain"
        return cls(host=host, port=port, security=security, username=username, password=password, timeout=timeout)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "<unparseable URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    netloc = f"{userinfo}@{hostport}" if at else hostport
    return parts._replace(netloc=netloc).geturl()


def _port(parts, scheme: str, shown: str) -> int:
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"SMTP URL {shown}: the port must be a number from 1 to 65535") from None
    if port is None:
        if parts.netloc.endswith(":"):
            raise ValueError(f"SMTP URL {shown}: empty port after ':'")
        return DEFAULT_PORTS[scheme]
    if port == 0:
        raise ValueError(f"SMTP URL {shown}: the port must be a number from 1 to 65535")
    return port


def _credentials(parts, shown: str) -> tuple[str | None, str | None]:
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at:
        return None, None
    user, colon, password = userinfo.partition(":")
    if not user:
        raise ValueError(f"SMTP URL {shown}: a password without a user name")
    if not colon:
        raise ValueError(f"SMTP URL {shown}: user {unquote(user)!r} has no password (smtp://user:password@host)")
    return unquote(user), unquote(password)


def _query(query: str, shown: str) -> tuple[bool, float]:
    starttls, timeout = False, 30.0
    for key, value in parse_qsl(query, keep_blank_values=True):
        key = key.lower()
        if key == "starttls":
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(f"SMTP URL {shown}: starttls must be 1 or 0, not {value!r}")
            starttls = value.lower() in _TRUE
        elif key == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= 3600:
                raise ValueError(f"SMTP URL {shown}: timeout must be seconds between 0 and 3600, not {value!r}")
        else:
            raise ValueError(f"SMTP URL {shown}: unknown option {key!r} (known: {', '.join(_QUERY_KEYS)})")
    return starttls, timeout


# --------------------------------------------------------------------------- the client


class _ReplyMixin:
    """Keeps the reply to DATA, which smtplib's send_message does not return."""

    last_data_reply: tuple[int, bytes] = (0, b"")

    def data(self, msg):  # type: ignore[no-untyped-def]
        reply = super().data(msg)  # type: ignore[misc]
        self.last_data_reply = reply
        return reply


class _SMTP(_ReplyMixin, smtplib.SMTP):
    pass


class _SMTPS(_ReplyMixin, smtplib.SMTP_SSL):
    pass


class Mailer:
    """One SMTP session reused for up to ``batch`` messages, paced to ``rate`` per second.

    Use as a context manager; :meth:`send` opens the connection when it is first needed.
    ``ssl_context`` replaces ``ssl.create_default_context()`` (tests trust their own CA
    with it). ``sleep`` and ``clock`` are injectable so pacing and backoff can be measured.
    """

    def __init__(self, settings: SmtpSettings, *, rate: float, batch: int = 100, retries: int = 3,
                 backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, ssl_context: ssl.SSLContext | None = None,
                 local_hostname: str | None = None) -> None:
        if settings.security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}, not {settings.security!r}")
        if rate < 0 or batch < 1 or retries < 0 or backoff < 0:
            raise ValueError("rate, retries and backoff must not be negative, and batch must be at least 1")
        self.settings = settings
        self.rate, self.batch, self.retries, self.backoff = rate, batch, retries, backoff
        self._sleep, self._clock = sleep, clock
        self._context = ssl_context
        self._local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self._on_connection = 0  # messages handed over on the current connection
        self._next_at: float | None = None  # earliest clock() for the next message
        self.connections = 0  # connections opened so far (for tests and run summaries)
        self.sent = 0
        self.last_refused: dict[str, tuple[int, bytes]] = {}  # recipients refused while others accepted

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public

    def send(self, msg: EmailMessage) -> str:
        """Hand ``msg`` over; return the server's reply to DATA (e.g. ``2.0.0 Ok: queued as …``)."""
        recipient = _first_recipient(msg)
        self._pace()
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                reply = self._send_once(msg, recipient)
            except TransientMailError as e:
                last = e
                self._drop()
                continue
            self.sent += 1
            return reply
        assert isinstance(last, TransientMailError)
        raise TransientMailError(f"{recipient}: not accepted after {self.retries + 1} attempts: {last}",
                                 last.code, last.reply) from last

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        smtp, self._smtp = self._smtp, None
        self._on_connection = 0
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    # ------------------------------------------------------------------ steps

    def _pace(self) -> None:
        if not self.rate:
            return
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            self._sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + 1.0 / self.rate

    def _send_once(self, msg: EmailMessage, recipient: str) -> str:
        try:
            smtp = self._connection()
            self._on_connection += 1
            self.last_refused = smtp.send_message(msg)
            code, reply = smtp.last_data_reply  # type: ignore[attr-defined]
        except smtplib.SMTPRecipientsRefused as e:
            raise _classify_refusal(e.recipients) from None
        except smtplib.SMTPSenderRefused as e:
            if 400 <= e.smtp_code < 500:
                raise TransientMailError(f"sender refused for now: {e.smtp_code} {_text(e.smtp_error)}",
                                         e.smtp_code, _text(e.smtp_error)) from None
            raise MailServerError(f"the server refuses the sender {e.sender!r}: {e.smtp_code} "
                                  f"{_text(e.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as e:
            raise PermanentMailError(0, f"the server cannot carry this message: {e}", recipient) from None
        except smtplib.SMTPResponseException as e:
            raise _classify_reply(e.smtp_code, _text(e.smtp_error), recipient) from None
        except (smtplib.SMTPException, OSError) as e:
            raise TransientMailError(f"connection lost while sending: {_describe(e)}") from None
        return _text(reply) if code == 250 else f"{code} {_text(reply)}"

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and self._on_connection >= self.batch:
            self.close()  # a batch is done: QUIT, and start the next one on a new connection
        if self._smtp is None:
            self._smtp = self._open()
            self.connections += 1
            self._on_connection = 0
        return self._smtp

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        context = self._tls_context() if s.security != "plain" else None
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = _SMTPS(s.host, s.port, local_hostname=self._local_hostname,
                                            timeout=s.timeout, context=context)
            else:
                smtp = _SMTP(s.host, s.port, local_hostname=self._local_hostname, timeout=s.timeout)
        except smtplib.SMTPConnectError as e:
            raise _classify_reply(e.smtp_code, _text(e.smtp_error), "", where="greeting") from None
        except ssl.SSLCertVerificationError as e:
            raise MailServerError(f"{s.host}:{s.port}: TLS certificate not trusted: {e.verify_message}") from None
        except (smtplib.SMTPException, OSError) as e:
            raise TransientMailError(f"cannot connect to {s.host}:{s.port}: {_describe(e)}") from None
        try:
            self._greet(smtp, context)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:  # loading the system's CA store takes ~0.1 s: once per Mailer
            self._context = ssl.create_default_context()
        return self._context

    def _greet(self, smtp: smtplib.SMTP, context: ssl.SSLContext | None) -> None:
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailServerError(f"{where} does not offer STARTTLS (asked for by starttls=1)")
                smtp.starttls(context=context or self._tls_context())
                smtp.ehlo()
            if s.username is not None:
                smtp.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as e:
            raise MailServerError(f"{where} refused the login of {s.username!r}: {e.smtp_code} "
                                  f"{_text(e.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError:
            raise MailServerError(f"{where} offers no AUTH, but the SMTP URL has a user name") from None
        except ssl.SSLCertVerificationError as e:
            raise MailServerError(f"{where}: TLS certificate not trusted: {e.verify_message}") from None
        except smtplib.SMTPResponseException as e:
            raise _classify_reply(e.smtp_code, _text(e.smtp_error), "", where="greeting") from None
        except (smtplib.SMTPException, OSError) as e:
            raise TransientMailError(f"{where}: connection lost while greeting: {_describe(e)}") from None

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._on_connection = 0
        if smtp is not None:
            smtp.close()


# --------------------------------------------------------------------------- helpers


def _classify_refusal(recipients: dict[str, tuple[int, bytes]]) -> MailError:
    for address, (code, reply) in recipients.items():
        if code >= 500:
            return PermanentMailError(code, _text(reply), address)
    address, (code, reply) = next(iter(recipients.items()))
    return TransientMailError(f"{address}: refused for now: {code} {_text(reply)}", code, _text(reply))


def _classify_reply(code: int, reply: str, recipient: str, where: str = "message") -> MailError:
    if 400 <= code < 500 or code < 0:
        return TransientMailError(f"{where}: refused for now: {code} {reply}", code, reply)
    if code >= 500 and where == "message":
        return PermanentMailError(code, reply, recipient)
    if code >= 500:
        return MailServerError(f"the server refused the {where}: {code} {reply}")
    return TransientMailError(f"{where}: unexpected reply {code} {reply}", code, reply)


def _first_recipient(msg: EmailMessage) -> str:
    if not isinstance(msg, EmailMessage):
        raise TypeError("Mailer.send takes an email.message.EmailMessage")
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in msg.get_all(name, [])]
    addresses = [addr for _, addr in getaddresses(fields) if addr]
    if not addresses:
        raise ValueError("the message has no recipient (no To, Cc or Bcc address)")
    if not msg.get("From") and not msg.get("Sender"):
        raise ValueError("the message has no From header")
    return addresses[0]


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(e: BaseException) -> str:
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
