"""Slowing down guessing: after too many failed authentications from one client, refuse it for a while (429).

Why count failures only: a lab's intake script makes thousands of good requests an hour and must never be
slowed, while a token (32 random bytes) or a password is guessed only by failing many times. Why per client
address and, for the sign-in form, per user name too: one address cannot try many names, and many addresses
cannot hammer one reviewer's password. The counts live in the service's memory: one API process per deployment
(docker-compose's ``api``); a restart forgets them, which costs an attacker a restart of our service to gain a
window of ``max_failures`` more guesses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import HTTPException

SWEEP_AT = 10_000  # keys held before expired ones are swept


class TooManyFailures(HTTPException):
    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(429, f"too many failed sign-ins or tokens from here: try again in {seconds} s",
                         headers={"Retry-After": str(seconds)})


class FailureThrottle:
    """At most ``max_failures`` failures per key within ``window`` seconds; the next attempt waits them out."""

    def __init__(self, max_failures: int = 10, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window, self.clock = max_failures, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # sync routes run on a thread pool

    def check(self, *keys: str) -> None:
        """Raise TooManyFailures while any of ``keys`` is over its budget."""
        with self._lock:
            now = self.clock()
            waits = [times[0] + self.window - now for key in keys
                     if len(times := self._recent(key, now)) >= self.max_failures]
        if waits:
            raise TooManyFailures(max(waits))

    def failed(self, *keys: str) -> None:
        with self._lock:
            now = self.clock()
            if len(self._failures) > SWEEP_AT:  # many names or addresses tried: forget the expired ones
                for key in list(self._failures):
                    self._recent(key, now)
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        """The key's failures within the window (an expired key is forgotten)."""
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times
