"""Receiving firmware images over HTTP: a multipart/form-data body streamed straight into the blob store.

Why streamed: an image is gigabytes and a lab sends several in one request, so no part is ever held in memory
or spooled to a framework's temporary file. Each file part goes through a ``BlobWriter`` as it arrives, hashed
md5, sha1 and sha256 on the way (the three hashes a chain of custody quotes, as ``pipeline.ingest`` does for
the CLI). Limits are checked as the bytes arrive, so a file over its limit is refused before any byte past the
limit is written, and nothing reaches the store unless the whole form was received: a rejected or broken
request leaves no blob and no temporary file behind.

Why threads: md5 alone hashes about 550 MB/s on one core, and md5 + sha1 + sha256 one after the other about
330 MB/s, while reading and parsing the body already takes most of the event loop's core. hashlib releases the
GIL on large buffers, so a file part's bytes are gathered (without copying) into batches of ``BATCH`` bytes and
each batch is hashed in two lanes on worker threads (md5 in one; sha1 and the writer, which writes and computes
sha256, in the other) while the event loop reads and parses the next batch. Measured on two cores with a 1 GB
upload over loopback (uvicorn, h11): about 280-320 MB/s, against 170 hashing on the event loop, 210-260 with one
lane and no better with three; batches of 1 MiB lost much of the gain to handing each one over. A file has at
most one batch in its lanes and one being gathered: memory stays bounded whatever the size of the upload (the
server's peak RSS stayed near 50 MB), and the HTTP server's flow control holds the client back meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from pipeline.store import CHUNK, BlobStore, BlobWriter

BATCH = 8 * CHUNK
"""Bytes of a file part handed to the hashing lanes at once: large, so handing over costs little per byte."""

PART_FRAMING = 16 * 1024
"""Room allowed per part for its boundary line and headers when judging a Content-Length."""

FALLBACK_FILENAME = "upload.bin"
MAX_FILENAME = 200
_MAX_EXTENSION = 16
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, bidi/format, lone surrogates, breaks
_LEADING_JUNK = re.compile(r"^[.\s]+")

_DIGEST_THREADS = concurrent.futures.ThreadPoolExecutor(
    max_workers=2 * (os.cpu_count() or 1), thread_name_prefix="upload-digest")


@dataclass(frozen=True)
class ReceivedFile:
    """A file part stored in the blob store under ``sha256``; ``filename`` is for display only."""

    filename: str
    size: int
    md5: str
    sha1: str
    sha256: str


@dataclass(frozen=True)
class ReceivedForm:
    """The text fields (a repeated field keeps its last value) and the stored files, in the order received."""

    fields: dict[str, str]
    files: list[ReceivedFile]


class UploadRejected(Exception):
    """The request cannot be accepted; ``status`` is the HTTP status to answer, the message is for the client."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UploadTooLarge(UploadRejected):
    """A file, the number of files or the whole body goes past its limit."""

    status = 413


class MalformedUpload(UploadRejected):
    """Not a multipart/form-data body, or a broken one: no boundary, truncated, bad part headers, bad fields."""

    status = 400


@dataclass(frozen=True)
class UploadLimits:
    """What one request may carry. Too many files is a 413 like too large a file; too many fields is a 400."""

    file_bytes: int
    files: int = 64
    field_bytes: int = 4096
    fields: int = 32

    @property
    def body_bytes(self) -> int:
        """The largest body these limits allow: every file and field at its limit, each with its framing."""
        parts = self.files * (self.file_bytes + PART_FRAMING) + self.fields * (self.field_bytes + PART_FRAMING)
        return parts + PART_FRAMING  # the closing boundary, a preamble and an epilogue


def safe_filename(raw: str | bytes | None) -> str:
    """A client-sent filename made safe to display, log and put in a report; never raises.

    The name is for display only: the blob is stored under its sha256 and this name never becomes a path.
    Still, it is shown to reviewers, so it keeps only the last path component (``/`` or ``\\``), loses control,
    bidi-override and other invisible format characters (a ``\\u202e`` makes ``txt.exe`` read as ``exe.txt``)
    and leading dots and spaces, and is cut to ``MAX_FILENAME`` characters keeping a short extension. A name left
    empty becomes ``FALLBACK_FILENAME``. Bytes are decoded as UTF-8, an invalid sequence becoming U+FFFD.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw or "")
    visible = "".join(c for c in text if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    name = _LEADING_JUNK.sub("", visible.replace("\\", "/").rpartition("/")[2]).rstrip()
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= _MAX_EXTENSION:
            name = stem[:MAX_FILENAME - len(extension) - 1].rstrip() + dot + extension
        else:
            name = name[:MAX_FILENAME].rstrip()
    return name or FALLBACK_FILENAME


def _shown(name: bytes) -> str:
    """A client-sent part name quoted on one line for an error message, however hostile."""
    return repr(name.decode("utf-8", errors="replace")[:64])


class _FieldPart:
    """A text field's value, gathered up to the field limit."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self._limit = limit
        self._value = bytearray()

    def add(self, data: memoryview) -> None:
        if len(self._value) + len(data) > self._limit:
            raise MalformedUpload(f"field {self.name!r} is longer than {self._limit} bytes")
        self._value += data

    def value(self) -> str:
        try:
            return self._value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedUpload(f"field {self.name!r} is not valid UTF-8") from exc


