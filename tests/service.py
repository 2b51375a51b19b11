"""What the service's tests share: an app on a test home, the people of two labs, finished submissions."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from fastapi.testclient import TestClient

from pipeline.accounts import Accounts
from pipeline.config import Detection, Service, Settings
from pipeline.db import Database, SubmissionRecord, SubmissionState
from pipeline.signin import SignIn

if TYPE_CHECKING:
    from pipeline.api.app import Services

PASSWORD = "correct horse battery"
# name → (role, lab); lab "alpha" wants two reviewers for a backdoor, lab "beta" does not
PEOPLE = {
    "alpha-intake": ("lab", "alpha"),
    "beta-intake": ("lab", "beta"),
    "alpha-reviewer": ("reviewer", "alpha"),
    "alpha-reviewer-2": ("reviewer", "alpha"),
    "chief-reviewer": ("reviewer", None),
    "root": ("admin", None),
}


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    lab: str | None
    lab_id: int | None
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


SIGNIN_TOKEN = re.compile(r'name="signin_token" value="([^"]+)"')


def post_signin(client: TestClient, user: str, password: str, next_path: str | None = None) -> httpx.Response:
    """Sign in as a browser does: fetch the form (its login-CSRF token and cookie), then post it."""
    form = client.get("/signin", follow_redirects=False)
    token = SIGNIN_TOKEN.search(form.text)
    assert token is not None, form.text
    data = {"user": user, "password": password, "signin_token": token.group(1)}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/signin", data=data, follow_redirects=False)


def build_services(settings: Settings, **service: Any) -> Services:
    """The service's objects on a test home, triage in-process (``local``) unless told otherwise."""
    from pipeline.api.app import services_for

    return services_for(settings, Service(**service), Detection())


def add_people(database: Database) -> dict[str, Person]:
    """The labs alpha and beta and ``PEOPLE``, each with a token and the password ``PASSWORD``."""
    accounts, signin = Accounts(database), SignIn(database)
    labs = {"alpha": accounts.add_lab("alpha", "test", second_signoff=True), "beta": accounts.add_lab("beta", "test")}
    people = {}
    for name, (role, lab) in PEOPLE.items():
        accounts.add_user(name, role, "test", lab)
        signin.set_password(name, PASSWORD, "test")
        people[name] = Person(name, role, lab, labs.get(lab) if lab else None,
                              accounts.issue_token(name, "test").secret)
    return people


def finished(database: Database, report: dict[str, Any], lab_id: int | None, *, filename: str = "image.bin",
             exhibit: str | None = None, case: str | None = "CASE-1", sha256: str | None = None) -> SubmissionRecord:
    """A submission recorded and finished with ``report``, as a worker leaves it."""
    record = database.create_submission(filename=filename, size=1, md5="0" * 32, sha1="0" * 40,
                                        sha256=sha256 or uuid.uuid4().hex * 2, case=case, exhibit=exhibit,
                                        lab_id=lab_id)
    for state in (SubmissionState.UNPACKING, SubmissionState.ANALYZING, SubmissionState.REPORTING):
        database.set_state(record.id, state)
    return database.finish(record.id, report)
