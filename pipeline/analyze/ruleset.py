"""The YARA ruleset: our curated rules plus the lab's third-party folders, compiled once per process.

Our rules live in ``rules/*.yar`` (one theme per file, the file stem is the
namespace) and follow the metadata convention of ``rules/README.md``;
``FWTRIAGE_RULES_PATH`` adds third-party files or folders (public
collections), each file in its own ``ext.<folder>.<stem>`` namespace so two
collections may reuse a rule name. Every file is first compiled alone, so a
file that does not compile, or needs a YARA module this libyara was built
without (magic, cuckoo, dex, macho...), is *skipped with its reason* instead
of taking the whole ruleset down; the survivors are then compiled together
into one ``yara.Rules``. Relative ``include``s resolve against the including
file's own folder (libyara does this when a rule file is compiled by path).

The usual external variables of public collections (signature-base, LOKI,
THOR) are declared for every file and filled per scanned file by the
analyzer. ``md5`` and ``sha1`` cost a pass over the file, so the loader finds
out which sources use them (a file that fails with "undefined identifier" when
they are left out) and the analyzer only hashes when one does.

The ``digest`` (sha256 over every source's stable name and bytes, and over the
behaviour rules ``rules/behaviours/*.yml`` since they change verdicts too) is
what reports quote and what analysis caches are keyed by.

Known limitations: a file pulled in only through ``include`` (not itself a
``.yar``/``.yara`` source) is not part of the digest; rules of a skipped file
are absent, which the report states through ``skipped``; metadata of
third-party rules is taken as is (no convention is imposed on them).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yara

from pipeline.config import Detection
from pipeline.model import CHANNELS, DATA_KINDS, Category, Confidence, Severity

RULE_SUFFIXES = (".yar", ".yara")
OURS = "fwtriage"

# The externals public collections expect (LOKI/THOR names), all strings; filled per file by yara_scan.
PATH_EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
HASH_EXTERNALS = ("md5", "sha1")  # computed only when some source uses them
FREE_HASH_EXTERNALS = ("sha256",)  # known for every blob already
EXTERNALS: dict[str, str] = dict.fromkeys(PATH_EXTERNALS + HASH_EXTERNALS + FREE_HASH_EXTERNALS, "")

META_FIELDS = ("id", "title", "category", "severity", "confidence", "data", "channel", "mitre",
               "description", "reference")
_MITRE_ID = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_IMPORT = re.compile(rb'^\s*import\s+"([^"]+)"', re.MULTILINE)
_UNDEFINED = re.compile(r'undefined identifier "([^"]+)"')


@dataclass(frozen=True)
class RuleSource:
    """One compiled rule file: its namespace, where it came from and how many rules it holds."""

    namespace: str
    path: Path
    name: str  # stable name used in the digest: "fwtriage/telephony.yar", "ext.sigbase/apt.yar"
    ours: bool
    rules: int


@dataclass(frozen=True)
class SkippedSource:
    """A rule file left out of the ruleset, with the reason a reviewer reads in the report."""

    path: Path
    namespace: str
    reason: str


@dataclass(frozen=True)
class RuleMeta:
    """The metadata of one of our rules, parsed from its ``meta:`` section (see rules/README.md)."""

    id: str
    namespace: str
    identifier: str
    title: str
    category: str
    severity: str
    confidence: str
    data: tuple[str, ...]
    channels: tuple[str, ...]
    mitre: tuple[str, ...]
    description: str
    reference: str
    family: str | None
    raw: Mapping[str, object]


@dataclass(frozen=True)
class Ruleset:
    """Everything yara_scan needs: the compiled rules and what went into them."""

    rules: yara.Rules
    digest: str
    sources: tuple[RuleSource, ...]
    skipped: tuple[SkippedSource, ...]
    warnings: tuple[str, ...]
    metadata: Mapping[tuple[str, str], RuleMeta]  # (namespace, rule identifier) → meta, ours only
    third_party: Mapping[tuple[str, str], Mapping[str, object]]  # (namespace, identifier) → raw meta
    hashes_needed: frozenset[str]  # subset of HASH_EXTERNALS some source reads

    @property
    def by_id(self) -> dict[str, RuleMeta]:
        return {meta.id: meta for meta in self.metadata.values()}

    @property
    def our_namespaces(self) -> frozenset[str]:
        return frozenset(source.namespace for source in self.sources if source.ours)

    def cli_sources(self) -> list[str]:
        """The compiled sources as ``yara`` command-line arguments (``namespace:path``), e.g. for a benchmark."""
        return [f"{source.namespace}:{source.path}" for source in self.sources]


def path_externals(in_image_path: str, filetype: str) -> dict[str, str]:
    """The externals of one file that its in-image path and label give (LOKI's conventions).

    ``filename`` is the last part of the path, ``filepath`` the whole in-image
    path, ``extension`` the lower-case suffix with its dot (".so"), ``filetype``
    our identification label ("elf", "dex", "text"...), ``owner`` unknown ("").
    """
    filename = in_image_path.rsplit("/", 1)[-1]
    stem, dot, suffix = filename.rpartition(".")
    return EXTERNALS | {
        "filename": filename,
        "filepath": in_image_path,
        "extension": f".{suffix.lower()}" if dot and stem else "",
        "filetype": filetype,
    }


def _split(value: object) -> tuple[str, ...]:
    if not isinstance(value, str):
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _text(meta: Mapping[str, object], key: str) -> str:
    value = meta.get(key, "")
    return value if isinstance(value, str) else str(value)


def parse_meta(namespace: str, identifier: str, meta: Mapping[str, object]) -> RuleMeta:
    """Our convention's fields, read leniently (checking them is ``convention_problems``'s job)."""
    family = meta.get("family")
    return RuleMeta(
        id=_text(meta, "id"), namespace=namespace, identifier=identifier, title=_text(meta, "title"),
        category=_text(meta, "category"), severity=_text(meta, "severity"),
        confidence=_text(meta, "confidence"), data=_split(meta.get("data")),
        channels=_split(meta.get("channel")), mitre=_split(meta.get("mitre")),
        description=_text(meta, "description"), reference=_text(meta, "reference"),
        family=family if isinstance(family, str) and family else None, raw=dict(meta),
    )


def convention_problems(meta: RuleMeta) -> list[str]:
    """What one of our rules gets wrong about the metadata convention (empty when it is right)."""
    problems = [f"missing meta {field!r}" for field in META_FIELDS if field not in meta.raw]
    problems += [f"meta {key!r} is not a string" for key, value in meta.raw.items() if not isinstance(value, str)]
    if meta.id != f"{meta.namespace}.{meta.identifier}":
        problems.append(f"id {meta.id!r} should be {meta.namespace + '.' + meta.identifier!r}")
    checks = ((meta.category, Category, "category"), (meta.severity, Severity, "severity"),
              (meta.confidence, Confidence, "confidence"))
    problems += [f"{name} {value!r} not one of {sorted(v.value for v in enum)}"
                 for value, enum, name in checks if value not in {v.value for v in enum}]
    problems += [f"data kind {kind!r} not in DATA_KINDS" for kind in meta.data if kind not in DATA_KINDS]
    problems += [f"channel {ch!r} not in CHANNELS" for ch in meta.channels if ch not in CHANNELS]
    problems += [f"mitre id {t!r} malformed" for t in meta.mitre if not _MITRE_ID.match(t)]
    for field in ("title", "description", "reference"):
        if not _text(meta.raw, field).strip():
            problems.append(f"meta {field!r} is empty")
    if meta.category == Category.DATA_SOURCE and not meta.data:
        problems.append("a data-source rule must name its data")
    if meta.category == Category.CHANNEL and not meta.channels:
        problems.append("a channel rule must name its channels")
    if meta.category == Category.FAMILY and not meta.family:
        problems.append("a family rule must set meta 'family'")
    return problems


# --- discovery ----------------------------------------------------------------------------------


def _is_rule_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in RULE_SUFFIXES


def _namespace_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "_"


def _our_files(rules_dir: Path) -> list[tuple[str, Path, str]]:
    """(namespace, path, digest name) of our rule files: top-level ``*.yar`` of the rules folder."""
    if not rules_dir.is_dir():
        return []
    return [(path.stem, path, f"{OURS}/{path.name}") for path in sorted(rules_dir.iterdir()) if _is_rule_file(path)]


def _third_party_files(extra: Path) -> list[tuple[str, Path, str]]:
    """(namespace, path, digest name) for one FWTRIAGE_RULES_PATH entry, a file or a folder (recursive)."""
    if extra.is_file():
        return [(f"ext.{_namespace_part(extra.stem)}", extra, f"ext/{extra.name}")]
    root = _namespace_part(extra.name)
    found = []
    for path in sorted(p for p in extra.rglob("*") if _is_rule_file(p)):
        relative = path.relative_to(extra)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .git and other hidden folders of cloned collections
        parts = [_namespace_part(part) for part in relative.with_suffix("").parts]
        found.append((".".join(["ext", root, *parts]), path, f"ext.{root}/{relative.as_posix()}"))
    return found


def _unique(namespace: str, taken: set[str]) -> str:
    candidate, n = namespace, 2
    while candidate in taken:
        candidate, n = f"{namespace}.{n}", n + 1
    taken.add(candidate)
    return candidate


# --- compilation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
    """One file compiled alone: its rules' identifiers and meta, or why it is skipped."""

    namespace: str
    path: Path
    name: str
    ours: bool
    compiled: bool
    reason: str = ""
    rules: tuple[tuple[str, dict[str, object]], ...] = ()
    hashes: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


