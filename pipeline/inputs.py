"""What ``fwtriage scan`` is given, turned into scan requests: one image, a folder of images, or a manifest.

Why check everything before the first scan: a batch of hundreds of images
can run for hours; a typo in row 412 of the lab's manifest must be reported
at once, with its line number, not after the first 411 reports.

A manifest is a CSV file (UTF-8, a header row) with the columns ``path``
(required), ``case``, ``exhibit``, ``device`` and ``examiner``; relative
paths are read from the manifest's folder. Values given on the command line
fill the cells left blank. A folder is scanned for regular files, sorted by
path, hidden files and symlinks left out (a symlink could lead anywhere).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from pipeline.ingest import CaseMetadata
from pipeline.scan import ScanRequest

MANIFEST_COLUMNS = ("path", "case", "exhibit", "device", "examiner")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class InputError(ValueError):
    """The input cannot be scanned as given: a missing or unreadable image, a malformed manifest."""


def is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".csv"


def _readable_image(path: Path, where: str) -> Path:
    if not path.is_file():
        raise InputError(f"{where}: {path} is not a file" if path.exists() else f"{where}: {path} does not exist")
    if not os.access(path, os.R_OK):
        raise InputError(f"{where}: {path} is not readable")
    return path


def _merged(row: dict[str, str | None], defaults: CaseMetadata) -> CaseMetadata:
    def cell(name: str) -> str | None:
        value = (row.get(name) or "").strip()
        return value or getattr(defaults, name)

    return CaseMetadata(case=cell("case"), exhibit=cell("exhibit"), device=cell("device"),
                        examiner=cell("examiner"))


def requests_from_manifest(manifest: Path, defaults: CaseMetadata) -> list[ScanRequest]:
    """One request per manifest row; InputError naming the line of the first bad row."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip().lower() for name in reader.fieldnames or []]
            if "path" not in header:
                raise InputError(f"{manifest}: no 'path' column in the header (columns: {', '.join(MANIFEST_COLUMNS)})")
            unknown = sorted(set(header) - set(MANIFEST_COLUMNS))
            if unknown:
                raise InputError(f"{manifest}: unknown columns {', '.join(unknown)} "
                                 f"(expected: {', '.join(MANIFEST_COLUMNS)})")
            reader.fieldnames = header
            requests = []
            for row in reader:
                where = f"{manifest.name} line {reader.line_num}"
                raw = (row.get("path") or "").strip()
                if not raw:
                    raise InputError(f"{where}: the path is empty")
                image = Path(raw) if Path(raw).is_absolute() else manifest.parent / raw
                requests.append(ScanRequest(_readable_image(image, where), _merged(row, defaults)))
    except UnicodeDecodeError as exc:
        raise InputError(f"{manifest}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise InputError(f"{manifest}: malformed CSV: {exc}") from exc
    if not requests:
        raise InputError(f"{manifest}: no image listed")
    return requests


def requests_from_folder(folder: Path, defaults: CaseMetadata) -> list[ScanRequest]:
    """Every regular, non-hidden file under ``folder``, sorted; the defaults apply to all."""
    images = sorted(p for p in folder.rglob("*")
                    if p.is_file() and not p.is_symlink()
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not images:
        raise InputError(f"{folder}: no image in this folder")
    return [ScanRequest(_readable_image(image, str(folder)), defaults) for image in images]


def scan_requests(target: Path, defaults: CaseMetadata) -> tuple[list[ScanRequest], bool]:
    """The requests ``target`` stands for, and whether it is a batch (folder or manifest) rather than one image."""
    if target.is_dir():
        return requests_from_folder(target, defaults), True
    if is_manifest(target):
        return requests_from_manifest(target, defaults), True
    return [ScanRequest(_readable_image(target, "input"), defaults)], False


def report_folder_names(requests: list[ScanRequest]) -> list[str]:
    """A distinct, filesystem-safe folder name per request in a batch: the exhibit, else the file name."""
    names: list[str] = []
    taken: set[str] = set()
    for request in requests:
        stem = _UNSAFE_NAME_CHARS.sub("_", request.metadata.exhibit or request.image.name).strip("._") or "image"
        name, n = stem[:80], 1
        while name in taken:
            n += 1
            name = f"{stem[:80]}-{n}"
        taken.add(name)
        names.append(name)
    return names
