"""The HTML report in a real browser (headless Chromium): what a reviewer sees first, offline, and in print.

Screenshots go to test-artifacts/ at the repository root, for a person to
look at the layout; the assertions check what must hold whatever the layout.
Chromium is a test requirement (the CI installs it): without it these tests
fail rather than skip, so a missing browser cannot pass unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from pipeline.scan import ScanOutcome
from tests.conftest import SAMPLES
from tests.report.samples import SHOWCASE

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 900}
ARTIFACTS = SAMPLES.parent / "test-artifacts"

Opened = tuple[Page, list[str], list[str]]  # the page, the URLs it requested, its console errors


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def opened(browser: Browser, showcase_scan: ScanOutcome) -> Iterator[Opened]:
    """The showcase report.html opened from disk: the page, every URL it requested, every console error."""
    page = browser.new_page(viewport=VIEWPORT)
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((showcase_scan.out_dir / "report.html").as_uri())
    yield page, requests, errors
    page.close()


def test_verdict_first_and_top_behaviour_visible(opened: Opened, showcase_scan: ScanOutcome) -> None:
    page, requests, errors = opened
    report = showcase_scan.report
    label = page.locator("#verdict .label")
    assert label.is_visible() and label.inner_text().strip().lower() == report["verdict"]["label"]
    box = label.bounding_box()
    assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], "the verdict is in the first screen"
    summary = page.locator("#verdict .summary")
    assert summary.is_visible() and summary.inner_text().strip() == report["verdict"]["summary"]
    top = page.locator(".behaviour-title").first
    assert top.is_visible() and top.inner_text().strip() == report["behaviours"][0]["title"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"report-{SHOWCASE}.png", full_page=True)
    assert requests == [page.url], "the report loads nothing but itself"
    assert errors == [], "no script error, no resource or policy violation"


def test_script_expands_everything_and_print_shows_it_all_without_controls(opened: Opened) -> None:
    page, _, errors = opened
    closed = "Array.from(document.querySelectorAll('details')).filter(d => !d.open).length"
    assert page.evaluate(closed) > 0
    expand = page.get_by_role("button", name="Expand all")
    assert expand.is_visible(), "the controls are shown once the (hash-allowed) script runs"
    expand.click()
    assert page.evaluate(closed) == 0
    page.get_by_role("button", name="Collapse all").click()
    assert page.evaluate(closed) > 0
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.evaluate(closed) == 0, "printing opens every collapsed section"
    assert not expand.is_visible()
    background = page.evaluate("getComputedStyle(document.querySelector('#verdict')).backgroundColor")
    assert background in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), "no dark banner on paper"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"report-{SHOWCASE}-print.png", full_page=True)
    assert errors == []