def _missing_modules(source: bytes) -> list[str]:
    available = set(yara.modules)
    return sorted({m.decode(errors="replace") for m in _IMPORT.findall(source)} - available)


def _check(namespace: str, path: Path, name: str, ours: bool) -> _Checked:
    """Compile one file alone: the rules, or the reason it must be skipped, and the hashes it reads."""
    def skipped(reason: str) -> _Checked:
        return _Checked(namespace, path, name, ours, compiled=False, reason=reason)

    try:
        source = path.read_bytes()
    except OSError as exc:
        return skipped(f"cannot read: {exc.strerror or exc}")
    missing = _missing_modules(source)
    if missing:
        return skipped(f"needs YARA module {', '.join(missing)}, which this libyara ({yara.YARA_VERSION}) lacks")
    cheap = {k: v for k, v in EXTERNALS.items() if k not in HASH_EXTERNALS}
    hashes: set[str] = set()
    while True:
        declared = cheap | dict.fromkeys(hashes, "")
        try:
            rules = yara.compile(filepath=str(path), externals=declared, error_on_warning=False)
        except yara.Error as exc:
            undefined = set(_UNDEFINED.findall(str(exc))) & set(HASH_EXTERNALS) - hashes
            if undefined:
                hashes |= undefined
                continue
            return skipped(f"does not compile: {_one_line(str(exc), path)}")
        return _Checked(namespace, path, name, ours, compiled=True,
                        rules=tuple((rule.identifier, dict(rule.meta)) for rule in rules),
                        hashes=frozenset(hashes), warnings=tuple(_one_line(w, path) for w in rules.warnings))


