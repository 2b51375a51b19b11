"""Labs, users and API tokens: who may use the service, and as what.

Why tokens are kept hashed: the database is read by more people and tools than the service itself (backups,
reviewers' queries); a stolen copy must not let anyone act as a lab. A token is 32 random bytes shown once when
issued; only its sha256 is stored, and a presented token is looked up by that hash, so verifying it takes one
indexed query and no comparison that leaks timing. Every change to an account goes to the audit log.

Roles (``pipeline.tables.Role``): ``lab`` submits and sees its own lab's submissions only; ``reviewer`` reviews
the submissions of its lab, or of every lab when it has none; ``admin`` manages labs, users and tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.db import Database
from pipeline.tables import ApiTokenRow, LabRow, Role, UserRow, utc_now

LAST_USED_RESOLUTION = timedelta(minutes=1)
TOKEN_PREFIX = "fwt_"  # recognisable in a leaked file or a secret scanner's rules


class AccountError(ValueError):
    """An account request that cannot be carried out as asked (an unknown lab, a duplicate name...)."""


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user, its role and the lab whose data it may see (None: every lab, or none for a lab)."""

    user_id: int
    name: str
    role: Role
    lab_id: int | None
    lab: str | None


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: ``secret`` is shown this once and never stored."""

    id: int
    user: str
    secret: str


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Accounts:
    """Reads and writes of the account tables, through a ``Database``'s sessions."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add_lab(self, name: str, actor: str, second_signoff: bool = False) -> int:
        with self.database.writing() as session:
            lab = LabRow(name=_non_empty(name, "lab name"), second_signoff=second_signoff, created_at=utc_now())
            session.add(lab)
            _flush_unique(session, f"a lab named {name!r} exists already")
            self.database.append_event(session, actor, "lab.created", None,
                                       {"lab": name, "second_signoff": second_signoff})
            return lab.id

    def add_user(self, name: str, role: Role | str, actor: str, lab: str | None = None) -> int:
        """A user of ``role``; a lab user must belong to a lab, an admin to none."""
        role = Role(role)
        if role is Role.LAB and lab is None:
            raise AccountError("a lab user needs a lab (--lab)")
        if role is Role.ADMIN and lab is not None:
            raise AccountError("an admin belongs to no lab")
        with self.database.writing() as session:
            lab_id = None
            if lab is not None:
                lab_id = session.scalar(select(LabRow.id).where(LabRow.name == lab))
                if lab_id is None:
                    raise AccountError(f"no lab named {lab!r}")
            user = UserRow(name=_non_empty(name, "user name"), role=role, lab_id=lab_id, created_at=utc_now())
            session.add(user)
            _flush_unique(session, f"a user named {name!r} exists already")
            self.database.append_event(session, actor, "user.created", None,
                                       {"user": name, "role": str(role), "lab": lab})
            return user.id

    def issue_token(self, user: str, actor: str, label: str = "") -> IssuedToken:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.database.writing() as session:
            user_id = session.scalar(select(UserRow.id).where(UserRow.name == user, UserRow.disabled_at.is_(None)))
            if user_id is None:
                raise AccountError(f"no active user named {user!r}")
            token = ApiTokenRow(user_id=user_id, token_hash=token_hash(secret), label=label, created_at=utc_now())
            session.add(token)
            session.flush()
            self.database.append_event(session, actor, "token.issued", None,
                                       {"token": token.id, "user": user, "label": label})
            return IssuedToken(token.id, user, secret)

    def revoke_token(self, token_id: int, actor: str) -> None:
        with self.database.writing() as session:
            revoked = session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id,
                                                                ApiTokenRow.revoked_at.is_(None))
                                      .values(revoked_at=utc_now()).returning(ApiTokenRow.id)).scalar()
            if revoked is None:
                raise AccountError(f"no active token {token_id}")
            self.database.append_event(session, actor, "token.revoked", None, {"token": token_id})

    def authenticate(self, secret: str) -> Principal | None:
        """The principal a presented token stands for; None for an unknown, revoked or disabled one.

        A read: the token's ``last_used_at`` is written at most once a minute, so a lab's script polling the API
        does not turn every request into a write transaction (on SQLite, one that waits for the workers' writes).
        """
        with self.database.reading() as session:
            row = session.execute(
                principal_query(ApiTokenRow.id, ApiTokenRow.last_used_at)
                .join(ApiTokenRow, ApiTokenRow.user_id == UserRow.id)
                .where(ApiTokenRow.token_hash == token_hash(secret), ApiTokenRow.revoked_at.is_(None))).one_or_none()
        if row is None:
            return None
        token_id, last_used, *principal = row
        now = utc_now()
        if last_used is None or now - last_used > LAST_USED_RESOLUTION:
            with self.database.writing() as session:
                session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now))
        return principal_of(principal)

    def tokens(self) -> list[TokenInfo]:
        with self.database.reading() as session:
            rows = session.execute(select(ApiTokenRow, UserRow.name).join(UserRow, UserRow.id == ApiTokenRow.user_id)
                                   .order_by(ApiTokenRow.id))
            return [TokenInfo(t.id, user, t.label, t.created_at, t.last_used_at, t.revoked_at) for t, user in rows]

    def users(self) -> list[Principal]:
        with self.database.reading() as session:
            rows = session.execute(select(UserRow, LabRow.name).outerjoin(LabRow, LabRow.id == UserRow.lab_id)
                                   .where(UserRow.disabled_at.is_(None)).order_by(UserRow.name))
            return [Principal(u.id, u.name, Role(u.role), u.lab_id, lab) for u, lab in rows]


def principal_query(*first: Any) -> Select[Any]:
    """``first`` columns, then the columns of a Principal, of users still enabled (join what identifies them)."""
    return (select(*first, UserRow.id, UserRow.name, UserRow.role, UserRow.lab_id, LabRow.name)
            .select_from(UserRow).outerjoin(LabRow, LabRow.id == UserRow.lab_id)
            .where(UserRow.disabled_at.is_(None)))


def principal_of(columns: Sequence[Any]) -> Principal:
    user_id, name, role, lab_id, lab = columns
    return Principal(user_id, name, Role(role), lab_id, lab)


def _non_empty(value: str, what: str) -> str:
    if not value.strip():
        raise AccountError(f"the {what} is empty")
    return value.strip()


def _flush_unique(session: Session, message: str) -> None:
    """Flush, turning a unique-constraint violation into a readable AccountError."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise AccountError(message) from exc
