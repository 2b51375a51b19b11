"""Streamed multipart uploads: hashed on the way into the store, limits enforced as bytes arrive, and a refused
request leaves nothing behind: no blob, no temporary file."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.api import upload
from pipeline.api.upload import (
    FALLBACK_FILENAME,
    MAX_FILENAME,
    MalformedUpload,
    UploadLimits,
    UploadRejected,
    receive_form,
    safe_filename,
)
from pipeline.store import BlobWriter, LocalBlobStore

BOUNDARY = "fwtriage-test-7d3f"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
LIMIT = 10_000


class WatchedStore(LocalBlobStore):
    """A local store that remembers how many bytes each discarded writer had received."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.discarded: list[int] = []

    def discard(self, writer: BlobWriter) -> None:
        self.discarded.append(writer.size)
        super().discard(writer)


class HookedWriter(BlobWriter):
    def __init__(self, writer: BlobWriter, before_write: Callable[[], None]) -> None:
        super().__init__(writer._handle, writer.temp_path)
        self._before_write = before_write

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._before_write()
        super().write(data)


class HookedStore(WatchedStore):
    """A watched store whose writers call ``before_write`` first: to fail as a full disk, or to be slow."""

    def __init__(self, root: Path, before_write: Callable[[], None]) -> None:
        super().__init__(root)
        self._before_write = before_write

    @contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        with super().writer() as writer:
            yield HookedWriter(writer, self._before_write)


def make_app(store: LocalBlobStore, limits: UploadLimits,
             check_fields: Callable[[dict[str, str]], object] | None = None) -> Starlette:
    async def submit(request: Request) -> JSONResponse:
        try:
            form = await receive_form(request, store, limits, check_fields=check_fields)
        except UploadRejected as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return JSONResponse({"fields": form.fields, "files": [asdict(received) for received in form.files]})

    return Starlette(routes=[Route("/submissions", submit, methods=["POST"])])


class CountingReceive:
    """ASGI middleware counting the body messages the app read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.reads = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            self.reads += message["type"] == "http.request"
            return message

        await self.app(scope, counted, send)


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def stored_files(store: LocalBlobStore) -> list[Path]:
    """Every file under the store's root: blobs and temporaries alike."""
    return [path for path in store.root.rglob("*") if path.is_file()]


def hashes(content: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, content).hexdigest() for name in ("md5", "sha1", "sha256")}


def post_in_chunks(app: ASGIApp, payload: bytes, chunk: int, headers: dict[str, str] | None = None
                   ) -> httpx.Response:
    """POST ``payload`` as a stream of ``chunk``-byte body messages, as a real server delivers it."""
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), chunk):
            yield payload[start:start + chunk]

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/submissions", content=chunks(),
                                     headers={"content-type": MULTIPART, **(headers or {})})

    return asyncio.run(send())


@pytest.fixture
def store(tmp_path: Path) -> WatchedStore:
    return WatchedStore(tmp_path / "store")


