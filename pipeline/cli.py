"""The ``fwtriage`` command: parse, call the library, print.

Exit codes: 0 when the command completed (whatever it found), 2 for bad usage
or an unreadable input, 1 for an internal failure. Messages are one line;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from pipeline import __version__
from pipeline.analyze.rule_tests import RuleTestReport, run_rule_tests
from pipeline.analyze.ruleset import Ruleset, compile_ruleset
from pipeline.cli_admin import ADMIN_COMMANDS
from pipeline.cli_fleet import FLEET_COMMANDS
from pipeline.cli_inputs import case_options, requests_of
from pipeline.cli_serve import serve
from pipeline.config import Detection, Settings
from pipeline.db import Database
from pipeline.ingest import ImageUnreadable
from pipeline.inputs import report_folder_names
from pipeline.model import Artifact, ExtractionTree
from pipeline.report.batch import BatchEntry, risk_order, write_index, write_summary_csv
from pipeline.scan import ScanOutcome, Stage, scan_image
from pipeline.store import LocalBlobStore
from pipeline.unpack import unpack as unpack_image
from pipeline.unpack.safety import Budget

console = Console(stderr=True)
MAX_CHILDREN_SHOWN = 25
MAX_NOTES_SHOWN = 10


class _Failure(click.ClickException):
    """An internal failure: exit status 1, one line."""

    exit_code = 1


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _label(artifact: Artifact) -> str:
    text = f"[bold]{escape(artifact.name)}[/]  [dim]{escape(artifact.format)}, {_human(artifact.size)}"
    if artifact.offset is not None:
        text += f", @{artifact.offset:#x}"
    if artifact.link_target is not None:
        text += f" → {escape(artifact.link_target)}"
    return text + "[/]"


def render_tree(tree: ExtractionTree) -> Tree:
    """A rich Tree of the extraction, long directories folded so it stays readable."""
    children: dict[int, list[Artifact]] = {}
    for artifact in tree.artifacts[1:]:
        children.setdefault(artifact.parent or 0, []).append(artifact)
    rendered = Tree(_label(tree.root))
    stack = [(tree.root, rendered)]
    while stack:
        artifact, node = stack.pop()
        kids = children.get(artifact.id, [])
        containers = [k for k in kids if k.id in children]
        leaves = [k for k in kids if k.id not in children]
        shown = containers + leaves[: max(MAX_CHILDREN_SHOWN - len(containers), 0)]
        for kid in shown:
            stack.append((kid, node.add(_label(kid))))
        if len(shown) < len(kids):
            node.add(f"[dim]… {len(kids) - len(shown)} more files[/]")
    return rendered


def _summary(tree: ExtractionTree) -> str:
    cov = tree.coverage
    state = "[green]complete[/]" if tree.complete else f"[yellow]incomplete ({len(tree.errors)} issues)[/]"
    return (f"{len(tree.artifacts)} artifacts, {len({a.sha256 for a in tree.artifacts})} unique blobs, "
            f"depth {tree.max_depth}; {cov.reached_ratio:.1%} of the image's bytes reached; {state}")


@click.group()
@click.version_option(__version__, prog_name="fwtriage")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal failures.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """fwtriage: triage firmware images from seized devices for data-exfiltration backdoors."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("image", type=click.Path(exists=True, readable=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for extraction.json.")
@click.option("--tree/--no-tree", "show_tree", default=True, help="Print the extraction tree (default) or not.")
def unpack(image: Path, out_dir: Path, show_tree: bool) -> None:
    """Unpack IMAGE (a file or a firmware folder) recursively; print its tree, write extraction.json."""
    settings = Settings.from_env()
    store = LocalBlobStore(settings.store_dir)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("unpacking", total=None)

        def advance(artifact: Artifact, budget: Budget) -> None:
            progress.update(task, description=f"unpacking: {budget.written_files} files, "
                            f"{_human(budget.written_bytes)} — {escape(artifact.lineage_path[-70:])}")

        try:
            tree = unpack_image(image, store=store, settings=settings, progress=advance)
        except OSError as exc:
            raise click.UsageError(f"cannot read {image}: {exc.strerror or exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "extraction.json"
    target.write_text(json.dumps(tree.to_dict(), indent=1, ensure_ascii=False))
    output = Console()
    if show_tree:
        output.print(render_tree(tree))
    for issue in tree.errors:
        output.print(f"[yellow]![/] {escape(issue.path)}: {escape(issue.error)}", highlight=False)
    for note in tree.notes[:MAX_NOTES_SHOWN]:
        output.print(f"[dim]· {escape(note.path)}: {escape(note.note)}[/]", highlight=False)
    if len(tree.notes) > MAX_NOTES_SHOWN:
        output.print(f"[dim]· … {len(tree.notes) - MAX_NOTES_SHOWN} more notes in extraction.json[/]")
    output.print(_summary(tree), soft_wrap=True)
    output.print(f"wrote {target}")


@cli.group()
def rules() -> None:
    """The YARA rule library (rules/*.yar and FWTRIAGE_RULES_PATH): list it, run its examples."""


def _load_rules(detection: Detection) -> Ruleset:
    ruleset = compile_ruleset(detection)
    for skipped in ruleset.skipped:
        console.print(f"[yellow]![/] skipped {escape(str(skipped.path))}: {escape(skipped.reason)}", highlight=False)
    for warning in ruleset.warnings:
        console.print(f"[dim]· {escape(warning)}[/]", highlight=False)
    return ruleset


@rules.command("list")
def rules_list() -> None:
    """Every loaded rule (id, category, severity, title), the sources skipped and the ruleset digest."""
    ruleset = _load_rules(Detection.from_env())
    table = Table("rule", "category", "severity", "title", box=None, pad_edge=False)
    for meta in sorted(ruleset.metadata.values(), key=lambda m: m.id):
        table.add_row(meta.id, meta.category, meta.severity, meta.title)
    for (namespace, identifier), meta in sorted(ruleset.third_party.items()):
        severity = meta.get("severity") if isinstance(meta.get("severity"), str) else "medium"
        title = meta.get("description") if isinstance(meta.get("description"), str) else ""
        table.add_row(f"{namespace}.{identifier}", "property", str(severity), str(title))
    output = Console()
    output.print(table)
    total = len(ruleset.metadata) + len(ruleset.third_party)
    output.print(f"{total} rules from {len(ruleset.sources)} files, {len(ruleset.skipped)} skipped; "
                 f"ruleset digest {ruleset.digest}", soft_wrap=True, highlight=False)


def _passed_of(report: RuleTestReport, positive: bool) -> str:
    total = report.positives if positive else report.negatives
    failed = sum(e.positive == positive for e in report.failures)
    return f"{total - failed}/{total}" + (" [red]✗[/]" if failed else "")


def _verdict(report: RuleTestReport) -> str:
    if report.passed:
        return "[green]pass[/]"
    reasons = list(report.problems) + [f"{'missed' if e.positive else 'matched'} {e.label!r}" for e in report.failures]
    return "[red]FAIL[/] " + "; ".join(reasons)


@rules.command("test")
def rules_test() -> None:
    """Run every rule's positive and negative examples (rules/tests/*.yml) and check its metadata."""
    detection = Detection.from_env()
    ruleset = _load_rules(detection)
    try:
        reports = run_rule_tests(ruleset, detection.rules_dir / "tests")
    except (ValueError, OSError) as exc:
        raise _Failure(f"cannot read the rule examples: {exc}") from exc
    table = Table("rule", "positive", "negative", "result", box=None, pad_edge=False)
    for report in reports:
        table.add_row(report.rule_id, _passed_of(report, True), _passed_of(report, False), _verdict(report))
    output = Console()
    output.print(table)
    failing = [r for r in reports if not r.passed]
    output.print(f"{len(reports) - len(failing)} of {len(reports)} rules pass their examples", highlight=False)
    if failing:
        raise _Failure(f"{len(failing)} rules fail: {', '.join(r.rule_id for r in failing)}")


VERDICT_STYLE = {"backdoor": "bold red", "suspicious": "yellow", "clean": "green", "incomplete": "magenta"}


class _ScanDisplay:
    """One progress bar per stage of the current image, and one for the batch when there are several images."""

    def __init__(self, progress: Progress, images: int) -> None:
        self.progress = progress
        self.batch = progress.add_task("images", total=images) if images > 1 else None
        self.stages = {stage: progress.add_task(str(stage), total=None, visible=False) for stage in Stage}
        self.current: Stage | None = None

    def start(self, index: int, name: str) -> None:
        if self.batch is not None:
            self.progress.update(self.batch, completed=index, description=f"images — {escape(name)}")
        for task in self.stages.values():
            self.progress.reset(task, total=None, visible=False)
        self.current = None

    def __call__(self, stage: Stage, done: int, total: int | None, detail: str) -> None:
        if stage is not self.current:
            if self.current is not None:
                finished = self.stages[self.current]
                self.progress.update(finished, total=1, completed=1)
            self.current = stage
            self.progress.update(self.stages[stage], visible=True)
        label = f"{stage}: {done} files" if stage is Stage.UNPACK else str(stage)
        if detail:
            label += f" — {escape(detail[-60:])}"
        self.progress.update(self.stages[stage], completed=done, total=total, description=label)


def _print_verdict(outcome: ScanOutcome, output: Console) -> None:
    report = outcome.report
    verdict = report["verdict"]
    style = VERDICT_STYLE[verdict["label"]]
    output.print(f"[{style}]{verdict['label'].upper()}[/] {verdict['score']:3d}  "
                 f"{escape(outcome.submission.filename)}: {escape(verdict['summary'])}", highlight=False,
                 soft_wrap=True)
    for behaviour in report["behaviours"]:
        output.print(f"  [{style}]●[/] {behaviour['confidence']} · {escape(behaviour['title'])} · "
                     f"{escape(behaviour['artifact']['path'])}", highlight=False, soft_wrap=True)
        flow = " → ".join(part for part in (", ".join(behaviour["data"]), ", ".join(behaviour["channels"]),
                                             ", ".join(behaviour["endpoints"])) if part)
        if flow:
            output.print(f"      {flow}", highlight=False, soft_wrap=True, markup=False)


def _print_verdict_table(outcomes: list[ScanOutcome], output: Console) -> None:
    """One line per image, riskiest first, columns aligned; long summaries wrap rather than being cut."""
    rows = [(o.report["verdict"], o.submission.exhibit or "-", o.submission.filename)
            for o in sorted(outcomes, key=lambda o: risk_order(o.report))]
    exhibit_width = max([len("exhibit"), *(len(r[1]) for r in rows)])
    image_width = max([len("image"), *(len(r[2]) for r in rows)])
    output.print(f"[bold]{'verdict':<10} {'score':>5}  {'exhibit':<{exhibit_width}}  {'image':<{image_width}}  "
                 f"summary[/]", highlight=False)
    for verdict, exhibit, image in rows:
        label = f"[{VERDICT_STYLE[verdict['label']]}]{verdict['label']:<10}[/]"
        output.print(f"{label} {verdict['score']:>5}  {escape(f'{exhibit:<{exhibit_width}}')}  "
                     f"{escape(f'{image:<{image_width}}')}  {escape(verdict['summary'])}", highlight=False,
                     soft_wrap=True)


@cli.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the report(s); a batch gets one subfolder per image, index.html and summary.csv.")
@case_options
@click.option("--pdf", is_flag=True, help="Also write report.pdf for the case file.")
@click.pass_context
def scan(ctx: click.Context, target: Path, out_dir: Path, case: str | None, exhibit: str | None, examiner: str | None,
         device: str | None, pdf: bool) -> None:
    """Triage TARGET — an image, a folder of images, or a manifest.csv (path, case, exhibit, device, examiner) —
    and write report.json and report.html for each image."""
    requests, batch = requests_of(target, case, exhibit, device, examiner)
    settings = Settings.from_env()
    store = LocalBlobStore(settings.store_dir)
    detection = Detection.from_env()
    folders = report_folder_names(requests) if batch else [""]
    outcomes: list[ScanOutcome] = []
    failures: list[str] = []
    with Database.for_settings(settings) as database, Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True) as progress:
        display = _ScanDisplay(progress, len(requests))
        for index, (request, folder) in enumerate(zip(requests, folders, strict=True)):
            display.start(index, request.image.name)
            try:
                outcome = scan_image(request, out_dir / folder, store=store, settings=settings, database=database,
                                     detection=detection, progress=display, pdf=pdf)
            except ImageUnreadable as exc:
                raise click.UsageError(str(exc)) from exc
            except Exception as exc:
                if not batch or ctx.obj["debug"]:
                    raise
                failures.append(f"{request.image.name}: no report: {type(exc).__name__}: {exc}")
                continue
            outcomes.append(outcome)
            failures.extend(f"{outcome.submission.filename}: {error} (report marked incomplete)"
                            for error in outcome.internal_errors)
    output = Console()
    if batch:
        _print_verdict_table(outcomes, output)
        entries = [BatchEntry(o.report, folder) for o, folder in zip(outcomes, folders, strict=True)]
        write_summary_csv(entries, out_dir)
        output.print(f"{len(outcomes)} images triaged; index: {write_index(entries, out_dir)}", highlight=False)
    else:
        _print_verdict(outcomes[0], output)
        output.print("report: " + ", ".join(str(f) for f in outcomes[0].files), highlight=False)
    if failures:
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        raise _Failure(failures[0] + more)


for _command in (*FLEET_COMMANDS, *ADMIN_COMMANDS, serve):
    cli.add_command(_command)


def main() -> None:
    """Entry point: turns unexpected exceptions into exit status 1 unless --debug."""
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        console.print("aborted")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug:
            raise
        console.print(f"fwtriage: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
                      markup=False, highlight=False)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
