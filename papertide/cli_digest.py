"""The digest commands: ``subscribe``, ``unsubscribe``, ``digest preview|send|bounce|status`` and ``worker``.

Thin like the rest of the CLI: each parses its options and calls one library function
(``store.mailing``, :mod:`papertide.digest_send`, :mod:`papertide.worker`). A new
subscription waits for its address to be confirmed: the confirmation mail goes out at
once when an SMTP server is configured, and otherwise on the first ``digest send``; the
link is printed too so an operator can pass it on. Registered on the main group by ``cli.py``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click


def _parse_now(ctx, param, value: str | None) -> datetime | None:
    """``--now``: an ISO date or date and time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"not a time: {value!r} (expected 2026-11-26 or 2026-11-26T06:00Z)") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _index(config, store):
    from papertide.index import IndexMissingError, SearchIndex

    try:
        return SearchIndex.open(config, store)
    except IndexMissingError:
        return None


def _secret(config) -> bytes:
    from papertide.web.auth import load_or_create_secret

    return load_or_create_secret(config.home)


def _mailer(config):
    from papertide.mailer import Mailer, SmtpSettings

    if not config.smtp_url:
        raise click.ClickException("no SMTP server configured: set PAPERTIDE_SMTP_URL, "
                                   "e.g. smtp://user:pass@mail.example.org:587?starttls=1")  # fmt: skip
    return Mailer(SmtpSettings.from_url(config.smtp_url), rate=config.mail_rate)


