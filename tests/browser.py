"""What the browser test stands on: a real ``fwtriage serve`` on a fresh home, its accounts made with the CLI, the
browser's console watched, and numbered screenshots kept as the run's artifacts.

Why a subprocess and the CLI rather than the app in-process: the test is a new lab's first day, so it goes through
the same doors (``fwtriage admin``, ``fwtriage serve``, a browser on a port) and nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import ConsoleMessage, Page
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "browser"
FWTRIAGE = Path(sys.executable).with_name("fwtriage")  # the console script of the venv running the tests
START_SECONDS = 30
STOP_SECONDS = 10
LOG_TAIL_CHARS = 20_000


def free_port() -> int:
    """A port nobody listens on now (the OS picks it; the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def home_env(home: Path) -> dict[str, str]:
    """This environment with FWTRIAGE_HOME set and every other FWTRIAGE_* dropped, so that no setting of the machine
    (a database URL, secure cookies, fleet dispatch) leaks into the test's service."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith("FWTRIAGE_")}
    return {**kept, "FWTRIAGE_HOME": str(home)}


def fwtriage(home: Path, *args: str, stdin: str = "") -> str:
    """Run ``fwtriage ARGS`` on ``home``; its output, or AssertionError with what it said."""
    done = subprocess.run([str(FWTRIAGE), *args], input=stdin, capture_output=True, text=True, env=home_env(home),
                          timeout=60, check=False)
    assert done.returncode == 0, f"fwtriage {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def add_reviewer(home: Path, lab: str, user: str, password: str) -> None:
    """A lab (one sign-off finalises) and its reviewer with a web password, as an admin sets up a new lab."""
    fwtriage(home, "admin", "add-lab", lab)
    fwtriage(home, "admin", "add-user", user, "--role", "reviewer", "--lab", lab)
    fwtriage(home, "admin", "set-password", user, "--password-stdin", stdin=password + "\n")


@dataclass
class Server:
    """A running ``fwtriage serve``: where it answers, and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- fwtriage serve output (last {LOG_TAIL_CHARS} characters) ---\n{text[-LOG_TAIL_CHARS:]}"

    def wait_healthy(self) -> None:
        """Poll /healthz until it answers 200; AssertionError with the server's output if it exits or never does."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"fwtriage serve exited {self.process.returncode}\n{self.log_tail()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"fwtriage serve did not answer /healthz within {START_SECONDS} s\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly, the local dispatcher's thread included), then SIGKILL if stuck."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_SECONDS)


@contextmanager
def serve(home: Path, log: Path) -> Iterator[Server]:
    """``fwtriage serve --dispatch local`` on a free port of 127.0.0.1, healthy, stopped afterwards."""
    port = free_port()
    command = [str(FWTRIAGE), "serve", "--host", "127.0.0.1", "--port", str(port), "--dispatch", "local"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=home_env(home))
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@dataclass
class ConsoleWatch:
    """Everything a page said on its console, and the uncaught errors of its scripts.

    ``problems`` are the errors (a failed load included) and the Content-Security-Policy reports.
    """

    messages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught {error.name}: {error.message}"))

    def _console(self, message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        line = f"[{message.type}] {message.text} ({url})"
        self.messages.append(line)
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(line)

    def transcript(self) -> str:
        return "--- browser console ---\n" + ("\n".join(self.messages) or "(nothing)")


class Screenshots:
    """Full-page screenshots numbered in the order taken, each listed with what it shows in steps.txt.

    Why the folder is emptied first: a shorter or failed run must not leave an earlier run's pictures beside its own.
    """

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.taken: list[str] = []

    def take(self, page: Page, name: str, shows: str) -> Path:
        file = f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=self.folder / file, full_page=True)
        self.taken.append(f"{file}  {shows}")
        (self.folder / "steps.txt").write_text("\n".join(self.taken) + "\n")
        return self.folder / file


@contextmanager
def explained(server: Server, console: ConsoleWatch, page: Page, shots: Screenshots) -> Iterator[None]:
    """A failure of the block re-raised with the server's output and the browser's console in its message, and the
    page as it was kept as a last screenshot: a browser test failing in CI is otherwise a riddle."""
    try:
        yield
    except (AssertionError, PlaywrightError) as exc:
        first_line = str(exc).partition("\n")[0]
        try:
            shots.take(page, "failure", f"the page when the test failed: {first_line}")
        except PlaywrightError as screenshot_error:
            console.messages.append(f"(no failure screenshot: {screenshot_error.message})")
        raise AssertionError(f"{exc}\n\n{server.log_tail()}\n\n{console.transcript()}") from exc