class _FilePart:
    """A file part on its way into a blob writer, hashed in two lanes on worker threads.

    ``add`` only gathers (it runs inside the parser's callbacks); ``pump`` hands a full batch to the lanes once
    the previous batch has left them, so each lane sees the batches in order and one at a time.
    """

    def __init__(self, filename: str, writer: BlobWriter, limit: int, named: bool = True) -> None:
        self.filename = filename
        self.named = named  # a browser sends an unnamed, empty part for a file input left empty
        self.writer = writer
        self._limit = limit
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._lanes = (self._hash_md5, self._hash_sha1_and_write)
        self._batch: list[memoryview] = []
        self._batch_bytes = 0
        self._in_lanes: list[concurrent.futures.Future[None]] = []
        self.ended = False

    def add(self, data: memoryview) -> None:
        if self.size + len(data) > self._limit:
            raise UploadTooLarge(f"file {self.filename!r} is larger than {self._limit} bytes")
        self.size += len(data)
        self._batch.append(data)
        self._batch_bytes += len(data)

    def _hash_md5(self, batch: Sequence[memoryview]) -> None:
        for data in batch:
            self._md5.update(data)

    def _hash_sha1_and_write(self, batch: Sequence[memoryview]) -> None:
        for data in batch:
            self._sha1.update(data)
            self.writer.write(data)

    async def pump(self) -> None:
        """Send the gathered batch to the lanes if it is full, or if the part has ended, whatever its size."""
        if self._batch_bytes < BATCH and not (self.ended and self._batch):
            return
        await self.drain()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._in_lanes = [_DIGEST_THREADS.submit(lane, batch) for lane in self._lanes]

    async def drain(self) -> None:
        """Wait for the batch in the lanes; a lane's error (the disk full) is raised here."""
        await asyncio.gather(*(asyncio.wrap_future(future) for future in self._in_lanes))
        self._in_lanes = []  # kept until here: when one lane fails, ``settle`` still waits for the other

    def settle(self) -> None:
        """Block until no lane works on this part any more, so its writer can be discarded safely.

        A batch takes milliseconds to hash, so waiting here, even on the event loop, is short.
        """
        concurrent.futures.wait(self._in_lanes)
        self._in_lanes = []

    def received(self, sha256: str) -> ReceivedFile:
        return ReceivedFile(self.filename, self.size, self._md5.hexdigest(), self._sha1.hexdigest(), sha256)


