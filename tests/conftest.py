"""Shared fixtures: an isolated fwtriage home per test, a one-call unpack, scans of the samples, a
throw-away PostgreSQL database, and ``db``: an empty database of each kind (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, make_url
from sqlalchemy.exc import OperationalError

from pipeline.config import Detection, Limits, Settings
from pipeline.db import Database
from pipeline.ingest import CaseMetadata
from pipeline.model import ExtractionTree
from pipeline.scan import ScanOutcome, ScanRequest, scan_image
from pipeline.store import LocalBlobStore
from pipeline.triage import Triage, triage_tree
from pipeline.unpack import unpack

Unpacker = Callable[..., ExtractionTree]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", limits=Limits())


@pytest.fixture
def store(settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(settings.store_dir)


@pytest.fixture
def run_unpack(settings: Settings, store: LocalBlobStore) -> Unpacker:
    """Unpack a path with the test's settings; ``limits=`` overrides the quotas."""

    def run(image: Path, limits: Limits | None = None) -> ExtractionTree:
        used = settings if limits is None else Settings(home=settings.home, limits=limits)
        return unpack(image, store=store, settings=used)

    return run


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(scope="session")
def manifest() -> dict:
    """The samples' manifest; the samples are built first if they are missing (``make samples``)."""
    manifest_path = SAMPLES / "manifest.json"
    samples = json.loads(manifest_path.read_text())["samples"] if manifest_path.exists() else []
    if not samples or not all((SAMPLES / "out" / s["file"]).exists() for s in samples):
        subprocess.run([sys.executable, "-m", "samples.build"], cwd=SAMPLES.parent, check=True)
        samples = json.loads(manifest_path.read_text())["samples"]
    return {s["file"]: s for s in samples}


@pytest.fixture(scope="session")
def samples_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One fwtriage home shared by every sample of the session."""
    return Settings(home=tmp_path_factory.mktemp("samples-home"), limits=Limits())


@pytest.fixture(scope="session")
def samples_store(samples_settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(samples_settings.store_dir)


@pytest.fixture(scope="session")
def sample_trees(samples_settings: Settings, samples_store: LocalBlobStore) -> Callable[[str], ExtractionTree]:
    """Unpack a bundled sample once per test session (all samples share one store)."""
    trees: dict[str, ExtractionTree] = {}

    def tree_of(file: str) -> ExtractionTree:
        if file not in trees:
            trees[file] = unpack(SAMPLES / "out" / file, store=samples_store, settings=samples_settings)
        return trees[file]

    return tree_of


@pytest.fixture(scope="session")
def sample_triages(sample_trees: Callable[[str], ExtractionTree], samples_store: LocalBlobStore
                   ) -> Callable[[str], Triage]:
    """Analyse and correlate a bundled sample once per test session."""
    results: dict[str, Triage] = {}

    def triage_of(file: str) -> Triage:
        if file not in results:
            results[file] = triage_tree(sample_trees(file), samples_store, Detection())
        return results[file]

    return triage_of


@pytest.fixture(scope="session")
def sample_scans(samples_settings: Settings, samples_store: LocalBlobStore, tmp_path_factory: pytest.TempPathFactory
                 ) -> Callable[[str], ScanOutcome]:
    """``fwtriage scan`` of a bundled sample, once per test session: its report files under a session folder."""
    reports = tmp_path_factory.mktemp("reports")
    outcomes: dict[str, ScanOutcome] = {}

    def scan_of(file: str) -> ScanOutcome:
        if file not in outcomes:
            request = ScanRequest(SAMPLES / "out" / file, CaseMetadata(case="CASE-TEST", exhibit=f"SEAL-{file}",
                                                                      device="test device", examiner="J. Doe"))
            outcomes[file] = scan_image(request, reports / file, store=samples_store, settings=samples_settings,
                                        detection=Detection())
        return outcomes[file]

    return scan_of


POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_postgres() -> Iterator[URL]:
    """A new, empty PostgreSQL database, dropped afterwards; fails (never skips) when the server is unreachable:
    CI starts it (scripts/ensure_services.sh)."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"fwtriage_test_{uuid.uuid4().hex[:12]}"
    unreachable = None
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        unreachable = exc.orig
    if unreachable is not None:
        admin.dispose()
        pytest.fail(f"PostgreSQL is not reachable through {POSTGRES_ADMIN_URL} ({unreachable}); "
                    "start it with scripts/ensure_services.sh", pytrace=False)
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[URL]:
    """A fresh database for this test session, so the tests never touch anyone's data."""
    with fresh_postgres() as url:
        yield url


def empty_postgres(url: URL) -> None:
    """Drop everything a test left in a PostgreSQL database."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """An empty database of each kind; the PostgreSQL one is emptied again after the test."""
    if request.param == "sqlite":
        yield URL.create("sqlite", database=str(tmp_path / "fwtriage.db"))
        return
    url = request.getfixturevalue("postgres_database")
    empty_postgres(url)
    yield url
    empty_postgres(url)


@pytest.fixture
def db(db_url: URL) -> Iterator[Database]:
    with Database(db_url) as database:
        yield database
