"""A new lab's first review, end to end in headless Chromium: sign in, submit a seized feature phone's image, watch
its triage finish, open it from the review queue, confirm a behaviour, set and sign off the verdict, read the
audit trail and the full report.

The service is a real ``fwtriage serve`` (``tests/browser.py``); the test asserts only on what a reviewer sees
(roles, text, test ids) and keeps a numbered screenshot of every step in tests/artifacts/browser/. Every wait is on
something appearing on the page, never a fixed sleep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Expect, Locator, Page, sync_playwright

from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    ConsoleWatch,
    Screenshots,
    Server,
    add_reviewer,
    explained,
    serve,
)

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (Debian's chromium package): no browser to drive", allow_module_level=True)

IMAGES = Path(__file__).resolve().parent.parent / "samples" / "out"
LAB = "Lab Paris"
USER = "ana"
PASSWORD = "ana's long passphrase"
SAMPLE = "featurephone-sc6531e.pac"  # a planted backdoor: IMEI over HTTP and a silent SMS to +86
CASE = "CASE-2025-017"
EXHIBIT = "SCELLE-0042"
NOTE = "IMEI and SMS sent to a CN number: confirmed against the strings"
TRIAGE_MS = 120_000  # the submission page follows the triage until it reloads itself, done
STEP_MS = 15_000  # a page load or a form's round trip on a loaded CI machine
UTC_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC"

expect = Expect()
expect.set_options(timeout=STEP_MS)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The service on a fresh home holding one lab and its reviewer, set up with the CLI before it starts."""
    home = tmp_path / "home"
    add_reviewer(home, LAB, USER, PASSWORD)
    with serve(home, tmp_path / "serve.log") as running:
        yield running


