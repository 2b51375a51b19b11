"""The vocabulary of fwtriage: plain dataclasses shared by every layer.

Nothing here does I/O or imports another part of the package, so the
extraction tree built by a worker can be serialised, cached, sent through a
queue and rebuilt anywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

LINEAGE_SEPARATOR = " › "


def rfc3339(moment: datetime) -> str:
    """A UTC timestamp to the second, as reports and submissions carry it (``2026-11-21T10:00:00Z``)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class ArtifactKind(StrEnum):
    """What an artifact is in its parent, which says how it was obtained."""

    IMAGE = "image"  # the submitted image itself, the root of the tree
    FILE = "file"  # a member of an archive or filesystem, or a decompressed stream
    CARVED = "carved"  # a chunk found at an offset by a signature scan
    PARTITION = "partition"  # a named region of a container (PAC entry, super.img partition...)
    SYMLINK = "symlink"  # recorded with its target, never followed


class IssueKind(StrEnum):
    """Why part of an image was not covered; each makes the tree incomplete."""

    LIMIT = "limit"  # a quota was hit: depth, bytes, files, ratio, time, carves
    FAILURE = "failure"  # an extractor could not parse what it claimed to recognise
    UNDECODABLE = "undecodable"  # encrypted, unknown compression, ALICE, high-entropy data
    UNSUPPORTED = "unsupported"  # a recognised format variant we have no reader for


class NoteKind(StrEnum):
    """Things worth a reviewer's eye that did not reduce coverage."""

    UNSAFE_NAME = "unsafe-name"  # a member name was sanitised (traversal, absolute, control chars)
    ESCAPING_LINK = "escaping-link"  # a symlink or hard link points outside its container
    SPECIAL_FILE = "special-file"  # device node, FIFO or socket: recorded, not extracted
    DUPLICATE = "duplicate"  # a recursion stopped because a container contains itself


@dataclass(frozen=True)
class Coverage:
    """How the bytes of one container were accounted for.

    ``bytes == unpacked + carved + padding + unknown + undecodable``. Padding
    (erased flash, zero fill) is reached but holds nothing; unknown is
    low-entropy data no reader claimed; undecodable is high-entropy data
    (encrypted or compressed in a way we cannot decode).
    """

    bytes: int = 0
    unpacked: int = 0
    carved: int = 0
    padding: int = 0
    unknown: int = 0
    undecodable: int = 0

    @property
    def reached(self) -> int:
        return self.unpacked + self.carved + self.padding

    @property
    def reached_ratio(self) -> float:
        return 1.0 if self.bytes == 0 else self.reached / self.bytes


@dataclass(frozen=True)
class ExtractionIssue:
    """Part of the image that was not covered, with the reason a reviewer reads."""

    path: str
    error: str
    kind: IssueKind
    extractor: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractionIssue:
        return cls(data["path"], data["error"], IssueKind(data["kind"]), data.get("extractor"))


@dataclass(frozen=True)
class ExtractionNote:
    """Something the extraction saw and handled safely, kept for the report."""

    path: str
    note: str
    kind: NoteKind

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractionNote:
        return cls(data["path"], data["note"], NoteKind(data["kind"]))


@dataclass
class Platform:
    """The device platform, as far as the image tells it."""

    os: str | None = None
    chipset: str | None = None
    how: str | None = None


