"""Guessing tokens and passwords: failures are counted per client address (and per user name for the sign-in
form), and past the budget the next attempt is refused with 429 until the window has passed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.api.throttle import FailureThrottle, TooManyFailures
from pipeline.config import Settings
from tests.service import PASSWORD, Person, add_people, build_services, post_signin


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_past_the_budget_are_refused_until_the_window_passes() -> None:
    clock = Clock()
    throttle = FailureThrottle(max_failures=3, window=60, clock=clock)
    for _ in range(3):
        throttle.check("address:a")
        throttle.failed("address:a")
        clock.now += 1
    with pytest.raises(TooManyFailures) as refused:
        throttle.check("address:a")
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "57"
    throttle.check("address:b")  # another client is not concerned
    clock.now += 57
    throttle.check("address:a")  # the oldest failure has left the window


def test_a_key_among_several_blocks_the_attempt() -> None:
    throttle = FailureThrottle(max_failures=2, window=60, clock=Clock())
    throttle.failed("address:a", "user:ana")
    throttle.failed("address:b", "user:ana")
    with pytest.raises(TooManyFailures):
        throttle.check("address:c", "user:ana")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    services = build_services(Settings(home=tmp_path / "home"))
    services.throttle = FailureThrottle(max_failures=5, window=300)
    with TestClient(create_app(services), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def people(client: TestClient) -> dict[str, Person]:
    return add_people(client.app.state.services.database)


def test_guessing_tokens_is_stopped_and_good_tokens_from_elsewhere_still_work(client: TestClient,
                                                                              people: dict[str, Person]) -> None:
    """API tokens guessed from one address.

    Outcome: 429 with Retry-After after 5 failures in the window (10 by default); other addresses unaffected."""
    guesses = [client.get("/api/v1/me", headers={"Authorization": f"Bearer fwt_guess{n}"}).status_code
               for n in range(7)]
    assert guesses == [401] * 5 + [429] * 2
    blocked = client.get("/api/v1/me", headers=people["root"].headers)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "too many failed" in blocked.json()["error"]["message"]
    elsewhere = TestClient(client.app, client=("198.51.100.7", 50000))
    assert elsewhere.get("/api/v1/me", headers=people["root"].headers).status_code == 200


def test_guessing_a_password_is_stopped_for_that_user_from_any_address(client: TestClient,
                                                                       people: dict[str, Person]) -> None:
    """One user's password guessed from many addresses.

    Outcome: 429 for that user name after the budget, even with the right password; other users unaffected."""
    def sign_in(password: str, address: str) -> int:
        browser = TestClient(client.app, client=(address, 40000), follow_redirects=False)
        return post_signin(browser, "alpha-reviewer", password).status_code

    attempts = [sign_in(f"guess number {n}", f"203.0.113.{n}") for n in range(6)]
    assert attempts == [401] * 5 + [429]
    assert sign_in(PASSWORD, "203.0.113.200") == 429  # even the right password waits: the account is under attack
    assert post_signin(TestClient(client.app), "chief-reviewer", PASSWORD).status_code == 303
