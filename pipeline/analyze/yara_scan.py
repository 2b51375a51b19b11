"""YARA over every file: our curated rules and the lab's third-party collections, one finding per rule hit.

Detection use cases: the personal-data sources (AT commands asking the modem
for the IMEI, the SMS database, Android's TelephonyManager), the ways out
(hand-built HTTP requests, SMS sent through the modem), encoded endpoints,
remote command execution, persistence, and the publicly documented firmware
backdoor families (Adups FOTA, Ragentek OTA, Triada) of ``rules/*.yar``,
plus whatever public collection a lab adds through ``FWTRIAGE_RULES_PATH``.

The file is scanned by path (libyara maps it; nothing is read into Python),
with the external variables public rules expect filled from the target: its
first in-image path gives ``filename``, ``filepath`` and ``extension``, its
identification label ``filetype``; ``sha256`` is known, ``md5``/``sha1`` are
computed only when some loaded rule reads them. A hit becomes a Finding whose
rule id, category, severity, data kinds and channels come from the rule's
metadata (rules/README.md); third-party rules, which keep no such convention,
become ``property`` findings named ``yara:<namespace>.<rule>`` with the
severity their metadata states, else medium. The matched strings are the
evidence (first few instances of each, as text when printable, else hex).

Known limitations: string matches only show the first bytes libyara keeps of
each match (512 by default); rules that depend on the file's path see the
blob's first in-image path only (the analyzer is therefore path-sensitive);
``owner`` is always empty (the unpacker does not keep file owners); a scan
longer than ``SCAN_TIMEOUT_SECONDS`` is abandoned and reported as a failure.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import yara

from pipeline.analyze.base import Analyzer, AnalyzerFailed, Target
from pipeline.analyze.ruleset import Ruleset, parse_meta, path_externals
from pipeline.analyze.ruleset import ruleset as shared_ruleset
from pipeline.config import Detection
from pipeline.model import Category, Evidence, Finding, Severity

SCAN_TIMEOUT_SECONDS = 120
INSTANCES_PER_STRING = 8  # evidence kept per string identifier
EVIDENCE_PER_FINDING = 32
SHOWN_BYTES = 96  # of each match, in the evidence text
_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}
_HASH_CHUNK = 1 << 20


def render(data: bytes) -> str:
    """A match as a reviewer reads it: text when printable (UTF-8 or UTF-16LE), else hex; long ones cut."""
    shown, more = data[:SHOWN_BYTES], "…" if len(data) > SHOWN_BYTES else ""
    if shown and all(b in _PRINTABLE for b in shown):
        return shown.decode("ascii").encode("unicode_escape").decode() + more
    even, odd = shown[0::2], shown[1::2]
    if len(shown) >= 4 and len(shown) % 2 == 0 and not any(odd) and all(b in _PRINTABLE for b in even):
        return even.decode("ascii").encode("unicode_escape").decode() + more + " (utf-16)"
    return shown.hex(" ") + more


def _evidence(match: yara.Match) -> tuple[Evidence, ...]:
    found = []
    for string in match.strings:
        for instance in string.instances[:INSTANCES_PER_STRING]:
            text = render(instance.plaintext() if string.is_xor() else instance.matched_data)
            if string.is_xor():
                text += f" (xor {instance.xor_key:#04x})"
            found.append(Evidence("yara-string", f"{string.identifier}: {text}", instance.offset))
    found.sort(key=lambda e: (e.offset or 0, e.value))
    return tuple(found[:EVIDENCE_PER_FINDING])


def _file_hashes(path: Path, names: frozenset[str]) -> dict[str, str]:
    hashers = {name: hashlib.new(name) for name in sorted(names)}
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _severity(value: object, default: Severity) -> Severity:
    text = value.lower() if isinstance(value, str) else ""
    return Severity(text) if text in {s.value for s in Severity} else default


class YaraScanner(Analyzer):
    """Runs the compiled ruleset over one file; every hit of every rule is one Finding."""

    name: ClassVar[str] = "yara"
    version: ClassVar[str] = "1"
    path_sensitive: ClassVar[bool] = True  # rules may test filename/filepath/extension

    def __init__(self, ruleset: Ruleset | None = None) -> None:
        self.ruleset = ruleset if ruleset is not None else shared_ruleset(Detection.from_env())

    @property
    def config_digest(self) -> str:
        return self.ruleset.digest

    def accepts(self, target: Target) -> bool:
        return not target.container and target.size > 0 and target.label not in ("empty", "symlink")

    def externals(self, target: Target) -> dict[str, str]:
        """The external variables for this file (see ``ruleset.path_externals``)."""
        values = path_externals(target.names[0] if target.names else "", target.label)
        values["sha256"] = target.sha256
        if self.ruleset.hashes_needed:
            try:
                values |= _file_hashes(target.path, self.ruleset.hashes_needed)
            except OSError as exc:
                raise AnalyzerFailed(f"cannot read the file to hash it: {exc.strerror or exc}") from exc
        return values

    def analyze(self, target: Target) -> list[Finding]:
        try:
            matches = self.ruleset.rules.match(filepath=str(target.path), externals=self.externals(target),
                                               timeout=SCAN_TIMEOUT_SECONDS)
        except yara.TimeoutError as exc:
            raise AnalyzerFailed(f"YARA scan gave up after {SCAN_TIMEOUT_SECONDS} s") from exc
        except yara.Error as exc:
            raise AnalyzerFailed(f"YARA could not scan the file: {exc}") from exc
        return sorted((self.finding(match) for match in matches), key=Finding.sort_key)

    def finding(self, match: yara.Match) -> Finding:
        """One hit as a Finding: from our metadata convention, or from a third-party rule's meta."""
        ours = self.ruleset.metadata.get((match.namespace, match.rule))
        if ours is None and match.namespace in self.ruleset.our_namespaces:
            ours = parse_meta(match.namespace, match.rule, match.meta)
        if ours is None:
            return self._third_party(match)
        rule_id = ours.id or f"{match.namespace}.{match.rule}"
        tags = {f"yara:{rule_id}"} | {f"attack:{t}" for t in ours.mitre}
        if ours.family:
            tags.add(f"family:{ours.family}")
        category = ours.category if ours.category in {c.value for c in Category} else Category.PROPERTY
        return Finding(
            rule=f"yara:{rule_id}", analyzer=self.name, category=Category(category),
            severity=_severity(ours.severity, Severity.MEDIUM), title=ours.title or rule_id,
            data=ours.data, channels=ours.channels, tags=tuple(sorted(tags)), evidence=_evidence(match),
            description=ours.description, reference=ours.reference,
        )

    def _third_party(self, match: yara.Match) -> Finding:
        meta = match.meta
        rule_id = f"{match.namespace}.{match.rule}"
        title = next((meta[k] for k in ("title", "description") if isinstance(meta.get(k), str) and meta[k]),
                     match.rule)
        reference = next((meta[k] for k in ("reference", "ref", "url") if isinstance(meta.get(k), str)), "")
        tags = {f"yara:{rule_id}"}
        if isinstance(meta.get("family"), str) and meta["family"]:
            tags.add(f"family:{meta['family']}")
        description = meta.get("description")
        return Finding(
            rule=f"yara:{rule_id}", analyzer=self.name, category=Category.PROPERTY,
            severity=_severity(meta.get("severity"), Severity.MEDIUM), title=str(title),
            tags=tuple(sorted(tags)), evidence=_evidence(match),
            description=description if isinstance(description, str) else "", reference=str(reference),
        )
