"""What the readable reports show, shaped from the report dict: the tree nested, findings grouped, coverage split.

Why a step of its own: templates should only lay out. Sorting, grouping,
attaching extraction errors to tree nodes and capping a tree that can hold
200,000 files are logic, easier to test here, and done once in Python they
keep a big report fast to render. The report dict is the only input, so a
report.json from any run (or another machine) renders the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.model import LINEAGE_SEPARATOR

Report = Mapping[str, Any]

SEVERITIES = ("high", "medium", "low", "info")
# Riskiest first: the order of the batch index and of the verdict totals.
VERDICT_LABELS = ("backdoor", "suspicious", "incomplete", "clean")
# A tree beyond this many nodes is cut in the HTML (a browser chokes on more); report.json keeps it whole.
TREE_NODE_CAP = 5000
# How the bytes of the image were accounted for, in the words of pipeline.model.Coverage.
COVERAGE_PARTS = (
    ("unpacked", "read by a format reader (archive, filesystem, container, compressed stream)"),
    ("carved", "found at an offset by a signature scan and extracted"),
    ("padding", "erased flash or zero fill: reached, holds nothing"),
    ("unknown", "low-entropy data that no format reader claimed"),
    ("undecodable", "high-entropy data (encrypted, or compressed in a way fwtriage cannot decode): its contents "
                    "are not analysed"),
)


# The isolation block's limits in a reviewer's words, and how each value reads.
ISOLATION_LIMITS = (
    ("reader_memory", "memory (address space) of the unpacking process", "bytes"),
    ("reader_cpu_seconds", "CPU time of the unpacking process", "seconds"),
    ("reader_wall_seconds", "wall-clock time of the unpacking process", "seconds"),
    ("tool_memory", "memory (address space) of each external extractor", "bytes"),
    ("extractor_seconds", "time of each extractor on one container", "seconds"),
)


@dataclass(frozen=True)
class CoveragePart:
    name: str
    bytes: int
    percent: float
    meaning: str


@dataclass(frozen=True)
class TreeRow:
    """One step of a depth-first walk: a node (``container`` when its children follow), or the end of one."""

    node: Mapping[str, Any] | None
    container: bool = False
    errors: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[Mapping[str, Any]] = ()
    findings_anchor: str | None = None

    @property
    def end(self) -> bool:
        return self.node is None


@dataclass(frozen=True)
class TreeView:
    rows: list[TreeRow]
    shown: int
    total: int

    @property
    def truncated(self) -> bool:
        return self.shown < self.total


@dataclass
class FindingGroup:
    """The findings of one artifact: those that matter, and the informational facts (shown collapsed)."""

    anchor: str
    path: str
    sha256: str
    also_at: Sequence[str]
    notable: list[Mapping[str, Any]] = field(default_factory=list)
    info: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def top_severity(self) -> str:
        return self.notable[0]["severity"] if self.notable else "info"


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def verdict_rank(label: str) -> int:
    return VERDICT_LABELS.index(label) if label in VERDICT_LABELS else len(VERDICT_LABELS)


def coverage_parts(coverage: Mapping[str, int]) -> list[CoveragePart]:
    total = coverage.get("bytes", 0)
    return [CoveragePart(name, coverage.get(name, 0), 100.0 * coverage.get(name, 0) / total if total else 0.0,
                         meaning) for name, meaning in COVERAGE_PARTS]


def isolation_rows(isolation: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The Method section's isolation table: how readers and extractors were confined, then each limit."""
    if not isolation:
        return []
    readers = isolation.get("readers")
    rows = [("format readers (Python)", "in a child process with its own limits" if readers == "subprocess"
             else f"{readers}: in the worker process itself, without limits of their own"),
            ("external extractors", "under bubblewrap (no network, read-only system, own work directory) and rlimits"
             if isolation.get("extractors") == "bubblewrap" else f"{isolation.get('extractors')}: no sandbox")]
    limits = isolation.get("limits") or {}
    for key, label, unit in ISOLATION_LIMITS:
        if key in limits:
            value = limits[key]
            rows.append((label, f"{value / (1 << 20):,.0f} MiB" if unit == "bytes" else f"{value:,g} s"))
    return rows