class _FormReceiver:
    """One request's multipart parse: the parser's callbacks route each part's bytes to a field or a file.

    The callbacks run synchronously inside ``MultipartParser.write`` and only gather; after each chunk of the body
    ``_parse`` pumps the file parts the chunk touched, which is where a batch may wait for a lane.
    """

    def __init__(self, store: BlobStore, limits: UploadLimits, file_field: str, writers: ExitStack) -> None:
        self._store = store
        self._limits = limits
        self._file_field = file_field.encode("utf-8")
        self._writers = writers
        self.fields: dict[str, str] = {}
        self.files: list[_FilePart] = []
        self._field_count = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._part: _FieldPart | _FilePart | None = None
        self._touched: list[_FilePart] = []
        self.complete = False

    def parser(self, boundary: bytes) -> MultipartParser:
        return MultipartParser(boundary, {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        })

    async def pump(self) -> None:
        touched, self._touched = self._touched, []
        for part in touched:
            await part.pump()

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0
        self._part = None

    def _count_header_bytes(self, count: int) -> None:
        """Bound a part's headers here too: older python-multipart releases do not."""
        self._header_bytes += count
        if self._header_bytes > PART_FRAMING:
            raise MalformedUpload(f"a part's headers are longer than {PART_FRAMING} bytes")

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition"))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise MalformedUpload("a part has no Content-Disposition: form-data with a name")
        if b"filename" in options:
            self._part = self._open_file(name, options[b"filename"])
        else:
            self._part = self._open_field(name)

    def _open_file(self, name: bytes, filename: bytes) -> _FilePart:
        if name != self._file_field:
            raise MalformedUpload(f"file part {_shown(name)} is not accepted: files go in the field "
                                  f"{self._file_field.decode()!r}")
        if len(self.files) == self._limits.files:
            raise UploadTooLarge(f"more than {self._limits.files} files in one request")
        writer = self._writers.enter_context(self._store.writer())
        part = _FilePart(safe_filename(filename), writer, self._limits.file_bytes, named=bool(filename))
        self.files.append(part)
        return part

    def _open_field(self, name: bytes) -> _FieldPart:
        if self._field_count == self._limits.fields:
            raise MalformedUpload(f"more than {self._limits.fields} fields in one request")
        self._field_count += 1
        try:
            return _FieldPart(name.decode("utf-8"), self._limits.field_bytes)
        except UnicodeDecodeError as exc:
            raise MalformedUpload(f"field name {_shown(name)} is not valid UTF-8") from exc

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        assert part is not None  # the parser sends a part's data only after its headers
        part.add(memoryview(data)[start:end])
        if isinstance(part, _FilePart) and (not self._touched or self._touched[-1] is not part):
            self._touched.append(part)

    def _on_part_end(self) -> None:
        part = self._part
        if isinstance(part, _FieldPart):
            self.fields[part.name] = part.value()
        elif isinstance(part, _FilePart):
            part.ended = True
            if not self._touched or self._touched[-1] is not part:
                self._touched.append(part)
        self._part = None

    def _on_end(self) -> None:
        self.complete = True


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise MalformedUpload("the body must be multipart/form-data")
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedUpload("the multipart/form-data Content-Type has no boundary")
    return boundary


def _check_declared_length(request: Request, limits: UploadLimits) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError as exc:
        raise MalformedUpload("Content-Length is not a number") from exc
    if length > limits.body_bytes:
        raise UploadTooLarge(f"the body is {length} bytes, more than the {limits.body_bytes} allowed")


async def _parse(request: Request, receiver: _FormReceiver, limits: UploadLimits, boundary: bytes) -> None:
    """Feed the body to the parser chunk by chunk, pumping file parts between chunks."""
    try:
        parser = receiver.parser(boundary)
    except FormParserError as exc:
        raise MalformedUpload(f"bad multipart boundary: {exc}") from exc
    read = 0
    try:
        async for chunk in request.stream():
            read += len(chunk)
            if read > limits.body_bytes:
                raise UploadTooLarge(f"the body is more than the {limits.body_bytes} bytes allowed")
            parser.write(chunk)
            await receiver.pump()
    except FormParserError as exc:
        raise MalformedUpload(f"malformed multipart body: {exc}") from exc
    except ClientDisconnect as exc:
        raise MalformedUpload("the client went away before the body ended") from exc
    if not receiver.complete:
        raise MalformedUpload("the body ended before the closing boundary")


async def receive_form(request: Request, store: BlobStore, limits: UploadLimits, file_field: str = "files",
                       check_fields: Callable[[dict[str, str]], object] | None = None) -> ReceivedForm:
    """Stream a multipart/form-data request into ``store``; its files are committed only if all of it is accepted.

    Raises ``UploadTooLarge`` (413) as soon as a limit is passed, a Content-Length over the limits before any
    byte is read, and ``MalformedUpload`` (400) for a body that is not a well-formed form. ``check_fields`` sees
    the text fields once the whole body is in and before any blob is committed: whatever it raises refuses the
    request with nothing stored. On any error, every blob writer of the request is discarded. An OSError of the
    store (a full disk) propagates as it is.
    """
    boundary = _boundary(request)
    _check_declared_length(request, limits)
    with ExitStack() as writers:
        receiver = _FormReceiver(store, limits, file_field, writers)
        try:
            await _parse(request, receiver, limits, boundary)
            for part in receiver.files:
                await part.drain()
            if check_fields is not None:
                check_fields(receiver.fields)
            chosen = [part for part in receiver.files if part.named or part.size]
            for part in receiver.files:
                if part not in chosen:
                    store.discard(part.writer)
            files = [part.received(store.commit(part.writer)) for part in chosen]
        except BaseException:  # cancellation too: no writer may outlive a request that did not finish
            for part in receiver.files:
                part.settle()
                store.discard(part.writer)
            raise
    return ReceivedForm(receiver.fields, files)
