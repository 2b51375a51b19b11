"""The audit log's hash chain: each entry carries the hash of the one before, so an edit or a removal shows.

Why a chain and not only an append-only table: whoever can write the database can also rewrite a row. With
each entry's hash covering its content and the previous entry's hash, changing or deleting any entry but the
last breaks every link after it, and ``verify_chain`` names the first entry that no longer fits. (Cutting the
tail off leaves a shorter valid chain: a lab that needs that detected copies the last hash elsewhere, e.g. in
its case file, and compares.)

Pure functions only: ``pipeline/db.py`` stores the entries and serialises appends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64  # the "previous hash" of the first entry


@dataclass(frozen=True)
class AuditEntry:
    """One audit event as stored."""

    id: int
    at: datetime
    actor: str
    action: str
    submission_id: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def entry_hash(prev_hash: str, at: datetime, actor: str, action: str, submission_id: str | None,
               detail: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of an entry's content and the previous entry's hash."""
    content = {"prev_hash": prev_hash, "at": at.isoformat(), "actor": actor, "action": action,
               "submission_id": submission_id, "detail": detail}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def verify_chain(entries: Iterable[AuditEntry]) -> list[str]:
    """The problems found walking the log in id order; empty when every entry fits its content and its place."""
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    for entry in entries:
        if entry.prev_hash != expected_prev:
            problems.append(f"entry {entry.id}: does not follow the entry before it (one was removed or changed)")
        computed = entry_hash(entry.prev_hash, entry.at, entry.actor, entry.action, entry.submission_id,
                              entry.detail)
        if computed != entry.hash:
            problems.append(f"entry {entry.id}: its content no longer matches its hash (it was edited)")
        expected_prev = entry.hash
    return problems
