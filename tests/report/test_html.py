"""The HTML report of real scans: every claim with its evidence, the limits stated, nothing fetched, nothing unescaped.

Samples and their expected verdicts come from samples/manifest.json; the
reports are those ``fwtriage scan`` wrote (the session's ``sample_scans``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from markupsafe import escape

from pipeline.report.html import CONFIDENCE_STATEMENT, render_html
from pipeline.scan import ScanOutcome
from tests.report.reading import read_page, urls
from tests.report.samples import BY_VERDICT, SHOWCASE

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_ATTRIBUTE = '"onmouseover=alert(1) x="'

Scans = Callable[[str], ScanOutcome]


def _html_of(outcome: ScanOutcome) -> str:
    html_file = next(f for f in outcome.files if f.name == "report.html")
    return html_file.read_text(encoding="utf-8")


def _e(text: Any) -> str:
    """``text`` as the report prints it (autoescaped)."""
    return str(escape(str(text)))


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}"')
    return html[start:html.index("</section>", start)]


@pytest.mark.parametrize("sample", BY_VERDICT["backdoor"])
def test_backdoor_report_states_verdict_behaviours_evidence_and_custody(sample: str, manifest: dict,
                                                                         sample_scans: Scans) -> None:
    outcome = sample_scans(sample)
    report, html = outcome.report, _html_of(outcome)
    verdict = report["verdict"]
    assert verdict["label"] == "backdoor"
    banner = _section(html, "verdict")
    assert 'data-verdict="backdoor"' in banner and f"<b>{verdict['score']}</b>" in banner
    assert _e(verdict["summary"]) in banner
    assert html.index('id="verdict"') < html.index('id="item"'), "the verdict comes before everything else"

    articles = html.split('<article class="behaviour')[1:]
    assert len(articles) == len(report["behaviours"]) > 0
    for behaviour, article in zip(report["behaviours"], articles, strict=True):
        assert _e(behaviour["title"]) in article and f"confidence {behaviour['confidence']}" in article
        assert _e(behaviour["artifact"]["path"]) in article and behaviour["artifact"]["sha256"] in article
        for endpoint in behaviour["endpoints"]:
            assert _e(endpoint) in article
        for country in behaviour["countries"]:
            assert f">{country}</span>" in article
        for evidence in behaviour["evidence"]:
            assert _e(evidence["value"]) in article
            if evidence["offset"] is not None:
                assert f"0x{evidence['offset']:x}" in article
        if behaviour.get("benign"):
            assert _e(behaviour["benign"]) in article
    assert CONFIDENCE_STATEMENT in html

    rows = {row[0]: row for row in read_page(html).rows["endpoints"][1:]}
    for endpoint in report["endpoints"]:
        assert rows[endpoint["value"]][3] == (endpoint["country"] or "—"), endpoint
    for expected in manifest[sample]["expect"]["endpoints"]:
        assert any(expected in value for value in rows)

    custody = _section(html, "custody")
    submission = report["submission"]
    for algorithm in ("md5", "sha1", "sha256"):
        assert custody.count(submission[algorithm]) == 2, algorithm  # as received, and re-hashed
    assert "Verified: identical" in custody
    assert report["report"]["id"] in html and report["report_digest"] in html
    assert html.rstrip().endswith("</html>")
    assert f"— End of report {report['report']['id']} —" in html


@pytest.mark.parametrize("sample", BY_VERDICT["incomplete"])
def test_incomplete_report_says_what_was_not_covered_and_why(sample: str, sample_scans: Scans) -> None:
    outcome = sample_scans(sample)
    report, html = outcome.report, _html_of(outcome)
    assert report["verdict"]["label"] == "incomplete"
    assert _e(report["verdict"]["summary"]) in _section(html, "verdict")
    behaviours = _section(html, "behaviours")
    assert "No exfiltration behaviour was found." in behaviours and "This is not a clean result" in behaviours
    limits = _section(html, "limits")
    problems = report["extraction"]["errors"] + report["analysis"]["issues"]
    assert problems, "an incomplete verdict needs a reason"
    for error in report["extraction"]["errors"]:
        assert _e(error["error"]) in limits and _e(error["path"]) in limits
    for issue in report["analysis"]["issues"]:
        assert _e(issue["error"]) in limits


@pytest.mark.parametrize("sample", BY_VERDICT["clean"][:2])
def test_clean_report_says_nothing_was_found_over_full_coverage(sample: str, sample_scans: Scans) -> None:
    outcome = sample_scans(sample)
    report, html = outcome.report, _html_of(outcome)
    assert report["verdict"]["label"] == "clean"
    assert _e(report["verdict"]["summary"]) in html
    assert "No exfiltration behaviour was found." in _section(html, "behaviours")
    limits = _section(html, "limits")
    assert "Every container found was decoded" in limits
    for statement in report["limits"]["statements"]:
        assert _e(statement) in limits
    for analyzer in report["limits"]["analyzers"]:
        assert f"{_e(analyzer['name'])} <span" in limits


@pytest.mark.parametrize("sample", [SHOWCASE, BY_VERDICT["incomplete"][0], BY_VERDICT["clean"][0]])
def test_report_references_nothing_outside_itself(sample: str, sample_scans: Scans) -> None:
    page = read_page(_html_of(sample_scans(sample)))
    external = [(tag, name, value) for tag, name, value in urls(page) if not value.startswith("#")]
    assert external == []
    assert not {"link", "img", "iframe", "object", "embed", "base", "audio", "video"} & {t.name for t in page.tags}
    scripts = [t for t in page.tags if t.name == "script"]
    assert len(scripts) == 1 and "src" not in scripts[0].attributes
    style = "".join(page.styles)
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    csp = next(t for t in page.tags if t.name == "meta" and t.attributes.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in (csp.attributes["content"] or "")


def _hostile(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with attacker-controlled text (names, strings, evidence) in every place the image fills."""
    hostile = copy.deepcopy(report)
    payload = f"{XSS_SCRIPT}{XSS_ATTRIBUTE}"
    hostile["submission"]["filename"] = payload
    hostile["submission"]["case"] = payload
    hostile["platform"]["how"] = payload
    behaviour = hostile["behaviours"][0]
    behaviour["evidence"][0].update(value=payload, excerpt=payload, path=payload)
    behaviour["endpoints"].append(payload)
    hostile["endpoints"][0].update(value=payload, artifacts=[payload], well_known=payload)
    finding = hostile["findings"][0]
    finding["artifact"]["path"] = payload
    finding["evidence"][0].update(value=payload, excerpt=payload)
    node = hostile["extraction"]["tree"][-1]
    node.update(name=payload, link_target=payload, format=payload)
    hostile["extraction"]["errors"].append({"path": payload, "error": payload, "kind": "failure",
                                           "extractor": payload})
    hostile["analysis"]["issues"].append({"sha256": "0" * 64, "path": payload, "analyzer": "x", "error": payload})
    hostile["limits"]["analyzers"][0]["limitations"] = f"``{payload}`` and {payload}"
    hostile["review"] = {"reviewer": payload, "note": payload, "decisions": [{"behaviour": payload}]}
    return hostile


