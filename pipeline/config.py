"""One Settings object, read from FWTRIAGE_* environment variables.

Every limit that protects a worker from a hostile image lives here, with a
default sane for a laptop, so a lab can tune it without touching code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1 << 30
MIB = 1 << 20


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Limits:
    """Quotas that bound one image's extraction; hitting one is recorded, never fatal."""

    max_depth: int = 16
    max_files: int = 200_000
    total_bytes_factor: int = 8  # total extracted bytes may reach this many times the image...
    total_bytes_floor: int = GIB  # ...or this, whichever is larger
    max_ratio: float = 200.0  # per-member expansion ratio beyond which a member is a bomb...
    ratio_floor: int = 64 * MIB  # ...once it has produced at least this many bytes
    extractor_seconds: float = 300.0  # wall time of one extractor on one container
    max_carves: int = 512  # carved chunks per container (signature floods)
    tool_memory: int = 2 * GIB  # address-space rlimit of external tools

    def total_bytes_for(self, image_size: int) -> int:
        return max(self.total_bytes_factor * image_size, self.total_bytes_floor)

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            max_depth=_env_int("FWTRIAGE_MAX_DEPTH", d.max_depth),
            max_files=_env_int("FWTRIAGE_MAX_FILES", d.max_files),
            total_bytes_factor=_env_int("FWTRIAGE_TOTAL_BYTES_FACTOR", d.total_bytes_factor),
            total_bytes_floor=_env_int("FWTRIAGE_TOTAL_BYTES_FLOOR", d.total_bytes_floor),
            max_ratio=_env_float("FWTRIAGE_MAX_RATIO", d.max_ratio),
            ratio_floor=_env_int("FWTRIAGE_RATIO_FLOOR", d.ratio_floor),
            extractor_seconds=_env_float("FWTRIAGE_EXTRACTOR_SECONDS", d.extractor_seconds),
            max_carves=_env_int("FWTRIAGE_MAX_CARVES", d.max_carves),
            tool_memory=_env_int("FWTRIAGE_TOOL_MEMORY", d.tool_memory),
        )


ISOLATIONS = ("subprocess", "in-process")


@dataclass(frozen=True)
class Isolation:
    """How one image's readers are kept from hurting the worker that runs them (``FWTRIAGE_ISOLATION`` and
    ``FWTRIAGE_READER_*``).

    ``subprocess`` (the default) unpacks each image in a child process bounded by ``memory`` (address space;
    never below ``Limits.tool_memory``, which the external tools it starts inherit as a ceiling), ``cpu_seconds``
    and ``wall_seconds``: a reader that allocates without end, crashes in C or never returns kills that child,
    and the worker records why in the report. ``in-process`` unpacks in the worker itself, for stepping through
    a reader in a debugger. The wall-clock default stays under the fleet's unpack task limit, so the child is
    stopped and the reason recorded before Celery would stop the task. Neither mode changes what a tree holds,
    which is why the isolation is no part of the extraction's configuration digest.
    """

    mode: str = "subprocess"
    memory: int = 4 * GIB
    cpu_seconds: int = 3000
    wall_seconds: float = 3000.0

    @property
    def in_process(self) -> bool:
        return self.mode == "in-process"

    @classmethod
    def from_env(cls) -> Isolation:
        d = cls()
        return cls(
            mode=_env_choice("FWTRIAGE_ISOLATION", ISOLATIONS, d.mode),
            memory=_env_int("FWTRIAGE_READER_MEMORY", d.memory),
            cpu_seconds=_env_int("FWTRIAGE_READER_CPU_SECONDS", d.cpu_seconds),
            wall_seconds=_env_float("FWTRIAGE_READER_SECONDS", d.wall_seconds),
        )


RULES_DIR = Path(__file__).resolve().parents[1] / "rules"


def _env_paths(name: str) -> tuple[Path, ...]:
    raw = os.environ.get(name, "")
    return tuple(Path(part).absolute() for part in raw.split(os.pathsep) if part)


