"""The JSON API: uploads streamed and hashed, triage to the end, search, reports, reviews, errors, and the
authorisation matrix (every route × every kind of caller), which proves a lab never sees another lab's data."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from pipeline.api.app import create_app
from pipeline.api.routes import router as api_router
from pipeline.config import Settings
from pipeline.scan import ScanOutcome
from tests.service import PASSWORD, Person, add_people, build_services, finished

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "out"
BACKDOOR = "featurephone-sc6531e.pac"
CLEAN = "featurephone-sc6531e-clean.pac"


@pytest.fixture(scope="module")
def reports(sample_scans: Callable[[str], ScanOutcome]) -> dict[str, dict]:
    return {name: sample_scans(name).report for name in (BACKDOOR, CLEAN)}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    services = build_services(Settings(home=tmp_path / "home"), max_upload_bytes=1 << 20, max_files_per_upload=4)
    with TestClient(create_app(services)) as test_client:
        yield test_client


@pytest.fixture
def people(client: TestClient) -> dict[str, Person]:
    return add_people(client.app.state.services.database)


def wait_until_final(client: TestClient, person: Person, submission_id: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/submissions/{submission_id}", headers=person.headers).json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"submission {submission_id} still {status['state']} after {seconds} s")


def upload(client: TestClient, person: Person, files: list[tuple[str, bytes]], **fields: str) -> Any:
    return client.post("/api/v1/submissions", headers=person.headers, data=fields,
                       files=[("files", (name, io.BytesIO(content), "application/octet-stream"))
                              for name, content in files])


# --- submitting and following ------------------------------------------------------------------------------

def test_an_uploaded_image_is_triaged_like_a_scan(client: TestClient, people: dict[str, Person],
                                                  sample_scans: Callable[[str], ScanOutcome]) -> None:
    content = (SAMPLES / BACKDOOR).read_bytes()
    lab = people["beta-intake"]
    response = upload(client, lab, [(BACKDOOR, content)], case="CASE-77", exhibit="SEAL-0042", device="mini phone",
                      examiner="J. Doe")
    assert response.status_code == 201, response.text
    [created] = response.json()["submissions"]
    assert created["sha256"] == hashlib.sha256(content).hexdigest() and created["size"] == len(content)
    assert (created["case"], created["exhibit"], created["lab"]) == ("CASE-77", "SEAL-0042", "beta")
    status = wait_until_final(client, lab, created["id"])
    assert (status["state"], status["verdict"]) == ("done", "backdoor")
    assert status["progress"]["done"] == status["progress"]["total"] > 0
    report = client.get(f"/api/v1/submissions/{created['id']}/report.json", headers=lab.headers).json()
    assert report["report_digest"] == sample_scans(BACKDOOR).report["report_digest"]
    assert report["submission"]["md5"] == hashlib.md5(content).hexdigest()
    html = client.get(f"/api/v1/submissions/{created['id']}/report.html", headers=lab.headers)
    assert html.headers["content-type"].startswith("text/html") and "SEAL-0042" in html.text
    pdf = client.get(f"/api/v1/submissions/{created['id']}/report.pdf", headers=lab.headers)
    assert pdf.content.startswith(b"%PDF-")
    reads = [e for e in client.app.state.services.database.audit_events(created["id"]) if e.action == "report.read"]
    assert [e.actor for e in reads] == ["beta-intake"] * 3


def test_several_files_at_once_become_several_submissions(client: TestClient, people: dict[str, Person]) -> None:
    files = [("one.bin", b"first image"), ("two.bin", b"second image"), ("three.bin", b"")]
    response = upload(client, people["alpha-intake"], files, case="CASE-3")
    assert response.status_code == 201
    created = response.json()["submissions"]
    assert [c["filename"] for c in created] == ["one.bin", "two.bin", "three.bin"]
    assert [c["sha256"] for c in created] == [hashlib.sha256(data).hexdigest() for _, data in files]
    assert len({c["id"] for c in created}) == 3
    store = client.app.state.services.store
    assert all(store.exists(c["sha256"]) for c in created)


def test_too_large_an_upload_is_refused_and_nothing_is_kept(client: TestClient, people: dict[str, Person]) -> None:
    """An upload one byte over the size limit.

    Outcome: 413 as soon as the limit is passed; nothing kept in the store and no submission recorded."""
    response = upload(client, people["alpha-intake"], [("big.bin", b"\0" * ((1 << 20) + 1))])
    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["error"]["message"]
    services = client.app.state.services
    assert services.database.list_submissions() == []
    assert not any(path.is_file() for path in services.settings.store_dir.rglob("*"))


@pytest.mark.parametrize(("fields", "problem"), [
    ({"exibit": "SEAL-1"}, "unknown field 'exibit'"),
    ({"exhibit": "SEAL\x00-1"}, "exhibit holds a control"),
    ({"case": "C" * 201}, "case is longer than 200"),
    ({"examiner": "J.\u202eDoe"}, "examiner holds a control"),
])
def test_malformed_metadata_is_a_422_and_nothing_is_recorded(client: TestClient, people: dict[str, Person],
                                                             fields: dict[str, str], problem: str) -> None:
    """Malformed case metadata (unknown field, NUL, bidi override, 201 characters).

    Outcome: 422 naming the field and the problem; nothing recorded."""
    response = upload(client, people["alpha-intake"], [("x.bin", b"image")], **fields)
    assert response.status_code == 422
    assert problem in response.json()["error"]["message"]
    assert client.app.state.services.database.list_submissions() == []


def test_an_upload_without_a_file_or_not_multipart_is_refused(client: TestClient, people: dict[str, Person]) -> None:
    lab = people["alpha-intake"]
    fields_only = client.post("/api/v1/submissions", headers=lab.headers, files={"case": (None, "C")})
    assert fields_only.status_code == 422 and "no file" in fields_only.json()["error"]["message"]
    left_empty = client.post("/api/v1/submissions", headers=lab.headers, data={"case": "C"},
                             files=[("files", ("", b"", "application/octet-stream"))])
    assert left_empty.status_code == 422
    assert client.post("/api/v1/submissions", headers=lab.headers, data={"case": "C"}).status_code == 400
    assert client.post("/api/v1/submissions", headers=lab.headers, json={"files": []}).status_code == 400


def test_a_hostile_file_name_is_stored_as_a_plain_name(client: TestClient, people: dict[str, Person]) -> None:
    """An upload file name with a path, HTML and a control character.

    Outcome: stored as its last component, without separators or control characters."""
    response = upload(client, people["alpha-intake"], [("../../etc/<script>x</script>\x07.bin", b"image")])
    [created] = response.json()["submissions"]
    assert "/" not in created["filename"] and "\x07" not in created["filename"]


def test_a_report_not_ready_is_a_409(client: TestClient, people: dict[str, Person]) -> None:
    database = client.app.state.services.database
    queued = database.create_submission(filename="x", size=1, md5="0" * 32, sha1="0" * 40, sha256="2" * 64,
                                        lab_id=people["alpha-intake"].lab_id)
    response = client.get(f"/api/v1/submissions/{queued.id}/report.json", headers=people["alpha-intake"].headers)
    assert response.status_code == 409 and "queued" in response.json()["error"]["message"]


# --- search, endpoints, campaign -------------------------------------------------------------------------

def test_search_by_every_filter(client: TestClient, people: dict[str, Person], reports: dict[str, dict],
                                sample_trees: Any) -> None:
    database = client.app.state.services.database
    lab_id = people["beta-intake"].lab_id
    backdoor = finished(database, reports[BACKDOOR], lab_id, exhibit="SEAL-B", case="CASE-B")
    clean = finished(database, reports[CLEAN], lab_id, exhibit="SEAL-C", case="CASE-C", filename="clean-phone.pac")
    tree = sample_trees(CLEAN)
    database.save_extraction(clean.id, tree)
    inner = next(a.sha256 for a in tree.artifacts if a.depth > 0)
    endpoint = next(f["endpoint"]["value"] for f in reports[BACKDOOR]["findings"] if f.get("endpoint"))

    def ids(**query: Any) -> list[str]:
        response = client.get("/api/v1/submissions", params=query, headers=people["chief-reviewer"].headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert set(ids()) == {backdoor.id, clean.id}
    assert ids(case="CASE-B") == [backdoor.id]
    assert ids(exhibit="SEAL-C") == [clean.id]
    assert ids(verdict="backdoor") == [backdoor.id]
    assert ids(min_score=reports[BACKDOOR]["verdict"]["score"]) == [backdoor.id]
    assert ids(max_score=reports[CLEAN]["verdict"]["score"]) == [clean.id]
    assert ids(endpoint=endpoint.upper()) == [backdoor.id]
    assert ids(sha256=inner) == [clean.id]
    assert ids(sha256=backdoor.sha256) == [backdoor.id]
    assert ids(q="clean-PHONE") == [clean.id]
    assert ids(q="%") == []
    assert client.get("/api/v1/submissions", params={"sha256": "nothex"},
                      headers=people["chief-reviewer"].headers).status_code == 422


def test_endpoints_and_campaign_link_devices(client: TestClient, people: dict[str, Person],
                                             reports: dict[str, dict]) -> None:
    database = client.app.state.services.database
    lab_id = people["beta-intake"].lab_id
    first = finished(database, reports[BACKDOOR], lab_id, exhibit="SEAL-1", sha256="a" * 64)
    second = finished(database, reports[BACKDOOR], lab_id, exhibit="SEAL-2", sha256="a" * 64)
    headers = people["beta-intake"].headers
    seen = client.get("/api/v1/endpoints", headers=headers).json()["endpoints"]
    domain = next(e for e in seen if e["value"] == "sms.reg-cn.example.cn")
    assert (domain["kind"], domain["country"]) == ("domain", "CN")
    assert {s["id"] for s in domain["submissions"]} == {first.id, second.id}
    found = client.get("/api/v1/campaign", headers=headers).json()
    assert "sms.reg-cn.example.cn" in {e["value"] for e in found["shared_endpoints"]}
    [image] = found["shared_images"]
    assert image["sha256"] == "a" * 64 and {s["exhibit"] for s in image["submissions"]} == {"SEAL-1", "SEAL-2"}


# --- reviewing ---------------------------------------------------------------------------------------------

def test_a_review_through_the_api(client: TestClient, people: dict[str, Person], reports: dict[str, dict]) -> None:
    database = client.app.state.services.database
    record = finished(database, reports[BACKDOOR], people["beta-intake"].lab_id)
    reviewer = people["chief-reviewer"].headers
    base = f"/api/v1/submissions/{record.id}/review"
    behaviour = reports[BACKDOOR]["behaviours"][0]["id"]
    decided = client.post(f"{base}/decisions", headers=reviewer,
                          json={"subject": f"behaviour:{behaviour}", "decision": "confirmed", "note": "seen"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["current"][f"behaviour:{behaviour}"]["decision"] == "confirmed"
    assert client.post(f"{base}/decisions", headers=reviewer,
                       json={"subject": "finding:0", "decision": "maybe"}).status_code == 422
    assert client.post(f"{base}/signoff", headers=reviewer, json={}).status_code == 409
    assert client.post(f"{base}/verdict", headers=reviewer, json={"verdict": "backdoor"}).status_code == 200
    signed = client.post(f"{base}/signoff", headers=reviewer, json={"note": "final"}).json()
    assert (signed["status"], signed["human_verdict"], signed["machine_verdict"]) == (
        "signed_off", "backdoor", "backdoor")
    served = client.get(f"/api/v1/submissions/{record.id}/report.json", headers=reviewer).json()
    assert (served["review"]["status"], served["review"]["reviewer"], served["review"]["verdict"]) == (
        "signed_off", "chief-reviewer", "backdoor")
    assert served["report_digest"] == reports[BACKDOOR]["report_digest"]  # the review lies outside the digest
    html = client.get(f"/api/v1/submissions/{record.id}/report.html", headers=reviewer).text
    assert "Not yet reviewed" not in html and "chief-reviewer" in html
    status = client.get(f"/api/v1/submissions/{record.id}", headers=people["beta-intake"].headers).json()
    assert status["review"]["status"] == "signed_off" and status["review"]["signed_off_at"]
    trail = client.get("/api/v1/audit", params={"submission": record.id}, headers=reviewer).json()["entries"]
    assert [e["detail"].get("subject") for e in trail if e["action"] == "review.recorded"] == [
        "signoff", "verdict", f"behaviour:{behaviour}"]


def test_a_browser_session_needs_its_csrf_token_to_change_anything(client: TestClient, people: dict[str, Person],
                                                                   reports: dict[str, dict]) -> None:
    record = finished(client.app.state.services.database, reports[BACKDOOR], people["beta-intake"].lab_id)
    session = client.app.state.services.signin.sign_in("chief-reviewer", PASSWORD)
    client.cookies.set("fwtriage_session", session.secret)
    url = f"/api/v1/submissions/{record.id}/review/verdict"
    assert client.get(f"/api/v1/submissions/{record.id}").status_code == 200
    assert client.post(url, json={"verdict": "clean"}).status_code == 403
    assert client.post(url, json={"verdict": "clean"}, headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert client.post(url, json={"verdict": "clean"}, headers={"X-CSRF-Token": session.csrf}).status_code == 200
    client.cookies.clear()


def test_errors_are_json_with_a_message(client: TestClient, people: dict[str, Person]) -> None:
    missing = client.get("/api/v1/submissions/nope", headers=people["chief-reviewer"].headers)
    assert missing.status_code == 404 and missing.json() == {"error": {"status": 404,
                                                                       "message": "no submission nope"}}
    anonymous = client.get("/api/v1/submissions")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert "message" in anonymous.json()["error"]
    bad = client.get("/api/v1/submissions", params={"limit": 0}, headers=people["chief-reviewer"].headers)
    assert bad.status_code == 422 and "limit" in bad.json()["error"]["message"]


def test_openapi_documents_every_api_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    served = {(method, f"/api/v1{route.path}") for route in api_router.routes for method in route.methods}
    assert served <= documented and len(served) == 15
    assert client.get("/docs").status_code == 200


def test_every_answer_carries_the_security_headers(client: TestClient, people: dict[str, Person],
                                                   reports: dict[str, dict]) -> None:
    """Security headers on JSON, pages, errors and the report.

    Outcome: every answer forbids framing, sniffing and caching and sends no referrer; pages allow scripts from the
    site only (no inline script); the HTML report keeps its own stricter policy (its one script by hash).
    """
    record = finished(client.app.state.services.database, reports[BACKDOOR], people["beta-intake"].lab_id)
    headers = people["beta-intake"].headers
    answers = {"json": client.get("/api/v1/me", headers=headers), "error": client.get("/api/v1/submissions"),
               "page": client.get("/signin"),
               "report": client.get(f"/api/v1/submissions/{record.id}/report.html", headers=headers)}
    for name, answer in answers.items():
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
        assert answer.headers["cache-control"] == "no-store", name
    assert "script-src 'self'" in answers["page"].headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answers["page"].headers["content-security-policy"]
    report_policy = answers["report"].headers["content-security-policy"]
    assert report_policy.startswith("default-src 'none'") and "script-src 'sha256-" in report_policy
    assert f'content="{escape(report_policy)}"' in answers["report"].text  # the same as the file's own <meta>