@dataclass
class Artifact:
    """One node of the extraction tree: a file, a carved chunk, a partition or a symlink.

    The bytes live once in the content-addressed store under ``sha256``; the
    same blob found at several paths gives several artifacts with one sha256.
    """

    id: int
    parent: int | None
    lineage: tuple[str, ...]
    sha256: str
    size: int
    kind: ArtifactKind
    depth: int
    format: str = "data"
    description: str = ""
    offset: int | None = None
    extractor: str | None = None
    link_target: str | None = None
    coverage: Coverage | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.lineage[-1]

    @property
    def lineage_path(self) -> str:
        return LINEAGE_SEPARATOR.join(self.lineage)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lineage"] = list(self.lineage)
        data["path"] = self.lineage_path
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        """The inverse of ``to_dict`` (its derived ``path`` ignored): a tree crosses processes as dicts."""
        coverage = data.get("coverage")
        return cls(
            id=data["id"], parent=data["parent"], lineage=tuple(data["lineage"]), sha256=data["sha256"],
            size=data["size"], kind=ArtifactKind(data["kind"]), depth=data["depth"],
            format=data.get("format", "data"), description=data.get("description", ""),
            offset=data.get("offset"), extractor=data.get("extractor"), link_target=data.get("link_target"),
            coverage=Coverage(**coverage) if coverage is not None else None,
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass
class ExtractionTree:
    """Everything unpacking produced for one image, and what it could not cover."""

    image_sha256: str
    artifacts: list[Artifact] = field(default_factory=list)
    errors: list[ExtractionIssue] = field(default_factory=list)
    notes: list[ExtractionNote] = field(default_factory=list)
    platform: Platform = field(default_factory=Platform)
    coverage: Coverage = field(default_factory=Coverage)

    @property
    def complete(self) -> bool:
        return not self.errors

    @property
    def max_depth(self) -> int:
        return max((a.depth for a in self.artifacts), default=0)

    @property
    def root(self) -> Artifact:
        return self.artifacts[0]

    def children(self, artifact_id: int) -> list[Artifact]:
        return [a for a in self.artifacts if a.parent == artifact_id]

    def paths_by_sha256(self) -> dict[str, list[str]]:
        """Every lineage path of each blob, sorted (symlinks hold no bytes of their own and are left out)."""
        paths: dict[str, list[str]] = {}
        for artifact in self.artifacts:
            if artifact.kind is not ArtifactKind.SYMLINK:
                paths.setdefault(artifact.sha256, []).append(artifact.lineage_path)
        return {sha: sorted(found) for sha, found in paths.items()}

    def find(self, lineage_path: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.lineage_path == lineage_path), None)

    def renamed(self, name: str) -> ExtractionTree:
        """The same tree with its root (the image) called ``name``: every lineage starts with the image's name,
        so an identical image received under another name reuses a tree this way."""
        old = self.root.name

        def moved(path: str) -> str:
            return name + path[len(old):] if path == old or path.startswith(old + LINEAGE_SEPARATOR) else path

        return replace(
            self,
            artifacts=[replace(a, lineage=(name, *a.lineage[1:])) for a in self.artifacts],
            errors=[replace(e, path=moved(e.path)) for e in self.errors],
            notes=[replace(n, path=moved(n.path)) for n in self.notes],
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractionTree:
        """The inverse of ``to_dict`` (a tree crossing a process boundary as JSON)."""
        return cls(
            image_sha256=data["image_sha256"],
            artifacts=[Artifact.from_dict(a) for a in data["tree"]],
            errors=[ExtractionIssue.from_dict(e) for e in data["errors"]],
            notes=[ExtractionNote.from_dict(n) for n in data["notes"]],
            platform=Platform(**data["platform"]),
            coverage=Coverage(**data["coverage"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_sha256": self.image_sha256,
            "complete": self.complete,
            "artifacts": len(self.artifacts),
            "unique_blobs": len({a.sha256 for a in self.artifacts}),
            "max_depth": self.max_depth,
            "coverage": asdict(self.coverage),
            "platform": asdict(self.platform),
            "errors": [asdict(e) for e in self.errors],
            "notes": [asdict(n) for n in self.notes],
            "tree": [a.to_dict() for a in self.artifacts],
        }


@dataclass(frozen=True)
class Submission:
    """One image received for triage: what it is, where it comes from, and when it arrived.

    The hashes are those of the bytes as received; ``received_at`` is an RFC 3339 UTC timestamp.
    ``case``, ``exhibit`` (the seal number), ``device`` and ``examiner`` are what the lab states.
    """

    id: str
    filename: str
    size: int
    md5: str
    sha1: str
    sha256: str
    received_at: str
    case: str | None = None
    exhibit: str | None = None
    device: str | None = None
    examiner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- detection vocabulary -------------------------------------------------------------------------
# Analyzers describe what they saw with these words; behaviour rules (rules/behaviours/*.yml) match
# on them; the report prints them. One concept, one name, everywhere.


class Severity(StrEnum):
    """How much a single finding weighs on its own, before any correlation."""

    HIGH = "high"  # enough for a reviewer's attention alone (a known backdoor family's indicator)
    MEDIUM = "medium"  # a capability that matters in context (reads the IMEI, hard-coded SMS target)
    LOW = "low"  # common in benign firmware (socket imports, AT commands in a modem stack)
    INFO = "info"  # a fact about the file (architecture, linkage, permissions declared)


class Confidence(StrEnum):
    """How sure a behaviour is, kept apart from any claim about intent."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Category(StrEnum):
    """What a finding is about; the behaviour rules and the report group findings by it."""

    DATA_SOURCE = "data-source"  # reads personal data or identifiers (``Finding.data``)
    CHANNEL = "channel"  # can send data out (``Finding.channels``)
    ENDPOINT = "endpoint"  # a hard-coded destination (``Finding.endpoint``)
    FAMILY = "family"  # indicator of a publicly documented backdoor family
    EXECUTION = "execution"  # remote command execution, dynamic code loading, installs packages
    PERSISTENCE = "persistence"  # started at boot, as root, respawned
    PRIVILEGE = "privilege"  # system uid, privileged permissions, setuid
    OBFUSCATION = "obfuscation"  # encoded strings, packers, stripped static binaries
    PROPERTY = "property"  # a neutral fact: architecture, linkage, sections


# Data a component can read (``Finding.data``, ``Behaviour.data``).
DATA_KINDS = (
    "imei", "imsi", "iccid", "msisdn", "sms", "contacts", "call_log", "location", "microphone",
    "camera", "accounts", "installed_apps", "wifi", "files", "device_info",
)
# Ways a component can send (``Finding.channels``, ``Behaviour.channels``).
CHANNELS = ("http", "https", "tcp", "udp", "dns", "mqtt", "sms", "ftp", "smtp", "ussd")


class EndpointKind(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    DOMAIN = "domain"
    URL = "url"
    PHONE = "phone"
    EMAIL = "email"


class Scope(StrEnum):
    """Where an endpoint points; private and reserved addresses are classified, never dropped."""

    PUBLIC = "public"  # routable address, registrable domain, international phone number
    DOCUMENTATION = "documentation"  # RFC 5737/3849 ranges, example domains: placeholders or test builds
    PRIVATE = "private"  # RFC 1918, ULA, CGNAT
    LOCAL = "local"  # loopback, link-local, localhost, .local
    RESERVED = "reserved"  # multicast, broadcast, unspecified, other reserved ranges
    UNKNOWN = "unknown"  # a phone number too short to place, a domain on no public suffix

    @property
    def remote(self) -> bool:
        """Could the device reach it across the Internet or the phone network?

        Documentation ranges count: firmware that ships one hard-coded as a
        destination is either a test build or disguising a real one, and a
        reviewer must see it either way.
        """
        return self in (Scope.PUBLIC, Scope.DOCUMENTATION)


@dataclass(frozen=True)
class Endpoint:
    """A hard-coded destination: ``host`` is what a behaviour names (the host of a URL, else the value)."""

    value: str
    kind: EndpointKind
    scope: Scope
    host: str
    country: str | None = None  # ISO 3166 alpha-2, from offline data only (analyze/enrich.py)
    country_source: str | None = None  # "geoip", "phone", "cctld"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoint:
        return cls(**{**data, "kind": EndpointKind(data["kind"]), "scope": Scope(data["scope"])})


@dataclass(frozen=True)
class Evidence:
    """The bytes or facts that prove a finding, precise enough to find them again.

    ``offset`` is within the artifact's own bytes; ``excerpt`` a short hex or
    text view around the match, for the report.
    """

    kind: str  # string, utf16-string, yara-string, import, library, symbol, syscall, section, property,
    #             permission, api, manifest, member, path, config, decoded
    value: str
    offset: int | None = None
    excerpt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(**data)


@dataclass(frozen=True)
class Finding:
    """One thing an analyzer saw in one file, with its evidence.

    ``rule`` is a stable id (``yara:<namespace>.<rule>``, ``elf:import.socket``,
    ``ioc:url``...). ``data``, ``channels``, ``endpoint`` and ``tags`` are the
    features behaviour rules match on; ``tags`` carry the rest
    (``import:socket``, ``permission:android.permission.READ_SMS``,
    ``family:adups``, ``attack:T1426``...).
    """

    rule: str
    analyzer: str
    category: Category
    severity: Severity
    title: str
    data: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    endpoint: Endpoint | None = None
    tags: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    description: str = ""
    reference: str = ""

    def sort_key(self) -> tuple[str, str, str]:
        return (self.rule, self.endpoint.value if self.endpoint else "", self.title)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "analyzer": self.analyzer,
            "category": str(self.category),
            "severity": str(self.severity),
            "title": self.title,
            "data": list(self.data),
            "channels": list(self.channels),
            "endpoint": self.endpoint.to_dict() if self.endpoint else None,
            "tags": list(self.tags),
            "evidence": [e.to_dict() for e in self.evidence],
            "description": self.description,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of ``to_dict``: findings kept in the analysis cache come back identical."""
        endpoint = data.get("endpoint")
        return cls(
            rule=data["rule"], analyzer=data["analyzer"], category=Category(data["category"]),
            severity=Severity(data["severity"]), title=data["title"], data=tuple(data["data"]),
            channels=tuple(data["channels"]), endpoint=Endpoint.from_dict(endpoint) if endpoint else None,
            tags=tuple(data["tags"]), evidence=tuple(Evidence.from_dict(e) for e in data["evidence"]),
            description=data["description"], reference=data["reference"],
        )


@dataclass(frozen=True)
class Behaviour:
    """An exfiltration pattern seen in one component: data → channel → endpoint, with its evidence.

    ``rule`` is the behaviour rule (rules/behaviours/*.yml) that matched;
    ``artifact`` the component's first lineage path and sha256, ``also_at``
    the other paths where the same bytes appear. ``confidence`` says how sure
    the match is, never what the author intended; ``benign`` is the innocent
    explanation a reviewer should weigh.
    """

    id: str
    rule: str
    title: str
    confidence: Confidence
    data: tuple[str, ...]
    channels: tuple[str, ...]
    endpoints: tuple[str, ...]
    countries: tuple[str, ...]
    artifact_path: str
    artifact_sha256: str
    evidence: tuple[dict[str, Any], ...]
    attack: tuple[str, ...] = ()
    description: str = ""
    benign: str = ""
    also_at: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "title": self.title,
            "confidence": str(self.confidence),
            "data": list(self.data),
            "channels": list(self.channels),
            "endpoints": list(self.endpoints),
            "countries": list(self.countries),
            "artifact": {"path": self.artifact_path, "sha256": self.artifact_sha256},
            "also_at": list(self.also_at),
            "evidence": [dict(e) for e in self.evidence],
            "attack": list(self.attack),
            "description": self.description,
            "benign": self.benign,
        }


class CacheKey(NamedTuple):
    """What an analyzer's findings on one blob depend on: the analysis cache's key.

    ``config`` is the analyzer's ``config_digest`` (ruleset, reference data), extended with a digest of the
    blob's names for path-sensitive analyzers, whose findings depend on where the blob lives.
    """

    sha256: str
    analyzer: str
    version: str
    config: str


class VerdictLabel(StrEnum):
    BACKDOOR = "backdoor"  # a high-confidence exfiltration behaviour or a known backdoor family
    SUSPICIOUS = "suspicious"  # behaviours of medium or low confidence only
    CLEAN = "clean"  # everything unpacked and analysed, no behaviour found
    INCOMPLETE = "incomplete"  # nothing found, but part of the image was not covered


@dataclass(frozen=True)
class Verdict:
    label: VerdictLabel
    score: int  # 0-100, see the scoring table in pipeline/correlate.py
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"label": str(self.label), "score": self.score, "summary": self.summary}