@pytest.fixture
def client(store: WatchedStore) -> TestClient:
    return TestClient(make_app(store, UploadLimits(file_bytes=LIMIT, files=4, field_bytes=64, fields=3)))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 1 KiB, so a few kilobytes go through the hashing lanes in many batches."""
    monkeypatch.setattr(upload, "BATCH", 1024)


def test_one_file_and_fields_are_hashed_and_stored(client: TestClient, store: WatchedStore) -> None:
    content = os.urandom(5000)
    response = client.post("/submissions", data={"case": "K-2024-17", "exhibit": "E1"},
                           files=[("files", ("router.bin", content))])
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["fields"] == {"case": "K-2024-17", "exhibit": "E1"}
    assert result["files"] == [{"filename": "router.bin", "size": 5000, **hashes(content)}]
    assert store.path(hashes(content)["sha256"]).read_bytes() == content
    assert not list(store.tmp.iterdir())


def test_a_file_input_left_empty_is_no_file(client: TestClient, store: WatchedStore) -> None:
    """A browser sends an unnamed, empty part for an empty file input; a named empty file is a file."""
    payload = body(part("case", b"K-1"), part("files", b"", filename=""), part("files", b"", filename="empty.bin"))
    response = client.post("/submissions", content=payload, headers={"content-type": MULTIPART})
    assert response.status_code == 200, response.text
    assert [f["filename"] for f in response.json()["files"]] == ["empty.bin"]
    assert not list(store.tmp.iterdir())


def test_several_files_keep_their_order(client: TestClient) -> None:
    contents = [b"first image", b"", os.urandom(3000)]
    files = [("files", (f"{index}.img", content)) for index, content in enumerate(contents)]
    response = client.post("/submissions", files=files)
    assert response.status_code == 200, response.text
    received = response.json()["files"]
    assert [(f["filename"], f["size"], f["sha256"]) for f in received] == [
        (f"{index}.img", len(content), hashes(content)["sha256"]) for index, content in enumerate(contents)]


@pytest.mark.usefixtures("small_batches")
def test_a_body_in_odd_chunks_hashes_the_same(store: WatchedStore) -> None:
    contents = [os.urandom(LIMIT), os.urandom(4097), b"x"]
    payload = body(part("case", b"K-1"), *(part("files", c, f"f{i}.bin") for i, c in enumerate(contents)))
    response = post_in_chunks(make_app(store, UploadLimits(file_bytes=LIMIT)), payload, chunk=997)
    assert response.status_code == 200, response.text
    assert [{k: f[k] for k in ("md5", "sha1", "sha256")} for f in response.json()["files"]] == [
        hashes(content) for content in contents]
    assert all(store.path(hashes(content)["sha256"]).read_bytes() == content for content in contents)


def test_file_of_exactly_the_limit_is_accepted(client: TestClient) -> None:
    response = client.post("/submissions", files=[("files", ("max.bin", b"\xff" * LIMIT))])
    assert response.status_code == 200, response.text
    assert response.json()["files"][0]["size"] == LIMIT


@pytest.mark.usefixtures("small_batches")
def test_file_over_the_limit_stops_the_upload_and_leaves_nothing(store: WatchedStore) -> None:
    app = CountingReceive(make_app(store, UploadLimits(file_bytes=LIMIT)))
    payload = body(part("files", b"fine", "a.bin"), part("files", os.urandom(LIMIT + 1), "b.bin"),
                   part("files", os.urandom(20 * LIMIT), "c.bin"))
    response = post_in_chunks(app, payload, chunk=500)
    assert response.status_code == 413
    assert "b.bin" in response.json()["error"]
    assert stored_files(store) == []
    assert len(store.discarded) == 2 and 0 < store.discarded[1] <= LIMIT  # written while it came, never past
    assert app.reads < len(payload) // 500 // 4  # the rest of the body was never read


def test_limit_plus_one_is_refused_with_nothing_stored(client: TestClient, store: WatchedStore) -> None:
    files = [("files", ("ok.bin", b"ok")), ("files", ("big.bin", b"\0" * (LIMIT + 1)))]
    response = client.post("/submissions", files=files)
    assert response.status_code == 413
    assert stored_files(store) == []


def test_declared_length_over_the_limits_is_refused_before_reading(store: WatchedStore) -> None:
    """A Content-Length over the limits.

    Outcome: 413 before a byte of the body is read."""
    limits = UploadLimits(file_bytes=LIMIT, files=2)
    app = CountingReceive(make_app(store, limits))
    response = TestClient(app).post("/submissions", content=body(part("files", b"tiny", "t.bin")),
                                    headers={"content-type": MULTIPART, "content-length": str(limits.body_bytes + 1)})
    assert response.status_code == 413
    assert app.reads == 0


def test_too_many_files_is_too_large(client: TestClient, store: WatchedStore) -> None:
    response = client.post("/submissions", files=[("files", (f"{n}.bin", b"x")) for n in range(5)])
    assert response.status_code == 413
    assert stored_files(store) == []


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data", "text/plain; boundary=x"])
def test_not_a_multipart_body_is_malformed(client: TestClient, content_type: str) -> None:
    response = client.post("/submissions", content=b"{}", headers={"content-type": content_type})
    assert response.status_code == 400


def test_truncated_body_is_malformed_and_leaves_nothing(client: TestClient, store: WatchedStore) -> None:
    """A body cut before its closing boundary.

    Outcome: 400; no blob and no temporary file left."""
    truncated = part("case", b"K-1") + part("files", b"half an image", "cut.bin")[:-5]
    response = client.post("/submissions", content=truncated, headers={"content-type": MULTIPART})
    assert response.status_code == 400
    assert "closing boundary" in response.json()["error"]
    assert stored_files(store) == []
    assert store.discarded == [0]


def test_bad_part_headers_are_malformed(client: TestClient) -> None:
    payload = f"--{BOUNDARY}\r\nContent-Disposition: attachment\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode()
    response = client.post("/submissions", content=payload, headers={"content-type": MULTIPART})
    assert response.status_code == 400


def test_file_under_another_field_name_is_refused_by_name(client: TestClient, store: WatchedStore) -> None:
    response = client.post("/submissions", files=[("files", ("a.bin", b"a")), ("image", ("b.bin", b"b"))])
    assert response.status_code == 400
    assert "'image'" in response.json()["error"]
    assert stored_files(store) == []


def test_too_many_fields_is_malformed(client: TestClient) -> None:
    payload = body(*(part(f"f{n}", b"v") for n in range(4)))
    response = client.post("/submissions", content=payload, headers={"content-type": MULTIPART})
    assert response.status_code == 400
    assert "more than 3 fields" in response.json()["error"]


def test_repeated_field_keeps_its_last_value(client: TestClient) -> None:
    response = client.post("/submissions", content=body(part("case", b"first"), part("case", b"second")),
                           headers={"content-type": MULTIPART})
    assert response.json()["fields"] == {"case": "second"}


@pytest.mark.parametrize("value", [b"\xff\xfe seal", b"x" * 65])
def test_invalid_utf8_or_oversize_field_is_malformed(client: TestClient, value: bytes) -> None:
    response = client.post("/submissions", content=body(part("exhibit", value)), headers={"content-type": MULTIPART})
    assert response.status_code == 400
    assert "exhibit" in response.json()["error"]


def test_fields_refused_by_the_caller_leave_nothing(store: WatchedStore) -> None:
    def no_examiner(fields: dict[str, str]) -> None:
        if "examiner" not in fields:
            raise MalformedUpload("examiner is required")

    app = make_app(store, UploadLimits(file_bytes=LIMIT), check_fields=no_examiner)
    response = TestClient(app).post("/submissions", files=[("files", ("a.bin", b"image"))])
    assert (response.status_code, response.json()) == (400, {"error": "examiner is required"})
    assert stored_files(store) == []


def test_store_error_propagates_and_leaves_no_temporary(tmp_path: Path) -> None:
    def disk_full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    store = HookedStore(tmp_path / "store", disk_full)
    client = TestClient(make_app(store, UploadLimits(file_bytes=LIMIT)))
    with pytest.raises(OSError, match="No space left"):
        client.post("/submissions", files=[("files", ("a.bin", b"image"))])
    assert stored_files(store) == []


@pytest.mark.usefixtures("small_batches")
def test_writer_is_discarded_only_once_its_lanes_are_idle(tmp_path: Path) -> None:
    events: list[str] = []

    def slow_write() -> None:
        time.sleep(0.02)
        events.append("write")

    class Store(HookedStore):
        def discard(self, writer: BlobWriter) -> None:
            events.append("discard")
            super().discard(writer)

    store = Store(tmp_path / "store", slow_write)
    payload = body(part("files", os.urandom(LIMIT + 1), "big.bin"))
    response = post_in_chunks(make_app(store, UploadLimits(file_bytes=LIMIT)), payload, chunk=3000)
    assert response.status_code == 413
    time.sleep(0.1)  # room for a write that outlived the request to show in the events
    assert "write" in events and events[-1] == "discard"


def test_streamed_body_over_the_limits_is_too_large_without_a_length(store: WatchedStore) -> None:
    limits = UploadLimits(file_bytes=LIMIT, files=1, field_bytes=64, fields=1)
    payload = body(part("files", b"fw", "a.bin")) + b"epilogue" * limits.body_bytes
    response = post_in_chunks(make_app(store, limits), payload, chunk=64 * 1024)
    assert response.status_code == 413
    assert stored_files(store) == []


@pytest.mark.parametrize(("raw", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\x\\y.bin", "y.bin"),
    ("a\x00b", "ab"),
    ("\u202etxt.exe", "txt.exe"),
    ("..\\..//.hidden", "hidden"),
    ("dump\x85\x7f.img ", "dump.img"),
    ("", FALLBACK_FILENAME),
    (None, FALLBACK_FILENAME),
    ("../..", FALLBACK_FILENAME),
    ("x/", FALLBACK_FILENAME),
    ("téléphone.bin".encode(), "téléphone.bin"),
    (b"\xffboot.img", "\ufffdboot.img"),
])
def test_safe_filename_on_hostile_names(raw: str | bytes | None, expected: str) -> None:
    assert safe_filename(raw) == expected


def test_safe_filename_caps_long_names_keeping_the_extension() -> None:
    assert safe_filename("a" * 1000 + ".bin") == "a" * (MAX_FILENAME - 4) + ".bin"
    assert safe_filename("b" * 1000) == "b" * MAX_FILENAME
    assert safe_filename("c" * 1000 + "." + "d" * 100) == ("c" * 1000 + "." + "d" * 100)[:MAX_FILENAME]


def test_hostile_filename_in_an_upload_is_shown_safely(client: TestClient) -> None:
    response = client.post("/submissions", content=body(part("files", b"fw", "../../\u202egpj.exe")),
                           headers={"content-type": MULTIPART})
    assert response.json()["files"][0]["filename"] == "gpj.exe"


@given(st.one_of(st.none(), st.text(), st.binary()))
def test_safe_filename_is_always_a_plain_name(raw: str | bytes | None) -> None:
    name = safe_filename(raw)
    assert name and len(name) <= MAX_FILENAME
    assert "/" not in name and "\\" not in name
    assert not any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in name)
    assert not name.startswith((".", " "))
    json.dumps(name).encode("utf-8")  # storable and displayable as it is
