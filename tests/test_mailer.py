"""The SMTP client against a real SMTP server on loopback (tests/smtp_sink.py, aiosmtpd)."""

from __future__ import annotations

import socket
from email.message import EmailMessage

import pytest
from smtp_sink import PASSWORD, USER, SmtpSink, client_context, make_certificate

from papertide.mailer import (
    Mailer,
    MailServerError,
    PermanentMailError,
    SmtpSettings,
    TransientMailError,
    redact_url,
)

CREDENTIALS = "digest-bot:s3cret%3Ap%40ss%2Fword"  # USER:PASSWORD, percent-encoded as a URL needs


class FakeTime:
    """A clock that only moves when the mailer sleeps: pacing and backoff become exact numbers."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def message(to: str = "alice@example.org", subject: str = "hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "papertide <papertide@example.org>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(f"body of {subject}\n")
    return msg


def mailer(url: str, t: FakeTime | None = None, **kwargs) -> Mailer:
    t = t or FakeTime()
    kwargs.setdefault("rate", 0)
    return Mailer(SmtpSettings.from_url(url), sleep=t.sleep, clock=t.clock, local_hostname="client.test", **kwargs)


@pytest.fixture
def cert(tmp_path):
    return make_certificate(tmp_path)


# --------------------------------------------------------------------------- settings


def test_from_url_reads_every_part():
    s = SmtpSettings.from_url("smtp://digest%40example.org:p%3Ass%2Fw%40rd@mail.example.org:587?starttls=1&timeout=12.5")
    assert (s.host, s.port, s.security, s.timeout) == ("mail.example.org", 587, "starttls", 12.5)
    assert (s.username, s.password) == ("digest@example.org", "p:ss/w@rd")
    assert "p:ss" not in repr(s)


@pytest.mark.parametrize("url, host, port, security", [
    ("smtp://localhost", "localhost", 25, "plain"),
    ("smtps://mail.example.org", "mail.example.org", 465, "ssl"),
    ("SMTPS://mail.example.org:2465/", "mail.example.org", 2465, "ssl"),
    ("smtp://[::1]:2525?starttls=0", "::1", 2525, "plain"),
    ("smtp://relay:587?starttls=yes", "relay", 587, "starttls"),
])
def test_from_url_defaults(url, host, port, security):
    s = SmtpSettings.from_url(url)
    assert (s.host, s.port, s.security, s.username, s.password, s.timeout) == (host, port, security, None, None, 30.0)


@pytest.mark.parametrize("url, problem", [
    ("", "empty"),
    ("http://u:hunter2@mail.example.org", "scheme must be smtp or smtps, not 'http'"),
    ("mail.example.org:25", "scheme must be smtp or smtps"),
    ("smtp://u:hunter2@", "no host"),
    ("smtp://u:hunter2@mail.example.org:smtp", "port must be a number"),
    ("smtp://u:hunter2@mail.example.org:70000", "port must be a number"),
    ("smtp://u:hunter2@mail.example.org:0", "port must be a number"),
    ("smtp://u:hunter2@mail.example.org:", "empty port"),
    ("smtp://justuser@mail.example.org", "user 'justuser' has no password"),
    ("smtp://:hunter2@mail.example.org", "a password without a user name"),
    ("smtp://u:hunter2@mail.example.org?tls=1", "unknown option 'tls' (known: starttls, timeout)"),
    ("smtp://u:hunter2@mail.example.org?starttls=maybe", "starttls must be 1 or 0"),
    ("smtp://u:hunter2@mail.example.org?timeout=-3", "timeout must be seconds"),
    ("smtp://u:hunter2@mail.example.org?timeout=soon", "timeout must be seconds"),
    ("smtps://u:hunter2@mail.example.org?starttls=1", "starttls=1 applies to smtp:// only"),
    ("smtp://u:hunter2@mail.example.org/inbox", "unexpected path"),
])
def test_bad_urls_name_the_problem_and_never_the_password(url, problem):
    with pytest.raises(ValueError) as e:
        SmtpSettings.from_url(url)
    assert problem in str(e.value)
    assert "hunter2" not in str(e.value)


def test_redact_url_hides_only_the_password():
    assert redact_url("smtp://bob:hunter2@mail.example.org:587?starttls=1") == \
        "smtp://bob:***@mail.example.org:587?starttls=1"
    assert redact_url("smtps://mail.example.org") == "smtps://mail.example.org"


# --------------------------------------------------------------------------- delivery


def test_a_message_arrives_and_the_reply_is_returned(sink):
    with mailer(sink.url()) as m:
        reply = m.send(message(subject="first"))
    assert reply == "2.0.0 Ok: queued as Q00001"
    [got] = sink.messages
    assert got.mail_from == "papertide@example.org" and got.rcpt_tos == ["alice@example.org"]
    assert got.message["Subject"] == "first"
    assert got.message.get_content().strip() == "body of first"
    assert not got.tls and got.login is None


def test_bcc_recipients_get_it_but_never_see_the_header(sink):
    msg = message()
    msg["Bcc"] = "archive@example.org"
    with mailer(sink.url()) as m:
        m.send(msg)
    [got] = sink.messages
    assert got.rcpt_tos == ["alice@example.org", "archive@example.org"]
    assert "Bcc" not in got.message and b"archive@example.org" not in got.data


def test_login_with_percent_encoded_credentials():
    sink = SmtpSink(auth=True)
    try:
        with mailer(sink.url(credentials=CREDENTIALS)) as m:
            m.send(message())
        assert [g.login for g in sink.messages] == [USER]
        assert sink.logins and sink.logins[0].endswith(f":{USER}")
        assert PASSWORD not in repr(SmtpSettings.from_url(sink.url(credentials=CREDENTIALS)))
    finally:
        sink.close()


def test_a_wrong_password_is_a_server_error_not_the_recipients_fault():
    sink = SmtpSink(auth=True)
    try:
        t = FakeTime()
        with mailer(sink.url(credentials="digest-bot:wrong"), t) as m, pytest.raises(MailServerError) as e:
            m.send(message())
        assert "refused the login of 'digest-bot'" in str(e.value) and "535" in str(e.value)
        assert "wrong" not in str(e.value)
        assert t.sleeps == [] and sink.messages == [] and sink.refused_logins >= 1
    finally:
        sink.close()


def test_a_server_that_requires_auth_refuses_an_anonymous_sender_as_a_server_error():
    sink = SmtpSink(auth=True)
    try:
        with mailer(sink.url()) as m, pytest.raises(MailServerError, match="530"):
            m.send(message())
        assert sink.messages == []
    finally:
        sink.close()


# --------------------------------------------------------------------------- failures


def test_a_4xx_is_retried_with_backoff_on_a_fresh_connection(sink):
    sink.fail_next(2)
    t = FakeTime()
    with mailer(sink.url(), t, retries=3, backoff=0.5) as m:
        reply = m.send(message())
    assert reply.startswith("2.0.0 Ok")
    assert t.sleeps == [0.5, 1.0]  # exponential: backoff, then twice that
    assert len(sink.messages) == 1
    assert sink.connections == 3  # each retry on a new connection


def test_retries_spent_is_a_transient_error_carrying_the_last_reply(sink):
    sink.fail_next(10, "452 4.2.2 Mailbox full, try later")
    t = FakeTime()
    with mailer(sink.url(), t, retries=2, backoff=1.0) as m, pytest.raises(TransientMailError) as e:
        m.send(message())
    assert e.value.code == 452 and "Mailbox full" in e.value.reply
    assert "after 3 attempts" in str(e.value)
    assert t.sleeps == [1.0, 2.0] and sink.messages == []


def test_a_dropped_connection_is_retried(sink):
    sink.drop_next(1)
    t = FakeTime()
    with mailer(sink.url(), t, retries=1, backoff=0.25) as m:
        m.send(message())
    assert t.sleeps == [0.25] and len(sink.messages) == 1


def test_a_5xx_for_the_recipient_is_permanent_at_once_and_the_connection_goes_on(sink):
    sink.reject("gone@example.org")
    t = FakeTime()
    with mailer(sink.url(), t, retries=3) as m:
        with pytest.raises(PermanentMailError) as e:
            m.send(message(to="Gone@Example.org"))
        m.send(message(to="alice@example.org"))
    assert (e.value.code, e.value.recipient) == (550, "Gone@Example.org")
    assert "User unknown" in e.value.reply
    assert t.sleeps == []  # no retry
    assert [g.rcpt_tos for g in sink.messages] == [["alice@example.org"]]
    assert sink.connections == 1  # the refusal did not cost the connection


def test_a_5xx_to_data_is_permanent(sink):
    sink.fail_next(1, "554 5.7.1 Message rejected as spam")
    with mailer(sink.url(), retries=3) as m, pytest.raises(PermanentMailError) as e:
        m.send(message())
    assert (e.value.code, e.value.recipient, e.value.reply) == (554, "alice@example.org", "5.7.1 Message rejected as spam")


def test_a_refused_connection_is_transient_after_retries():
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = FakeTime()
    with mailer(f"smtp://127.0.0.1:{port}", t, retries=2, backoff=0.1) as m, pytest.raises(TransientMailError) as e:
        m.send(message())
    assert f"cannot connect to 127.0.0.1:{port}" in str(e.value) and "ConnectionRefusedError" in str(e.value)
    assert t.sleeps == [0.1, 0.2]


def test_a_server_that_never_greets_times_out_as_transient():
    with socket.socket() as listener:  # accepts connections into its backlog but never speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        with mailer(f"smtp://127.0.0.1:{port}?timeout=0.3", retries=0) as m, pytest.raises(TransientMailError) as e:
            m.send(message())
    assert "timed out" in str(e.value)


def test_a_message_without_recipient_or_sender_is_refused_before_any_connection(sink):
    msg = EmailMessage()
    msg["From"] = "papertide@example.org"
    with mailer(sink.url()) as m:
        with pytest.raises(ValueError, match="no recipient"):
            m.send(msg)
        del msg["From"]
        msg["To"] = "a@example.org"
        with pytest.raises(ValueError, match="no From"):
            m.send(msg)
    assert sink.connections == 0


# --------------------------------------------------------------------------- batching and pacing


def test_one_connection_per_batch(sink):
    with mailer(sink.url(), batch=2) as m:
        for i in range(5):
            m.send(message(subject=f"m{i}"))
        assert m.connections == 3 and m.sent == 5
    assert sink.connections == 3
    assert [g.message["Subject"] for g in sink.messages] == [f"m{i}" for i in range(5)]


def test_rate_limit_spaces_messages(sink):
    t = FakeTime()
    with mailer(sink.url(), t, rate=4) as m:
        start = t.now
        for i in range(5):
            m.send(message(subject=f"m{i}"))
    assert t.sleeps == [0.25] * 4  # the first goes at once, then one every 1/rate seconds
    assert t.now - start == pytest.approx(1.0)
    assert len(sink.messages) == 5


def test_rate_limit_counts_time_already_spent(sink):
    t = FakeTime()
    with mailer(sink.url(), t, rate=2) as m:
        m.send(message())
        t.now += 0.2  # building the next digest took 0.2 s
        m.send(message())
        t.now += 0.7  # and this one longer than the interval
        m.send(message())
    assert t.sleeps == [0.3]


def test_rate_zero_never_sleeps(sink):
    t = FakeTime()
    with mailer(sink.url(), t, rate=0) as m:
        for _ in range(3):
            m.send(message())
    assert t.sleeps == [] and len(sink.messages) == 3


# --------------------------------------------------------------------------- TLS


def test_starttls_with_login(cert):
    sink = SmtpSink(tls="starttls", cert=cert, auth=True)
    try:
        with mailer(sink.url(credentials=CREDENTIALS, query="starttls=1"), ssl_context=client_context(cert[0])) as m:
            m.send(message())
        [got] = sink.messages
        assert got.tls and got.login == USER
    finally:
        sink.close()


def test_starttls_refuses_an_untrusted_certificate(cert):
    sink = SmtpSink(tls="starttls", cert=cert)
    try:
        t = FakeTime()
        with mailer(sink.url(query="starttls=1"), t, retries=3) as m, pytest.raises(MailServerError) as e:
            m.send(message())  # the default context does not trust the test's self-signed certificate
        assert "certificate not trusted" in str(e.value)
        assert t.sleeps == [] and sink.messages == []
    finally:
        sink.close()


def test_a_server_requiring_starttls_refuses_plain_text(cert):
    sink = SmtpSink(tls="starttls", cert=cert)
    try:
        with mailer(sink.url()) as m, pytest.raises(MailServerError, match="530"):
            m.send(message())
        assert sink.messages == []
    finally:
        sink.close()


def test_starttls_asked_of_a_server_without_it(sink):
    with mailer(sink.url(query="starttls=1")) as m, pytest.raises(MailServerError, match="does not offer STARTTLS"):
        m.send(message())


def test_smtps(cert):
    sink = SmtpSink(tls="smtps", cert=cert, auth=True)
    try:
        with mailer(sink.url(scheme="smtps", credentials=CREDENTIALS), ssl_context=client_context(cert[0]),
                    batch=2) as m:
            for _ in range(3):
                m.send(message())
        assert [g.tls for g in sink.messages] == [True] * 3
        assert sink.connections == 2
    finally:
        sink.close()


def test_smtps_refuses_an_untrusted_certificate(cert):
    sink = SmtpSink(tls="smtps", cert=cert)
    try:
        with mailer(sink.url(scheme="smtps")) as m, pytest.raises(MailServerError, match="certificate not trusted"):
            m.send(message())
    finally:
        sink.close()
