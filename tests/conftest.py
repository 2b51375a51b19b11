"""Shared fixtures: an isolated fwtriage home per test, and a one-call unpack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import Limits, Settings
from pipeline.model import ExtractionTree
from pipeline.store import LocalBlobStore
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
