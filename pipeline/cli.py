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
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.tree import Tree

from pipeline import __version__
from pipeline.config import Settings
from pipeline.model import Artifact, ExtractionTree
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
    text = f"[bold]{artifact.name}[/]  [dim]{artifact.format}, {_human(artifact.size)}"
    if artifact.offset is not None:
        text += f", @{artifact.offset:#x}"
    if artifact.link_target is not None:
        text += f" → {artifact.link_target}"
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
                            f"{_human(budget.written_bytes)} — {artifact.lineage_path[-70:]}")

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
        output.print(f"[yellow]![/] {issue.path}: {issue.error}", highlight=False)
    for note in tree.notes[:MAX_NOTES_SHOWN]:
        output.print(f"[dim]· {note.path}: {note.note}[/]", highlight=False)
    if len(tree.notes) > MAX_NOTES_SHOWN:
        output.print(f"[dim]· … {len(tree.notes) - MAX_NOTES_SHOWN} more notes in extraction.json[/]")
    output.print(_summary(tree), soft_wrap=True)
    output.print(f"wrote {target}")


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
        console.print(f"fwtriage: internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
