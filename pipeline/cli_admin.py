"""``fwtriage admin`` (labs, users, API tokens) and ``fwtriage audit`` (the hash-chained log).

Why on the command line: the service's first admin has to come from somewhere, and account changes are rare
and sensitive; whoever can run these commands can already reach the database (FWTRIAGE_DB_URL or the
embedded SQLite under FWTRIAGE_HOME). Each change is audited under the operating-system user who made it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.markup import escape

from pipeline.accounts import AccountError, Accounts
from pipeline.cli_fleet import actor
from pipeline.config import Settings
from pipeline.db import Database
from pipeline.signin import SignIn
from pipeline.tables import Role


class AuditBroken(click.ClickException):
    """The audit log's chain is broken: exit status 1, with every problem found."""

    exit_code = 1


@contextmanager
def _as_usage_error() -> Iterator[None]:
    """An account request refused (unknown lab, duplicate name...) is the caller's mistake: exit status 2."""
    try:
        yield
    except AccountError as exc:
        raise click.UsageError(str(exc)) from exc


def _accounts() -> Accounts:
    return Accounts(Database.for_settings(Settings.from_env()))


@click.group()
def admin() -> None:
    """Labs, users and API tokens of the service."""


@admin.command("add-lab")
@click.argument("name")
@click.option("--second-signoff", is_flag=True, help="A backdoor verdict needs a second reviewer's sign-off.")
def add_lab(name: str, second_signoff: bool) -> None:
    """Create the lab NAME."""
    accounts = _accounts()
    with accounts.database, _as_usage_error():
        lab_id = accounts.add_lab(name, actor(), second_signoff)
    click.echo(f"lab {lab_id}  {name}")


@admin.command("add-user")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]))
@click.option("--lab", help="The user's lab (required for the lab role; a reviewer without one sees every lab).")
def add_user(name: str, role: str, lab: str | None) -> None:
    """Create the user NAME with a role."""
    accounts = _accounts()
    with accounts.database, _as_usage_error():
        user_id = accounts.add_user(name, role, actor(), lab)
    click.echo(f"user {user_id}  {name}  {role}" + (f"  {lab}" if lab else ""))


@admin.command("issue-token")
@click.argument("user")
@click.option("--label", default="", help="What the token is for (a lab's intake system, a reviewer's laptop).")
def issue_token(user: str, label: str) -> None:
    """Issue an API token for USER; it is printed once and only its hash is kept."""
    accounts = _accounts()
    with accounts.database, _as_usage_error():
        issued = accounts.issue_token(user, actor(), label)
    click.echo(issued.secret)
    Console(stderr=True, highlight=False).print(f"token {issued.id} for {escape(user)}: shown once, keep it now")


@admin.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke the token TOKEN_ID (see list-tokens)."""
    accounts = _accounts()
    with accounts.database, _as_usage_error():
        accounts.revoke_token(token_id, actor())
    click.echo(f"token {token_id} revoked")


@admin.command("set-password")
@click.argument("user")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts).")
def set_password(user: str, password_stdin: bool) -> None:
    """Set USER's password for signing in to the web UI (asked twice, never shown)."""
    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    accounts = _accounts()
    with accounts.database, _as_usage_error():
        SignIn(accounts.database).set_password(user, password, actor())
    click.echo(f"password set for {user}")


@admin.command("list")
def list_accounts() -> None:
    """Every active user and every token (never the tokens themselves)."""
    accounts = _accounts()
    with accounts.database:
        users, tokens = accounts.users(), accounts.tokens()
    for user in users:
        click.echo(f"user {user.user_id}  {user.name}  {user.role}  {user.lab or '-'}")
    for token in tokens:
        state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else (
            f"last used {token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used")
        click.echo(f"token {token.id}  {token.user}  {token.label or '-'}  {state}")


@click.group()
def audit() -> None:
    """The audit log: every report read, review decision and account change, hash-chained."""


@audit.command("verify")
def verify() -> None:
    """Walk the audit chain; exit 1 naming every entry edited, inserted or removed."""
    with Database.for_settings(Settings.from_env()) as database:
        entries = database.audit_events()
        problems = database.verify_audit()
    if problems:
        raise AuditBroken(f"the audit log was altered: {'; '.join(problems)}")
    last = entries[-1].hash if entries else "-"
    click.echo(f"audit log intact: {len(entries)} entries, last hash {last}")


ADMIN_COMMANDS = (admin, audit)