@pytest.fixture
def page() -> Iterator[Page]:
    """A fresh headless Chromium tab (Debian's; Playwright downloads no browser here)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            tab.set_default_timeout(STEP_MS)
            yield tab
        finally:
            browser.close()


def nav_link(page: Page, label: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True)


def test_a_reviewer_submits_follows_reviews_and_signs_off_a_backdoor(server: Server, page: Page,
                                                                     manifest: dict) -> None:
    image = IMAGES / manifest[SAMPLE]["file"]
    console = ConsoleWatch()
    console.watch(page)
    shots = Screenshots(ARTIFACTS)
    with explained(server, console, page, shots):
        # 1. Signed out, the start page leads to the sign-in form.
        page.goto(f"{server.url}/")
        expect(page).to_have_url(re.compile(r"/signin\b"))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        shots.take(page, "signin", "opening / signed out redirects to the sign-in page")
        page.get_by_label("User name").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("who")).to_contain_text(USER)
        expect(page.get_by_test_id("who")).to_contain_text(LAB)
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        shots.take(page, "signed-in", "signed in as ana (reviewer, Lab Paris): the empty review queue, her home page")

        # 2. Submit the image from the Submit page, then follow the link to the new submission.
        nav_link(page, "Submit").click()
        expect(page.get_by_role("heading", name="Submit images")).to_be_visible()
        page.get_by_label("Images").set_input_files(image)
        page.get_by_label("Case").fill(CASE)
        page.get_by_label("Exhibit (seal number)").fill(EXHIBIT)
        page.get_by_role("button", name="Submit", exact=True).click()
        created = page.get_by_test_id("upload-results").get_by_role("link", name=SAMPLE, exact=True)
        expect(created).to_be_visible()
        expect(page.get_by_test_id("upload-error")).to_be_hidden()
        shots.take(page, "submitted", "the Submit page after sending: the new submission's link, triage queued")
        created.click()

        # 3. The submission page follows the triage, reloads itself when it is done, and shows the machine verdict.
        expect(page.get_by_test_id("filename")).to_have_text(SAMPLE)
        expect(page.get_by_test_id("live").or_(page.get_by_test_id("machine-verdict"))).to_be_visible()
        shots.take(page, "triage-running", "the submission page as first opened: its state and live progress "
                                           "(or already the verdict, when the triage was quicker than the click)")
        expect(page.get_by_test_id("state")).to_have_text("done", timeout=TRIAGE_MS)
        machine = page.get_by_test_id("machine-verdict")
        expect(machine.get_by_text("backdoor", exact=True)).to_be_visible()
        expect(page.get_by_test_id("live")).to_have_count(0)
        shots.take(page, "triage-done", "the same page, reloaded by itself when the triage ended: machine verdict "
                                        "backdoor, behaviours and findings")

        # 4. The review queue lists it first; open it from there.
        nav_link(page, "Review queue").click()
        first = page.get_by_test_id("queue-row").first
        expect(first).to_contain_text(SAMPLE)
        expect(first).to_contain_text(f"{CASE} / {EXHIBIT}")
        expect(first.get_by_text("backdoor", exact=True)).to_be_visible()
        shots.take(page, "queue", "the review queue: the new backdoor submission is the first row")
        first.get_by_role("link", name=SAMPLE, exact=True).click()
        expect(page.get_by_test_id("filename")).to_have_text(SAMPLE)

        # 5. Confirm the first behaviour with a note.
        behaviour = page.get_by_test_id("behaviour").first
        title = behaviour.get_by_role("heading").inner_text()
        behaviour.get_by_label("Note").fill(NOTE)
        behaviour.get_by_role("button", name="Confirm").click()
        expect(behaviour.get_by_test_id("decision")).to_have_text("confirmed")
        expect(behaviour).to_contain_text(f"by {USER}")
        expect(behaviour).to_contain_text(NOTE)
        shots.take(page, "behaviour-confirmed", f"the first behaviour ({title}) confirmed by ana, with her note")

        # 6. Set the reviewers' verdict, then sign it off: the review closes.
        reviewers = page.get_by_test_id("human-verdict")
        reviewers.get_by_label("Reviewers' verdict").select_option("backdoor")
        reviewers.get_by_role("button", name="Set the verdict").click()
        verdict_line = reviewers.get_by_role("paragraph").first
        expect(verdict_line).to_have_text(re.compile(r"^\s*backdoor\s+in review\s*$"))
        expect(reviewers).to_contain_text(f"set by {USER}")
        shots.take(page, "verdict-set", "the reviewers' verdict set to backdoor by ana, not signed off yet")
        page.get_by_test_id("signoff-form").get_by_role("button", name=re.compile("^Sign off")).click()
        expect(page.get_by_test_id("signoff-rule")).to_have_text(re.compile(rf"Signed off {UTC_TIME}"))
        signoff = page.get_by_test_id("signoff-row")
        expect(signoff).to_have_count(1)
        expect(signoff.get_by_role("cell", name=USER, exact=True)).to_be_visible()
        expect(signoff.get_by_role("cell", name=re.compile(UTC_TIME))).to_be_visible()
        expect(verdict_line).to_have_text(re.compile(r"^\s*backdoor\s+signed off\s*$"))
        for form in ("decision-form", "verdict-form", "signoff-form"):
            expect(page.get_by_test_id(form)).to_have_count(0)
        shots.take(page, "signed-off", "signed off by ana with the date; no review form is left on the page")

        # 7. The audit trail shows each decision and the report's reads, by ana.
        audit = page.locator("#audit")
        audit.scroll_into_view_if_needed()
        by_ana = page.get_by_role("cell", name=USER, exact=True)
        for decision in ("decision: confirmed", "subject: verdict; decision: backdoor",
                         "subject: signoff; decision: backdoor"):
            expect(audit.get_by_test_id("audit-row").filter(has_text=decision).filter(has=by_ana)).to_have_count(1)
        expect(audit.get_by_test_id("audit-row").filter(has_text=NOTE)).to_have_count(1)
        expect(audit.get_by_test_id("audit-row").filter(has_text="report.read").filter(has=by_ana).first
               ).to_be_visible()
        shots.take(page, "audit-trail", "the submission's audit trail: receipt, report reads, ana's confirmation, "
                                        "verdict and sign-off")

        # 8. The HTML report opens whole, with the case, the behaviour and, in its sign-off section, ana's review.
        page.get_by_test_id("report-html").click()
        expect(page).to_have_url(re.compile(r"/report\.html$"))
        expect(page.get_by_role("heading", name="Firmware triage report")).to_be_visible()
        expect(page.locator("#verdict")).to_contain_text("backdoor")
        expect(page.locator("#item")).to_contain_text(CASE)
        expect(page.locator("#item")).to_contain_text(EXHIBIT)
        expect(page.locator("#behaviours")).to_contain_text(title)
        expect(page.locator("#review")).to_contain_text("Reviewed")
        expect(page.locator("#review")).to_contain_text("ana")
        expect(page.get_by_text(re.compile(r"— End of report"))).to_be_visible()
        shots.take(page, "report-html", "the full HTML report opened from the submission page's report link, "
                                        "its sign-off section filled in by ana's review")

        assert console.problems == [], "the browser's console reported errors:\n" + "\n".join(console.problems)