def finding_groups(findings: Iterable[Mapping[str, Any]]) -> list[FindingGroup]:
    """Findings by artifact, the group with the gravest finding first; in a group, gravest first, then by rule."""
    groups: dict[str, FindingGroup] = {}
    for finding in findings:
        artifact = finding["artifact"]
        group = groups.get(artifact["path"])
        if group is None:
            group = groups[artifact["path"]] = FindingGroup("", artifact["path"], artifact["sha256"],
                                                            finding.get("also_at") or ())
        (group.info if finding["severity"] == "info" else group.notable).append(finding)
    for group in groups.values():
        group.notable.sort(key=lambda f: (severity_rank(f["severity"]), f["rule"]))
        group.info.sort(key=lambda f: f["rule"])
    ordered = sorted(groups.values(), key=lambda g: (severity_rank(g.top_severity), g.path))
    for number, group in enumerate(ordered, 1):
        group.anchor = f"findings-{number}"
    return ordered


def _by_nearest_node(items: Iterable[Mapping[str, Any]], node_paths: set[str]) -> dict[str, list[Mapping[str, Any]]]:
    """Each error or note under the node at its path, or at its nearest ancestor in the tree when the node
    itself was never created (a member the unpacker refused to write)."""
    placed: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in items:
        path = item["path"]
        while path not in node_paths and LINEAGE_SEPARATOR in path:
            path = path.rsplit(LINEAGE_SEPARATOR, 1)[0]
        placed[path].append(item)
    return placed


def tree_view(extraction: Mapping[str, Any], anchors: Mapping[str, str], cap: int = TREE_NODE_CAP) -> TreeView:
    """The flat ``extraction.tree`` as a depth-first walk of at most ``cap`` nodes (no recursion: trees are deep)."""
    nodes = extraction.get("tree") or []
    children: dict[int | None, list[Mapping[str, Any]]] = defaultdict(list)
    for node in nodes:
        children[node["parent"]].append(node)
    node_paths = {node["path"] for node in nodes}
    errors = _by_nearest_node(extraction.get("errors") or [], node_paths)
    notes = _by_nearest_node(extraction.get("notes") or [], node_paths)
    known_ids = {node["id"] for node in nodes}
    roots = [node for node in nodes if node["parent"] is None or node["parent"] not in known_ids]
    rows: list[TreeRow] = []
    shown = 0
    stack: list[tuple[Mapping[str, Any], bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        node, closing = stack.pop()
        if closing:
            rows.append(TreeRow(None))
            continue
        if shown >= cap:
            continue
        shown += 1
        kids = children.get(node["id"], [])
        path = node["path"]
        rows.append(TreeRow(node, bool(kids), errors.get(path, ()), notes.get(path, ()), anchors.get(path)))
        if kids:
            stack.append((node, True))
            stack.extend((kid, False) for kid in reversed(kids))
    return TreeView(rows, shown, len(nodes))


def endpoint_countries(endpoints: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Host or value → country, to print a behaviour's endpoints (hosts) with their country."""
    countries: dict[str, str] = {}
    for row in endpoints:
        if row.get("country"):
            countries.setdefault(row["value"], row["country"])
            countries.setdefault(row.get("host") or row["value"], row["country"])
    return countries


def behaviour_endpoints(report: Report) -> list[tuple[str, str | None]]:
    """The endpoints the behaviours name, each once, in behaviour order, with their country."""
    countries = endpoint_countries(report.get("endpoints") or [])
    named = dict.fromkeys(e for b in report.get("behaviours") or [] for e in b["endpoints"])
    return [(endpoint, countries.get(endpoint)) for endpoint in named]


@dataclass(frozen=True)
class ReportView:
    """Everything the report template needs beyond the report dict itself."""

    coverage: list[CoveragePart]
    groups: list[FindingGroup]
    tree: TreeView
    countries: dict[str, str]
    named_endpoints: set[str]
    findings_anchors: dict[str, str]
    analyzer_purposes: dict[str, str]
    isolation: list[tuple[str, str]]


def report_view(report: Report, tree_cap: int = TREE_NODE_CAP) -> ReportView:
    extraction = report.get("extraction") or {}
    groups = finding_groups(report.get("findings") or [])
    anchors = {group.path: group.anchor for group in groups}
    return ReportView(
        coverage=coverage_parts(extraction.get("coverage") or {}),
        groups=groups,
        tree=tree_view(extraction, anchors, tree_cap),
        countries=endpoint_countries(report.get("endpoints") or []),
        named_endpoints={e for b in report.get("behaviours") or [] for e in b["endpoints"]},
        findings_anchors=anchors,
        analyzer_purposes={a["name"]: a.get("purpose", "") for a in (report.get("limits") or {}).get("analyzers", [])},
        isolation=isolation_rows(report.get("isolation")),
    )