def test_text_from_the_image_appears_only_escaped(sample_report: dict[str, Any]) -> None:
    report = _hostile(sample_report)
    html = render_html(report)
    assert XSS_SCRIPT not in html and '"onmouseover=' not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 12
    assert "&#34;onmouseover=alert(1) x=&#34;" in html
    page = read_page(html)
    assert [t.name for t in page.tags].count("script") == 1
    assert not [(t.name, a) for t in page.tags for a in t.attributes if a.startswith("on")]
    assert "<code>&lt;script&gt;" in html, "a literal span of a docstring is escaped inside its <code>"


def test_for_print_opens_every_collapsible_section(sample_report: dict[str, Any]) -> None:
    report = sample_report
    on_screen = [t for t in read_page(render_html(report)).tags if t.name == "details"]
    printed = [t for t in read_page(render_html(report, for_print=True)).tags if t.name == "details"]
    assert any("open" not in t.attributes for t in on_screen), "some sections start collapsed on screen"
    assert len(printed) == len(on_screen) and all("open" in t.attributes for t in printed)


def test_sign_off_block_is_blank_until_reviewed_then_shows_the_review(sample_report: dict[str, Any]) -> None:
    report = sample_report
    blank = _section(render_html(report), "review")
    assert report["review"] is None and "Not yet reviewed" in blank and "Signature" in blank
    reviewed = dict(report, review={"reviewer": "A. Examiner", "decided_at": "2026-01-02T03:04:05Z",
                                    "verdict": "suspicious", "note": "vendor beacon, owner informed",
                                    "decisions": {"exfil.personal-data-to-remote": "dismissed"}})
    review = _section(render_html(reviewed), "review")
    assert "Not yet reviewed" not in review
    for text in ("A. Examiner", "2026-01-02T03:04:05Z", "suspicious", "vendor beacon, owner informed",
                 "exfil.personal-data-to-remote", "dismissed"):
        assert text in review


def test_custody_mismatch_raises_the_alarm(sample_report: dict[str, Any]) -> None:
    report = copy.deepcopy(sample_report)
    report["custody"]["stored_copy"].update(intact=False, sha256="f" * 64)
    custody = _section(render_html(report), "custody")
    assert "Verified: identical" not in custody and "ALARM" in custody
    assert re.search(r"SHA256.*?NO</b>", custody, re.S)


def test_footer_explains_what_the_digest_covers(sample_report: dict[str, Any]) -> None:
    report = sample_report
    footer = render_html(report).split("<footer>")[1]
    assert report["report_digest"] in footer
    assert "behaviours, endpoints, findings" in footer and "custody" in footer
