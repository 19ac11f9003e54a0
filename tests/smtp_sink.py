"""A real SMTP server on 127.0.0.1 (aiosmtpd) that the mail tests deliver to.

It keeps every message it accepted (envelope and parsed message), counts connections,
and can misbehave on purpose: refuse given recipients or the next N messages with a
chosen 4xx/5xx reply, or drop the connection at DATA. It speaks STARTTLS or implicit
TLS (SMTPS) with a certificate the test makes (:func:`make_certificate`, which needs the
``cryptography`` package: tests skip with that reason when it is missing), and AUTH
LOGIN/PLAIN against one fixed user and password.
"""

from __future__ import annotations

import datetime
import email
import ipaddress
import logging
import ssl
import threading
import warnings
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER, PASSWORD = "digest-bot", "s3cret:p@ss/word"

# aiosmtpd warns (and logs) that AUTH without TLS is unsafe: these tests do that on purpose.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    queue_id: str
    tls: bool  # whether the session that carried it was encrypted (STARTTLS or SMTPS)
    login: str | None  # the user it logged in as, if any


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.skip("the cryptography package is not installed: no certificate for the TLS tests")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "papertide test SMTP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client_context(cert_path: Path) -> ssl.SSLContext:
    """A client context that trusts exactly the test certificate (hostname checked)."""
    return ssl.create_default_context(cafile=str(cert_path))


class SmtpSink:
    """Start with ``SmtpSink()``; ``close()`` when done. ``tls`` is None, "starttls" or "smtps"."""

    def __init__(self, *, tls: str | None = None, cert: tuple[Path, Path] | None = None,
                 auth: bool = False) -> None:
        if tls not in (None, "starttls", "smtps"):
            raise ValueError(f"tls must be None, 'starttls' or 'smtps', not {tls!r}")
        server_ctx = None
        if tls:
            if cert is None:
                raise ValueError("TLS needs cert=(cert.pem, key.pem)")
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        self.messages: list[Received] = []
        self.connections = 0
        self.logins: list[str] = []
        self.refused_logins = 0
        self._rejects: dict[str, str] = {}
        self._fail_next: list[str] = []
        self._drop_next = 0
        self.before_accept = None  # callable(number of messages accepted so far) -> a reply to refuse with, or None
        self.on_mail = None  # callable(number of messages accepted so far), when a MAIL FROM begins a message
        self._lock = threading.Lock()
        kwargs: dict[str, object] = {}
        if auth:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False, auth_required=True)
        if tls == "starttls":
            kwargs.update(tls_context=server_ctx, require_starttls=True)
        self._controller = _Controller(self, hostname="127.0.0.1", port=0, server_hostname="sink.test",
                                       ssl_context=server_ctx if tls == "smtps" else None, **kwargs)
        self._controller.start()
        with self._lock:
            self.connections = 0  # the controller's own start-up probe does not count

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._controller.port

    def url(self, *, scheme: str = "smtp", credentials: str = "", query: str = "") -> str:
        at = f"{credentials}@" if credentials else ""
        return f"{scheme}://{at}{self.host}:{self.port}" + (f"?{query}" if query else "")

    # ---- misbehaviour on demand

    def reject(self, recipient: str, reply: str = "550 5.1.1 Recipient address rejected: User unknown") -> None:
        """Answer RCPT TO for this address (case-insensitive) with ``reply``."""
        with self._lock:
            self._rejects[recipient.lower()] = reply

    def fail_next(self, n: int, reply: str = "451 4.3.0 Temporary local problem, try again later") -> None:
        """Answer DATA of the next ``n`` messages with ``reply`` (not stored)."""
        with self._lock:
            self._fail_next.extend([reply] * n)

    def drop_next(self, n: int) -> None:
        """Close the connection instead of answering DATA, for the next ``n`` messages."""
        with self._lock:
            self._drop_next += n

    def close(self) -> None:
        self._controller.stop()

    # ---- aiosmtpd hooks

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.on_mail is not None:
            with self._lock:
                accepted = len(self.messages)
            self.on_mail(accepted)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            reply = self._rejects.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self._drop_next:
                self._drop_next -= 1
                server.transport.abort()
                return "421 4.4.2 dropped on purpose"
            if self._fail_next:
                return self._fail_next.pop(0)
            if self.before_accept is not None:
                refusal = self.before_accept(len(self.messages))
                if refusal:
                    return refusal
            queue_id = f"Q{len(self.messages) + 1:05d}"
            data = envelope.original_content or envelope.content
            msg = email.message_from_bytes(data, policy=policy.default)
            tls = server.transport.get_extra_info("ssl_object") is not None
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), data, msg, queue_id, tls, login))
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == PASSWORD.encode())
        with self._lock:
            if ok:
                self.logins.append(f"{mechanism}:{USER}")
            else:
                self.refused_logins += 1
        return AuthResult(success=True, auth_data=auth_data) if ok else AuthResult(success=False, handled=False)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1


class _Controller(Controller):
    """Binds port 0 (a free port the OS picks) and counts the connections it serves."""

    def __init__(self, sink: SmtpSink, **kwargs) -> None:
        super().__init__(sink, **kwargs)
        self._sink = sink

    def _create_server(self):
        async def bind():
            server = await self.loop.create_server(self._factory_invoker, host=self.hostname, port=0,
                                                   ssl=self.ssl_context)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()

    def factory(self):
        self._sink._connected()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(self.handler, **self.SMTP_kwargs)

