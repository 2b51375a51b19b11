"""Shaping a report for reading: the tree walked and capped, errors on their node, findings gravest first."""

from __future__ import annotations

from typing import Any

from pipeline.model import LINEAGE_SEPARATOR
from pipeline.report.html import render_html
from pipeline.report.view import behaviour_endpoints, coverage_parts, finding_groups, tree_view


def _node(node_id: int, parent: int | None, *names: str) -> dict[str, Any]:
    return {"id": node_id, "parent": parent, "path": LINEAGE_SEPARATOR.join(names), "name": names[-1],
            "sha256": f"{node_id:064x}", "size": 10, "kind": "file", "format": "data", "depth": len(names) - 1}


TREE = [_node(0, None, "fw.bin"), _node(1, 0, "fw.bin", "a.zip"), _node(2, 1, "fw.bin", "a.zip", "x"),
        _node(3, 1, "fw.bin", "a.zip", "y"), _node(4, 0, "fw.bin", "b")]


def _walk(rows: list) -> list[str]:
    return ["end" if row.end else f"{row.node['name']}{'/' if row.container else ''}" for row in rows]


def test_tree_walk_is_depth_first_with_each_container_closed() -> None:
    view = tree_view({"tree": TREE}, {})
    assert _walk(view.rows) == ["fw.bin/", "a.zip/", "x", "y", "end", "b", "end"]
    assert (view.shown, view.total, view.truncated) == (5, 5, False)


def test_tree_walk_stops_at_the_cap_and_still_closes_what_it_opened() -> None:
    view = tree_view({"tree": TREE}, {}, cap=3)
    assert _walk(view.rows) == ["fw.bin/", "a.zip/", "x", "end", "end"]
    assert (view.shown, view.total, view.truncated) == (3, 5, True)


def test_errors_go_to_their_node_or_the_nearest_ancestor_that_exists() -> None:
    refused = LINEAGE_SEPARATOR.join(("fw.bin", "a.zip", "bomb.bin"))
    errors = [{"path": refused, "error": "decompression bomb stopped", "kind": "limit"},
              {"path": TREE[4]["path"], "error": "truncated", "kind": "failure"}]
    rows = {row.node["name"]: row for row in tree_view({"tree": TREE, "errors": errors}, {}).rows if not row.end}
    assert [e["error"] for e in rows["a.zip"].errors] == ["decompression bomb stopped"]
    assert [e["error"] for e in rows["b"].errors] == ["truncated"]
    assert not rows["x"].errors


def test_a_capped_tree_says_where_the_whole_tree_is(sample_report: dict[str, Any]) -> None:
    report = dict(sample_report)
    root = report["extraction"]["tree"][0]
    nodes = [root] + [dict(root, id=i, parent=0, path=f"{root['path']} › f{i}", name=f"f{i}", kind="file")
                      for i in range(1, 6001)]
    report["extraction"] = dict(report["extraction"], tree=nodes)
    html = render_html(report)
    assert "Only the first 5000 of 6001 nodes are shown here" in html and "extraction.tree" in html
    assert "f4999<" in html and "f5000<" not in html


def _finding(path: str, rule: str, severity: str) -> dict[str, Any]:
    return {"rule": rule, "severity": severity, "artifact": {"path": path, "sha256": "0" * 64}, "evidence": []}


def test_findings_grouped_by_file_gravest_first_info_apart() -> None:
    groups = finding_groups([_finding("a", "r1", "info"), _finding("a", "r2", "low"), _finding("b", "r3", "medium"),
                             _finding("b", "r0", "low"), _finding("c", "r4", "info"), _finding("b", "r5", "high")])
    assert [(g.path, g.top_severity) for g in groups] == [("b", "high"), ("a", "low"), ("c", "info")]
    assert [f["rule"] for f in groups[0].notable] == ["r5", "r3", "r0"]
    assert [f["rule"] for f in groups[1].info] == ["r1"] and groups[2].notable == []
    assert [g.anchor for g in groups] == ["findings-1", "findings-2", "findings-3"]


def test_coverage_parts_are_shares_of_the_image() -> None:
    parts = coverage_parts({"bytes": 200, "unpacked": 150, "carved": 0, "padding": 20, "unknown": 20,
                            "undecodable": 10})
    assert [(p.name, p.percent) for p in parts] == [("unpacked", 75.0), ("carved", 0.0), ("padding", 10.0),
                                                    ("unknown", 10.0), ("undecodable", 5.0)]
    assert all(p.percent == 0.0 for p in coverage_parts({"bytes": 0}))


def test_behaviour_endpoints_once_each_with_their_country() -> None:
    report = {"behaviours": [{"endpoints": ["a.example.cn", "203.0.113.7"]}, {"endpoints": ["a.example.cn"]}],
              "endpoints": [{"value": "http://a.example.cn/x", "host": "a.example.cn", "country": "CN"},
                            {"value": "203.0.113.7", "host": "203.0.113.7", "country": None}]}
    assert behaviour_endpoints(report) == [("a.example.cn", "CN"), ("203.0.113.7", None)]
