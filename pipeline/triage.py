"""Analysis and correlation of an unpacked tree: what scan.py and the tests chain after unpacking.

Each step is a plain library function; this module only chains them, so the
CLI, the tests and (later) the workers run exactly the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.analyze.runner import Analysis, Progress, analyze_tree
from pipeline.behaviour_rules import behaviour_rules
from pipeline.config import Detection
from pipeline.correlate import Correlation, correlate, well_known_endpoints
from pipeline.model import ExtractionTree
from pipeline.store import BlobStore


@dataclass
class Triage:
    """Everything one image's triage produced, ready for a report."""

    tree: ExtractionTree
    analysis: Analysis
    correlation: Correlation


def correlate_analysis(tree: ExtractionTree, analysis: Analysis, detection: Detection) -> Correlation:
    """Correlate with the behaviour rules and well-known endpoints ``detection`` names."""
    return correlate(tree, analysis, behaviour_rules(detection.behaviours_dir),
                     well_known_endpoints(detection.well_known_endpoints))


def triage_tree(tree: ExtractionTree, store: BlobStore, detection: Detection | None = None,
                progress: Progress | None = None) -> Triage:
    """Analyse and correlate an already unpacked tree."""
    analysis = analyze_tree(tree, store, progress=progress)
    return Triage(tree, analysis, correlate_analysis(tree, analysis, detection or Detection.from_env()))

