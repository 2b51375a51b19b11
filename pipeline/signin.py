"""Browser sign-in: passwords kept as scrypt hashes, sessions kept server-side as hashes of their cookies.

Why server-side sessions rather than a signed cookie: a reviewer who signs out, or an admin who disables a user,
must end the session at once, and an examiner may be asked which sessions were open when a decision was
recorded. The cookie carries 32 random bytes; the table keeps their sha256 (a copy of the database opens no
session), the user, the expiry, and the CSRF token the session's forms must carry.

Why scrypt (``hashlib.scrypt``, no extra dependency): memory-hard, so a stolen table is slow to brute-force on
GPUs. A sign-in for an unknown user still computes one hash, so timing does not tell which names exist. Every
sign-in, refusal and sign-out goes to the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from pipeline.accounts import AccountError, Principal, principal_of, principal_query, token_hash
from pipeline.db import Database
from pipeline.tables import UserRow, WebSessionRow, utc_now

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and ~50 ms per hash
MIN_PASSWORD = 12
SESSION_HOURS = 10.0  # a working day: a reviewer signs in again each morning


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: ``secret`` goes into the cookie and nowhere else."""

    secret: str
    csrf: str
    principal: Principal


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str | None) -> bool:
    """Whether ``password`` hashes to ``stored``; a missing or malformed hash is compared against a dummy, so an
    unknown user costs the same time as a wrong password."""
    try:
        scheme, n, r, p, salt_hex, digest = (stored or "").split("$")
        params, salt = (int(n), int(r), int(p)), bytes.fromhex(salt_hex)
        ok = scheme == "scrypt" and params == (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    except ValueError:
        params, salt, digest, ok = (SCRYPT_N, SCRYPT_R, SCRYPT_P), bytes(16), "", False
    if not ok:  # never let a stored value choose an expensive (or invalid) cost
        params = (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    computed = hashlib.scrypt(password.encode(), salt=salt, n=params[0], r=params[1], p=params[2])
    return hmac.compare_digest(computed.hex(), digest) and ok


class SignIn:
    """Passwords and browser sessions of the users of a ``Database``."""

    def __init__(self, database: Database, session_hours: float = SESSION_HOURS) -> None:
        self.database = database
        self.lifetime = timedelta(hours=session_hours)

    def set_password(self, user: str, password: str, actor: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
        with self.database.writing() as session:
            changed = session.execute(update(UserRow).where(UserRow.name == user, UserRow.disabled_at.is_(None))
                                      .values(password_hash=hash_password(password)).returning(UserRow.id)).scalar()
            if changed is None:
                raise AccountError(f"no active user named {user!r}")
            self.database.append_event(session, actor, "user.password_set", None, {"user": user})

    def sign_in(self, user: str, password: str, client: str = "") -> WebSession | None:
        """A new session for the right password of an active user; None (audited as refused) otherwise."""
        with self.database.writing() as session:
            row = session.execute(principal_query(UserRow.password_hash).where(UserRow.name == user)).one_or_none()
            stored, *columns = row if row is not None else (None,)
            if not password_matches(password, stored) or row is None:
                self.database.append_event(session, user[:200], "session.refused", None, {"client": client})
                return None
            principal = principal_of(columns)
            secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            now = utc_now()
            session.add(WebSessionRow(secret_hash=token_hash(secret), user_id=principal.user_id, csrf=csrf,
                                      created_at=now, expires_at=now + self.lifetime))
            self.database.append_event(session, principal.name, "session.started", None, {"client": client})
            return WebSession(secret, csrf, principal)

    def resume(self, secret: str) -> WebSession | None:
        """The session a cookie stands for, while it is neither expired nor ended and its user is enabled."""
        with self.database.reading() as session:
            row = session.execute(
                principal_query(WebSessionRow.csrf).join(WebSessionRow, WebSessionRow.user_id == UserRow.id)
                .where(WebSessionRow.secret_hash == token_hash(secret), WebSessionRow.ended_at.is_(None),
                       WebSessionRow.expires_at > utc_now())).one_or_none()
        if row is None:
            return None
        csrf, *columns = row
        return WebSession(secret, csrf, principal_of(columns))

    def sign_out(self, secret: str) -> None:
        with self.database.writing() as session:
            user = session.execute(
                update(WebSessionRow).where(WebSessionRow.secret_hash == token_hash(secret),
                                            WebSessionRow.ended_at.is_(None))
                .values(ended_at=utc_now()).returning(WebSessionRow.user_id)).scalar()
            if user is not None:
                name = session.scalar(select(UserRow.name).where(UserRow.id == user))
                self.database.append_event(session, name or str(user), "session.ended", None, {})