@dataclass(frozen=True)
class Detection:
    """What the analyzers load once per process: rules and offline reference data.

    ``extra_rules`` are third-party YARA folders or files (``FWTRIAGE_RULES_PATH``,
    separated by ``:``), each compiled in its own namespace beside ours;
    ``geoip_db`` a MaxMind ``.mmdb`` (``FWTRIAGE_GEOIP_DB``), else the
    database shipped in the geoip2fast package is used. Nothing is ever
    looked up on the network.
    """

    rules_dir: Path = RULES_DIR
    extra_rules: tuple[Path, ...] = ()
    geoip_db: Path | None = None

    @property
    def behaviours_dir(self) -> Path:
        return self.rules_dir / "behaviours"

    @property
    def well_known_endpoints(self) -> Path:
        return self.rules_dir / "well-known-endpoints.yml"

    @classmethod
    def from_env(cls) -> Detection:
        geoip = os.environ.get("FWTRIAGE_GEOIP_DB")
        return cls(
            rules_dir=Path(os.environ.get("FWTRIAGE_RULES_DIR") or RULES_DIR).absolute(),
            extra_rules=_env_paths("FWTRIAGE_RULES_PATH"),
            geoip_db=Path(geoip).absolute() if geoip else None,
        )


@dataclass(frozen=True)
class Settings:
    """Where fwtriage keeps its data and how far it lets an image go."""

    home: Path = field(default_factory=lambda: Path("fwtriage-data"))
    limits: Limits = field(default_factory=Limits)
    db_url: str | None = None  # FWTRIAGE_DB_URL (PostgreSQL in a deployment); None: SQLite under home
    isolation: Isolation = field(default_factory=Isolation)

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            home=Path(os.environ.get("FWTRIAGE_HOME", "fwtriage-data")).absolute(),
            limits=Limits.from_env(),
            db_url=os.environ.get("FWTRIAGE_DB_URL") or None,
            isolation=Isolation.from_env(),
        )


@dataclass(frozen=True)
class Fleet:
    """How the distributed deployment reaches its broker and cuts its work (``FWTRIAGE_*`` variables).

    ``visibility_timeout`` is how long Redis waits before handing a task whose worker vanished to another
    worker; it must exceed the longest hard time limit below, or a task still running would be handed out
    twice. Each task's soft limit is the given number of seconds, its hard limit a grace minute later.
    """

    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str = "redis://127.0.0.1:6379/1"
    visibility_timeout: int = 7200
    batch_files: int = 256
    batch_bytes: int = 256 * MIB
    unpack_seconds: float = 3600.0
    analyze_seconds: float = 900.0
    report_seconds: float = 900.0
    retries: int = 5  # transient errors (database, broker unreachable) are retried this often, backing off

    @classmethod
    def from_env(cls) -> Fleet:
        d = cls()
        return cls(
            broker_url=os.environ.get("FWTRIAGE_BROKER_URL") or d.broker_url,
            result_backend=os.environ.get("FWTRIAGE_RESULT_BACKEND") or d.result_backend,
            visibility_timeout=_env_int("FWTRIAGE_VISIBILITY_TIMEOUT", d.visibility_timeout),
            batch_files=_env_int("FWTRIAGE_BATCH_FILES", d.batch_files),
            batch_bytes=_env_int("FWTRIAGE_BATCH_BYTES", d.batch_bytes),
            unpack_seconds=_env_float("FWTRIAGE_UNPACK_SECONDS", d.unpack_seconds),
            analyze_seconds=_env_float("FWTRIAGE_ANALYZE_SECONDS", d.analyze_seconds),
            report_seconds=_env_float("FWTRIAGE_REPORT_SECONDS", d.report_seconds),
            retries=_env_int("FWTRIAGE_TASK_RETRIES", d.retries),
        )


DISPATCHES = ("local", "fleet")


@dataclass(frozen=True)
class Service:
    """The HTTP service's settings (``fwtriage serve``).

    ``dispatch``: ``local`` triages in the service's own process (a laptop, no broker), ``fleet`` queues to the
    Celery workers. ``max_upload_bytes`` bounds each uploaded file; the bytes beyond it are never written.
    ``secure_cookies`` marks the session cookie HTTPS-only: on behind a TLS proxy, off for a loopback laptop.
    """

    dispatch: str = "local"
    max_upload_bytes: int = 16 * GIB
    max_files_per_upload: int = 64
    session_hours: float = 10.0
    secure_cookies: bool = False

    @classmethod
    def from_env(cls) -> Service:
        d = cls()
        return cls(
            dispatch=_env_choice("FWTRIAGE_DISPATCH", DISPATCHES, d.dispatch),
            max_upload_bytes=_env_int("FWTRIAGE_MAX_UPLOAD_BYTES", d.max_upload_bytes),
            max_files_per_upload=_env_int("FWTRIAGE_MAX_UPLOAD_FILES", d.max_files_per_upload),
            session_hours=_env_float("FWTRIAGE_SESSION_HOURS", d.session_hours),
            secure_cookies=os.environ.get("FWTRIAGE_SECURE_COOKIES", "") in ("1", "true", "yes"),
        )
