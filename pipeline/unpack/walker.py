"""The recursion: identify → extract → recurse, bounded by the image's quotas.

The walker turns an image into an ``ExtractionTree``. It goes depth first
with an explicit stack (no Python recursion, whatever the nesting), gives
every extractor a fresh ``Output`` bound to one shared ``Budget``, carves
unidentified blobs, and records every limit hit and failure with its lineage
path instead of raising. A container seen twice (the same blob at two paths)
is extracted once and its result replayed; a container that contains itself
(a zip quine) stops the recursion with a note.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.model import (
    LINEAGE_SEPARATOR,
    Artifact,
    ArtifactKind,
    Coverage,
    ExtractionIssue,
    ExtractionNote,
    ExtractionTree,
    IssueKind,
    NoteKind,
    Platform,
)
from pipeline.store import BlobStore, StoreFull
from pipeline.unpack.carve import find_chunks
from pipeline.unpack.coverage import classify, container_coverage, effective
from pipeline.unpack.format import Format, Source
from pipeline.unpack.identify import HEAD_SIZE, Identification, identify
from pipeline.unpack.output import Child, Output, OutputIssue, OutputNote, ingest_directory
from pipeline.unpack.platform import is_prop_file, platform_from_props
from pipeline.unpack.registry import all_formats
from pipeline.unpack.safety import Budget, ExtractionAborted

UNDECODABLE_REPORT_MIN = 16 * 1024  # smaller high-entropy leaves (keys, hashes) are not worth an issue

ProgressCallback = Callable[[Artifact, Budget], None]


@dataclass(frozen=True)
class _Extraction:
    """What one container gave, independent of where it sits in the tree (replayable)."""

    extractor: str
    children: list[Child]
    issues: list[OutputIssue]
    notes: list[OutputNote]
    coverage: Coverage
    platform: Platform | None
    attributes: dict[str, Any]


def _identify_blob(path: Path, size: int, name: str) -> Identification:
    with open(path, "rb") as handle:
        head = handle.read(HEAD_SIZE)
    return identify(head, size, name)


class _Walk:
    def __init__(self, store: BlobStore, settings: Settings, budget: Budget,
                 progress: ProgressCallback | None) -> None:
        self.store = store
        self.settings = settings
        self.limits = settings.limits
        self.budget = budget
        self.progress = progress
        self.tree: ExtractionTree | None = None
        self.extractions: dict[str, _Extraction] = {}
        self.identities: dict[str, Identification] = {}
        self.siblings: dict[int, dict[str, Path]] = {}
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="identify")
        self.pending: dict[str, Future[Identification]] = {}

    # tree bookkeeping ----------------------------------------------------------

    def _new_artifact(self, parent: Artifact, child: Child, extractor: str) -> Artifact:
        assert self.tree is not None
        artifact = Artifact(
            id=len(self.tree.artifacts),
            parent=parent.id,
            lineage=(*parent.lineage, child.name),
            sha256=child.sha256,
            size=child.size,
            kind=child.kind,
            depth=parent.depth + 1,
            offset=child.offset,
            extractor=extractor,
            link_target=child.link_target,
            attributes=dict(child.attributes),
        )
        if child.kind is ArtifactKind.SYMLINK:
            artifact.format = artifact.description = "symlink"
        self.tree.artifacts.append(artifact)
        return artifact

    def _issue(self, artifact: Artifact, error: str, kind: IssueKind, extractor: str | None,
               member: str | None = None) -> None:
        assert self.tree is not None
        path = artifact.lineage_path + (LINEAGE_SEPARATOR + member if member else "")
        self.tree.errors.append(ExtractionIssue(path, error, kind, extractor))

    def _record(self, artifact: Artifact, extraction: _Extraction) -> list[Artifact]:
        assert self.tree is not None
        for issue in extraction.issues:
            self._issue(artifact, issue.error, issue.kind, extraction.extractor, issue.member)
        for note in extraction.notes:
            path = artifact.lineage_path + (LINEAGE_SEPARATOR + note.member if note.member else "")
            self.tree.notes.append(ExtractionNote(path, note.note, note.kind))
        if extraction.platform:
            self._merge_platform(extraction.platform)
        artifact.coverage = extraction.coverage
        artifact.attributes.update(extraction.attributes)
        children = [self._new_artifact(artifact, c, extraction.extractor) for c in extraction.children]
        siblings = {c.name: self.store.path(c.sha256) for c in children if c.kind is not ArtifactKind.SYMLINK}
        for child in children:
            self.siblings[child.id] = siblings
        self._prefetch(children)
        return children

    def _merge_platform(self, found: Platform) -> None:
        assert self.tree is not None
        current = self.tree.platform
        self.tree.platform = Platform(
            os=current.os or found.os,
            chipset=current.chipset or found.chipset,
            how="; ".join(h for h in (current.how, found.how) if h) or None,
        )

    # one artifact --------------------------------------------------------------

    def _prefetch(self, children: list[Artifact]) -> None:
        """Identify a container's children in background threads while the walk goes on.

        libmagic costs about a millisecond per file and releases the GIL, so a
        rootfs of thousands of files is identified on every core.
        """
        for child in children:
            sha256 = child.sha256
            if child.kind is ArtifactKind.SYMLINK or sha256 in self.identities or sha256 in self.pending:
                continue
            self.pending[sha256] = self.pool.submit(_identify_blob, self.store.path(sha256), child.size, child.name)

    def _identify(self, artifact: Artifact) -> Identification:
        known = self.identities.get(artifact.sha256)
        if known is None:
            future = self.pending.pop(artifact.sha256, None)
            known = future.result() if future else _identify_blob(
                self.store.path(artifact.sha256), artifact.size, artifact.name)
            self.identities[artifact.sha256] = known
        return known

    def _ancestor_hashes(self, artifact: Artifact) -> set[str]:
        assert self.tree is not None
        hashes, parent = set(), artifact.parent
        while parent is not None:
            hashes.add(self.tree.artifacts[parent].sha256)
            parent = self.tree.artifacts[parent].parent
        return hashes

    def output(self, size: int, rooted: bool) -> Output:
        return Output(self.store, self.budget, container_size=size, rooted=rooted,
                      max_ratio=self.limits.max_ratio, ratio_floor=self.limits.ratio_floor)

    def run_extractor(self, out: Output, body: Callable[[], None], extractor: str) -> None:
        """Run an extractor body, turning every way it can fail into a recorded issue."""
        self.budget.start_extractor()
        try:
            body()
        except ExtractionAborted as exc:
            out.error(exc.reason, exc.kind)
        except MemoryError:
            out.error(f"{extractor}: ran out of memory", IssueKind.LIMIT)
        except StoreFull:
            raise  # the lab's disk, not the image: the submission fails with it
        except Exception as exc:  # a hostile input may break a third-party parser in any way
            out.error(f"{extractor} could not parse it: {type(exc).__name__}: {exc}", IssueKind.FAILURE)
        if out.store_full is not None:  # met by a member write, then caught by the reader as any member failure
            raise out.store_full

    def _extract(self, artifact: Artifact, fmt: type[Format]) -> _Extraction:
        path = self.store.path(artifact.sha256)
        out = self.output(artifact.size, fmt.rooted)
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix=f"{fmt.name}-", dir=self.settings.work_dir))
        source = Source(path, artifact.size, artifact.name, work_dir, self.siblings.get(artifact.id, {}),
                        self.limits)
        try:
            self.run_extractor(out, lambda: fmt().extract(source, out), fmt.name)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        failed = any(i.member is None and i.kind in (IssueKind.FAILURE, IssueKind.LIMIT) for i in out.issues)
        covered = out.covered if (out.covered or failed) else [(0, artifact.size)]
        with open(path, "rb") as handle:
            coverage = container_coverage(handle, artifact.size, unpacked=covered,
                                          undecodable=out.undecodable_ranges)
        return _Extraction(fmt.name, out.children, out.issues, out.notes, coverage, out.platform, out.attributes)

    def _carve(self, artifact: Artifact) -> _Extraction:
        path = self.store.path(artifact.sha256)
        out = self.output(artifact.size, rooted=False)

        def body() -> None:
            result = find_chunks(path, artifact.size, all_formats(), self.limits.max_carves)
            if result.flooded:
                out.error(f"signature flood: {result.candidates} candidate signatures, carving stopped at "
                          f"{len(result.chunks)} chunks (limit {self.limits.max_carves})", IssueKind.LIMIT)
            with open(path, "rb") as handle:
                for chunk in result.chunks:
                    if chunk.offset == 0 and chunk.length == artifact.size:
                        continue
                    out.add_range(f"{chunk.offset:#x}.{chunk.format.name}", handle, chunk.offset,
                                  chunk.length, kind=ArtifactKind.CARVED)

        self.run_extractor(out, body, "carve")
        with open(path, "rb") as handle:
            coverage = container_coverage(handle, artifact.size, carved=out.covered)
        if not out.children and coverage.undecodable >= UNDECODABLE_REPORT_MIN:
            out.error(f"{coverage.undecodable} of {coverage.bytes} bytes are high-entropy data that no "
                      "reader recognised (encrypted, or compressed in an unknown way)", IssueKind.UNDECODABLE)
        return _Extraction("carve", out.children, out.issues, out.notes, coverage, None, {})

    def process(self, artifact: Artifact) -> list[Artifact]:
        """Identify one artifact and, if it is a container, extract it; returns its children."""
        if artifact.kind is ArtifactKind.SYMLINK:
            artifact.coverage = Coverage()
            return []
        ident = self._identify(artifact)
        artifact.format, artifact.description = ident.label, ident.description
        if artifact.size == 0:
            artifact.coverage = Coverage()
            if artifact.depth == 0:
                self._issue(artifact, "the image is empty: nothing to analyse", IssueKind.FAILURE, None)
            return []
        if ident.format is None and ident.label != "data":
            artifact.coverage = Coverage(bytes=artifact.size, unpacked=artifact.size)
            if is_prop_file(artifact.name, artifact.size):
                found = platform_from_props(self.store.path(artifact.sha256), artifact.lineage_path)
                if found:
                    self._merge_platform(found)
            if ident.unsupported_container:
                artifact.coverage = Coverage(bytes=artifact.size, unknown=artifact.size)
                self._issue(artifact, f"container format with no reader: {ident.description}",
                            IssueKind.UNSUPPORTED, None)
            return []
        if artifact.sha256 in self._ancestor_hashes(artifact):
            artifact.coverage = Coverage(bytes=artifact.size, unpacked=artifact.size)
            assert self.tree is not None
            self.tree.notes.append(ExtractionNote(artifact.lineage_path, "contains one of its own ancestors "
                                                  "(a self-replicating archive); not unpacked again",
                                                  NoteKind.DUPLICATE))
            return []
        stop = None
        if artifact.depth >= self.limits.max_depth:
            stop = f"depth limit of {self.limits.max_depth} reached; not unpacked"
        elif self.budget.exhausted:
            stop = f"not unpacked: {self.budget.exhausted}"
        if stop:
            with open(self.store.path(artifact.sha256), "rb") as handle:
                padding, unknown, high = classify(handle, 0, artifact.size)
            artifact.coverage = Coverage(artifact.size, 0, 0, padding, unknown, high)
            self._issue(artifact, stop, IssueKind.LIMIT, ident.format.name if ident.format else None)
            return []
        extraction = self.extractions.get(artifact.sha256)
        if extraction is None:
            extraction = self._extract(artifact, ident.format) if ident.format else self._carve(artifact)
            self.extractions[artifact.sha256] = extraction
        return self._record(artifact, extraction)

    def run(self, root: Artifact, root_extraction: _Extraction | None = None) -> ExtractionTree:
        self.tree = ExtractionTree(image_sha256=root.sha256, artifacts=[root])
        stack = [root]
        if root_extraction is not None:
            stack = list(reversed(self._record(root, root_extraction)))
        try:
            while stack:
                artifact = stack.pop()
                children = self.process(artifact)
                stack.extend(reversed(children))
                if self.progress:
                    self.progress(artifact, self.budget)
        finally:
            self.pool.shutdown(cancel_futures=True)
        self.tree.coverage = self._effective_coverage()
        return self.tree

    def _effective_coverage(self) -> Coverage:
        assert self.tree is not None
        folded: dict[int, Coverage] = {}
        children: dict[int, list[int]] = {}
        for artifact in self.tree.artifacts:
            if artifact.parent is not None:
                children.setdefault(artifact.parent, []).append(artifact.id)
        for artifact in reversed(self.tree.artifacts):
            own = artifact.coverage or Coverage(bytes=artifact.size, unpacked=artifact.size)
            folded[artifact.id] = effective(own, [folded[c] for c in children.get(artifact.id, [])])
        return folded[0]


def _directory_root(directory: Path, walk: _Walk) -> tuple[Artifact, _Extraction]:
    """A firmware folder (a MediaTek scatter release, say) is a container of its files."""
    out = walk.output(0, rooted=False)
    walk.run_extractor(out, lambda: ingest_directory(out, directory), "directory")
    listing = "\n".join(f"{c.sha256} {c.name}" for c in out.children)
    digest = hashlib.sha256(listing.encode()).hexdigest()
    size = sum(c.size for c in out.children)
    root = Artifact(0, None, (directory.name,), digest, size, ArtifactKind.IMAGE, 0, format="directory",
                    description="firmware folder")
    coverage = Coverage(bytes=size, unpacked=size)
    return root, _Extraction("directory", out.children, out.issues, out.notes, coverage, None, {})


def unpack(
    image: Path,
    *,
    store: BlobStore,
    settings: Settings,
    progress: ProgressCallback | None = None,
    name: str | None = None,
    stored_sha256: str | None = None,
) -> ExtractionTree:
    """Build the extraction tree of an image file (or a firmware folder); never raises on bad content.

    ``name`` is the root of every lineage path (default: the file's name); ``stored_sha256`` says the
    image is already in the store under that hash (an ingested original), so it is not copied again.
    Raises ``OSError`` only when the image itself cannot be read.
    """
    image = Path(image)
    size = sum(f.stat().st_size for f in image.rglob("*") if f.is_file() and not f.is_symlink()) \
        if image.is_dir() else os.stat(image).st_size
    budget = Budget(
        max_bytes=settings.limits.total_bytes_for(size),
        max_files=settings.limits.max_files,
        extractor_seconds=settings.limits.extractor_seconds,
    )
    walk = _Walk(store, settings, budget, progress)
    if image.is_dir():
        root, extraction = _directory_root(image, walk)
        return walk.run(root, extraction)
    sha256 = stored_sha256 if stored_sha256 and store.exists(stored_sha256) else store.put_file(image)
    root = Artifact(0, None, (name or image.name,), sha256, size, ArtifactKind.IMAGE, 0)
    return walk.run(root)