def _one_line(message: str, path: Path) -> str:
    return " ".join(message.replace(str(path), path.name).split())


def _digest(named_files: Iterable[tuple[str, Path]]) -> str:
    """sha256 over (name, size, bytes) of every file, in name order; names make renames count."""
    digest = hashlib.sha256()
    for name, path in sorted(named_files):
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


def _behaviour_files(detection: Detection) -> list[tuple[str, Path]]:
    """The correlation's data: behaviour rules and the well-known endpoints list change verdicts too."""
    folder = detection.behaviours_dir
    files = [(f"{OURS}/behaviours/{p.name}", p) for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix in (".yml", ".yaml")] if folder.is_dir() else []
    if detection.well_known_endpoints.is_file():
        files.append((f"{OURS}/{detection.well_known_endpoints.name}", detection.well_known_endpoints))
    return files


def _compile_together(checked: list[_Checked]) -> tuple[yara.Rules, list[_Checked]]:
    """One ``yara.Rules`` from every file that compiled alone.

    Files that compile alone practically always compile together; should the
    third-party ones not, they are skipped as a group (ours stay), never fatal.
    """
    good = [c for c in checked if c.compiled]
    try:
        return yara.compile(filepaths={c.namespace: str(c.path) for c in good}, externals=EXTERNALS), checked
    except yara.Error as exc:
        reason = f"compiles alone but not with the other sources: {' '.join(str(exc).split())}"
        demoted = [c if c.ours or not c.compiled else _Checked(c.namespace, c.path, c.name, c.ours, False, reason)
                   for c in checked]
        ours = [c for c in demoted if c.compiled]
        return yara.compile(filepaths={c.namespace: str(c.path) for c in ours}, externals=EXTERNALS), demoted


def compile_ruleset(detection: Detection) -> Ruleset:
    """Compile our rules and the third-party sources of ``detection`` (uncached; see ``ruleset``)."""
    taken: set[str] = set()
    candidates = [(ns, path, name, True) for ns, path, name in _our_files(detection.rules_dir)]
    missing: list[SkippedSource] = []
    for extra in detection.extra_rules:
        if not extra.exists():
            missing.append(SkippedSource(extra, "", "not found"))
            continue
        candidates += [(ns, path, name, False) for ns, path, name in _third_party_files(extra)]
    checked = [_check(_unique(ns, taken), path, name, ours) for ns, path, name, ours in candidates]
    rules, checked = _compile_together(checked)
    good = [c for c in checked if c.compiled]
    return Ruleset(
        rules=rules,
        digest=_digest([(c.name, c.path) for c in checked] + _behaviour_files(detection)),
        sources=tuple(RuleSource(c.namespace, c.path, c.name, c.ours, len(c.rules)) for c in good),
        skipped=tuple(missing) + tuple(SkippedSource(c.path, c.namespace, c.reason) for c in checked if not c.compiled),
        warnings=tuple(f"{c.name}: {w}" for c in good for w in c.warnings),
        metadata={(c.namespace, ident): parse_meta(c.namespace, ident, meta)
                  for c in good if c.ours for ident, meta in c.rules},
        third_party={(c.namespace, ident): meta for c in good if not c.ours for ident, meta in c.rules},
        hashes_needed=frozenset().union(*(c.hashes for c in good)),
    )


@functools.cache
def ruleset(detection: Detection) -> Ruleset:
    """The ruleset for these settings, compiled once per process and shared by every thread."""
    return compile_ruleset(detection)