def register(cli: click.Group, pass_ctx) -> None:
    @cli.command("subscribe")
    @click.argument("email")
    @click.option("--every", type=click.Choice(["day", "week"]), required=True, help="How often the digest comes.")
    @click.option("--trending", is_flag=True, help="The period's trending papers.")
    @click.option("--cat", "categories", multiple=True, metavar="CAT", help="New papers in a category (cs.CL) or archive (cs).")
    @click.option("--search", "searches", multiple=True, metavar="Q", help="New papers matching a saved search.")
    @click.option("--for-you", is_flag=True, help="Recommendations learned from the account's upvotes and collections.")
    @click.option("--user", "username", metavar="NAME", help="The web account this subscription belongs to.")
    @pass_ctx
    def subscribe_cmd(obj, email, every, trending, categories, searches, for_you, username) -> None:
        """Subscribe EMAIL to a digest; nothing but a confirmation mail is sent until it is confirmed."""
        from papertide.digest_send import Links, send_confirmation
        from papertide.mailer import MailError

        with obj.store() as store:
            user_id = None
            if username:
                account = store.community.user_by_name(username)
                if account is None:
                    raise click.ClickException(f"no account named {username!r}")
                user_id = account.id
            sub = store.mailing.subscribe(email, every=every, trending=trending, categories=tuple(categories),
                                          searches=tuple(searches), for_you=for_you, user_id=user_id)  # fmt: skip
            click.echo(f"{sub.email}: {sub.status}, every {sub.every}")
            if sub.status != "pending":
                return
            links = Links(obj.config, _secret(obj.config))
            click.echo(f"confirmation link: {links.confirm(sub)}")
            if not obj.config.smtp_url:
                click.echo("no SMTP server configured: the confirmation mail goes out with the first `digest send`")
                return
            try:
                with _mailer(obj.config) as mailer:
                    send_confirmation(store, obj.config, mailer, links, sub)
                click.echo("confirmation mail sent")
            except MailError as e:
                click.echo(f"confirmation mail not sent ({e}); `papertide digest send` will try again", err=True)

    @cli.command("unsubscribe")
    @click.argument("email")
    @pass_ctx
    def unsubscribe_cmd(obj, email: str) -> None:
        """Stop every digest to EMAIL."""
        with obj.store() as store:
            sub = store.mailing.subscription_by_email(email)
            if sub is None:
                raise click.ClickException(f"no subscription for {email}")
            store.mailing.unsubscribe(sub.id, "unsubscribed from the command line")
        click.echo(f"{sub.email}: unsubscribed")

    @cli.group("digest")
    def digest_group() -> None:
        """Email digests: preview, send the due ones, record bounces."""

    @digest_group.command("preview")
    @click.argument("email")
    @click.option("--out", type=click.Path(dir_okay=False), help="File stem (default: ./digest-<email>).")
    @click.option("--period", metavar="P", help="A day (2024-03-17) or ISO week (2024-W11); default: the last complete one.")
    @pass_ctx
    def preview_cmd(obj, email: str, out: str | None, period: str | None) -> None:
        """Write the digest EMAIL would receive as .eml and .html files, sending nothing."""
        from papertide.digest import period_bounds
        from papertide.digest_send import preview

        if period:
            try:
                period_bounds(period)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--period") from None
        stem = Path(out) if out else Path(f"digest-{email.replace('@', '_at_')}")
        with obj.store() as store:
            eml, html, digest = preview(store, _index(obj.config, store), obj.config, _secret(obj.config), email,
                                        stem, period=period)  # fmt: skip
        click.echo(f"{digest.title}: {digest.size} papers ({digest.period})" + (" (empty)" if digest.empty else ""))
        click.echo(f"wrote {eml} and {html}")

    @digest_group.command("send")
    @click.option("--dry-run", is_flag=True, help="Build and render every due digest; send and record nothing.")
    @click.option("--only", metavar="EMAIL", help="Only this subscriber.")
    @click.option("--now", "now", metavar="TIME", callback=_parse_now,
                  help="Act as if it were this UTC time (2026-11-26 or 2026-11-26T06:00Z): catch up the digests "
                       "of a day or week missed while nothing ran. Default: the clock.")  # fmt: skip
    @pass_ctx
    def send_cmd(obj, dry_run: bool, only: str | None, now: datetime | None) -> None:
        """Send every digest that is due, each exactly once; exit 1 if some could not be sent.

        Due means: the latest day (for daily subscriptions) and ISO week (weekly) that had
        ended by now, or by --now, and has no final entry in the send log.
        """
        from papertide.digest_send import DigestRun
        from papertide.text.features import one_blas_thread

        mailer = None if dry_run else _mailer(obj.config)  # refuse before any work without SMTP
        one_blas_thread()
        if now is not None and now > datetime.now(timezone.utc):
            click.echo(f"warning: --now {now:%Y-%m-%dT%H:%M:%SZ} is later than the clock: periods that have not "
                       "ended yet are sent as complete, and never again", err=True)  # fmt: skip
        with obj.store() as store:
            index = _index(obj.config, store)
            if index is None:
                click.echo("no search index: saved searches stay empty (run `papertide index`)", err=True)
            secret = _secret(obj.config)
            if mailer is None:
                report = DigestRun(store, index, obj.config, secret, only=only, now=now).run()
            else:
                with mailer:
                    report = DigestRun(store, index, obj.config, secret, mailer=mailer, only=only, now=now).run()
        for err in report.errors:
            click.echo(f"error: {err}", err=True)
        click.echo(report.summary())
        if report.errors:
            sys.exit(1)

    @digest_group.command("bounce")
    @click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
    @pass_ctx
    def bounce_cmd(obj, paths: tuple[str, ...]) -> None:
        """Read delivery status notifications (.eml or mbox) and pause the addresses that failed."""
        from papertide.bounces import read_bounces
        from papertide.errors import FormatError

        recorded, bad = 0, 0
        with obj.store() as store:
            for path in paths:
                try:
                    found = read_bounces(Path(path))
                except FormatError as e:
                    click.echo(f"error: {e}", err=True)
                    bad += 1
                    continue
                for problem in found.problems:
                    click.echo(f"warning: {problem}", err=True)
                for b in found:
                    store.mailing.record_event(b.recipient, "bounce", f"{b.status} {b.diagnostic}".strip())
                    recorded += 1
                    sub = store.mailing.subscription_by_email(b.recipient)
                    outcome = f"subscription {sub.status}" if sub else "no subscription for this address"
                    click.echo(f"{b.recipient}: bounced ({b.status}): {outcome}")
        click.echo(f"{recorded} bounce{'s' if recorded != 1 else ''} recorded from {len(paths) - bad} file(s)")
        if bad:
            sys.exit(1)

    @digest_group.command("status")
    @pass_ctx
    def status_cmd(obj) -> None:
        """Subscriptions by status and the latest sends."""
        with obj.store() as store:
            m = store.mailing
            counts = {s: m.subscription_count(status=s) for s in ("pending", "active", "paused", "unsubscribed")}
            click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
            for rec in m.send_log(limit=20):
                click.echo(f"{rec.period}  #{rec.subscription_id}  {rec.state}  {rec.detail[:60]}")

    @cli.command("worker")
    @click.option("--every", "interval", type=click.FloatRange(1, 86_400), default=900, show_default=True,
                  help="Seconds between ticks.")  # fmt: skip
    @click.option("--harvest", "sources", multiple=True, metavar="SOURCE",
                  help="hf-daily or arxiv:SET (e.g. arxiv:cs:cs:CL); repeatable.")  # fmt: skip
    @click.option("--no-send", is_flag=True, help="Do not send digests.")
    @click.option("--once", is_flag=True, help="Run one tick and exit.")
    @pass_ctx
    def worker_cmd(obj, interval: float, sources: tuple[str, ...], no_send: bool, once: bool) -> None:
        """Harvest, index, retry submissions and send due digests on a schedule until stopped."""
        from papertide.text.features import one_blas_thread
        from papertide.worker import Worker

        one_blas_thread()
        try:
            worker = Worker(obj.config, sources=list(sources), send=not no_send)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--harvest") from None
        worker.handle_signals()
        click.echo(f"worker: a tick every {interval:g} s (SIGTERM or Ctrl+C stops it)", err=True)
        worker.run(interval, once=once, on_tick=lambda r: click.echo("\n".join(r.lines()), err=True))
        click.echo("worker: stopped", err=True)
