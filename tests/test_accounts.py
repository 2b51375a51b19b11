"""Labs, users and API tokens (pipeline/accounts.py) on SQLite and PostgreSQL, and the admin and audit commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from pipeline.accounts import TOKEN_PREFIX, AccountError, Accounts, token_hash
from pipeline.db import Database
from pipeline.tables import ApiTokenRow, Role, UserRow, utc_now
from tests.test_cli import _fwtriage
from tests.test_db import new_submission


@pytest.fixture
def accounts(db: Database) -> Accounts:
    return Accounts(db)


def test_a_token_authenticates_its_user_with_role_and_lab(accounts: Accounts) -> None:
    accounts.add_lab("Lab Paris", "admin:root", second_signoff=True)
    accounts.add_user("alice", Role.LAB, "admin:root", lab="Lab Paris")
    accounts.add_user("bob", "reviewer", "admin:root")
    alice, bob = accounts.issue_token("alice", "admin:root", "intake"), accounts.issue_token("bob", "admin:root")
    assert alice.secret.startswith(TOKEN_PREFIX) and alice.secret != bob.secret
    who = accounts.authenticate(alice.secret)
    assert who is not None and (who.name, who.role, who.lab) == ("alice", Role.LAB, "Lab Paris")
    reviewer = accounts.authenticate(bob.secret)
    assert reviewer is not None and (reviewer.role, reviewer.lab_id) == (Role.REVIEWER, None)
    assert accounts.authenticate(alice.secret + "x") is None
    assert accounts.authenticate("") is None
    assert [t.last_used_at is not None for t in accounts.tokens()] == [True, True]


def test_only_the_hash_of_a_token_is_stored(accounts: Accounts, db: Database) -> None:
    accounts.add_user("bob", Role.REVIEWER, "admin:root")
    issued = accounts.issue_token("bob", "admin:root")
    with db.reading() as session:
        stored = session.scalars(select(ApiTokenRow.token_hash)).all()
        dumped = " ".join(str(value) for row in session.execute(text("SELECT * FROM api_token")) for value in row)
    assert stored == [token_hash(issued.secret)]
    assert issued.secret not in dumped and issued.secret not in str(db.audit_events())


def test_a_revoked_token_or_a_disabled_user_no_longer_authenticates(accounts: Accounts, db: Database) -> None:
    accounts.add_user("bob", Role.REVIEWER, "admin:root")
    accounts.add_user("eve", Role.REVIEWER, "admin:root")
    revoked, disabled = accounts.issue_token("bob", "admin:root"), accounts.issue_token("eve", "admin:root")
    accounts.revoke_token(revoked.id, "admin:root")
    with pytest.raises(AccountError, match="no active token"):
        accounts.revoke_token(revoked.id, "admin:root")
    with db.writing() as session:
        session.execute(update(UserRow).where(UserRow.name == "eve").values(disabled_at=utc_now()))
    assert accounts.authenticate(revoked.secret) is None
    assert accounts.authenticate(disabled.secret) is None
    with pytest.raises(AccountError, match="no active user"):
        accounts.issue_token("eve", "admin:root")


@pytest.mark.parametrize(("name", "role", "lab", "message"), [
    ("alice", Role.LAB, None, "needs a lab"),
    ("root", Role.ADMIN, "Lab Paris", "belongs to no lab"),
    ("alice", Role.LAB, "Lab Lyon", "no lab named"),
    ("  ", Role.REVIEWER, None, "user name is empty"),
])
def test_impossible_accounts_are_refused(accounts: Accounts, name: str, role: Role, lab: str | None,
                                         message: str) -> None:
    accounts.add_lab("Lab Paris", "admin:root")
    with pytest.raises(AccountError, match=message):
        accounts.add_user(name, role, "admin:root", lab=lab)
    assert accounts.users() == []


def test_duplicate_names_are_refused_and_leave_nothing_behind(accounts: Accounts, db: Database) -> None:
    accounts.add_lab("Lab Paris", "admin:root")
    accounts.add_user("alice", Role.LAB, "admin:root", lab="Lab Paris")
    events = len(db.audit_events())
    with pytest.raises(AccountError, match="exists already"):
        accounts.add_lab("Lab Paris", "admin:root")
    with pytest.raises(AccountError, match="exists already"):
        accounts.add_user("alice", Role.REVIEWER, "admin:root")
    assert len(db.audit_events()) == events
    assert [user.name for user in accounts.users()] == ["alice"]


def test_account_changes_are_audited_and_submissions_can_belong_to_a_lab(accounts: Accounts, db: Database) -> None:
    lab_id = accounts.add_lab("Lab Paris", "admin:root")
    accounts.add_user("alice", Role.LAB, "admin:root", lab="Lab Paris")
    token = accounts.issue_token("alice", "admin:root", "intake")
    accounts.revoke_token(token.id, "admin:root")
    assert [(e.actor, e.action) for e in db.audit_events()] == [
        ("admin:root", "lab.created"), ("admin:root", "user.created"), ("admin:root", "token.issued"),
        ("admin:root", "token.revoked")]
    assert db.verify_audit() == []
    assert new_submission(db, lab_id=lab_id).lab_id == lab_id


def test_admin_and_audit_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _fwtriage("admin", "add-lab", "Lab Paris", home=home).returncode == 0
    refused = _fwtriage("admin", "add-user", "alice", "--role", "lab", home=home)
    assert refused.returncode == 2 and "needs a lab" in refused.stderr
    assert _fwtriage("admin", "add-user", "alice", "--role", "lab", "--lab", "Lab Paris", home=home).returncode == 0
    issued = _fwtriage("admin", "issue-token", "alice", "--label", "intake", home=home)
    secret = issued.stdout.strip()
    assert issued.returncode == 0 and secret.startswith(TOKEN_PREFIX) and "shown once" in issued.stderr
    listed = _fwtriage("admin", "list", home=home).stdout
    assert "alice  lab  Lab Paris" in listed and "intake  never used" in listed and secret not in listed
    intact = _fwtriage("audit", "verify", home=home)
    assert intact.returncode == 0 and "intact: 3 entries" in intact.stdout
    with Database(f"sqlite:///{home / 'fwtriage.db'}") as database, database.writing() as session:
        session.execute(text("UPDATE audit_event SET actor = 'someone else' WHERE id = 2"))
    broken = _fwtriage("audit", "verify", home=home)
    assert broken.returncode == 1 and "entry 2: its content no longer matches its hash" in broken.stderr
