"""The ``papertide user`` and ``papertide submissions`` commands: what only the site's operator does.

- ``papertide user admin NAME`` makes an existing account an admin (``--revoke`` takes
  the role back). Admins can hide papers and comments. Signing up never makes one,
  so a newly deployed site cannot be claimed by whoever signs up first.
- ``papertide submissions retry`` completes the submissions that were kept pending
  because arXiv could not be reached (run it from cron, or after the network is back).

Registered on the main group by ``cli.py``.
"""

from __future__ import annotations

import sys

import click


def register(cli: click.Group, pass_ctx) -> None:
    @cli.group("user")
    def user() -> None:
        """Manage accounts of the web app."""

    @user.command("admin")
    @click.argument("name")
    @click.option("--revoke", is_flag=True, help="Make the account an ordinary user again.")
    @pass_ctx
    def user_admin_cmd(obj, name: str, revoke: bool) -> None:
        """Give the admin role to the account NAME (it can then hide papers and comments)."""
        with obj.store() as store:
            com = store.community
            account = com.user_by_name(name)
            if account is None:
                raise click.ClickException(f"no account named {name!r}")
            role = "user" if revoke else "admin"
            com.update_user(account.id, role=role)
        click.echo(f"{account.username} is now {'an admin' if role == 'admin' else 'an ordinary user'}")

    @cli.group("submissions")
    def subs() -> None:
        """Papers users submitted on the web app."""

    @subs.command("retry")
    @click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True,
                  help="At most this many pending submissions, oldest first.")  # fmt: skip
    @pass_ctx
    def retry_cmd(obj, limit: int) -> None:
        """Fetch the pending submissions from arXiv now and list them; exit 1 if some stay pending."""
        from papertide.submissions import complete_pending_submissions

        with obj.store() as store:
            done = complete_pending_submissions(store, obj.config, limit=limit)
            left = len(store.community.pending_submissions(10_000))
        click.echo(f"{done} submission{'' if done == 1 else 's'} completed, {left} still pending")
        if left:
            sys.exit(1)
