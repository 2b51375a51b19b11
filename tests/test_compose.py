"""The container deployment (Dockerfile, docker-compose.yml) keeps the promises the distributed mode relies on.

docker-compose.yml is read twice. ``docker compose config`` is the authority: it validates the file against
the Compose specification, merges the anchors and interpolates variables, with no engine needed; where the
compose plugin is missing those cases skip. The file read as plain YAML (merge keys resolved) runs the same
checks on any machine. The file is written in the long forms (list commands, mapping environments, long
volume syntax), so both readings have the same shape; only networks differ (a list here, a mapping there).

The image cannot be built by the tests (no engine is assumed), so the Dockerfile is checked for what can go
wrong without one: its base, and that every Debian package it installs is one the Makefile already relies
on or a documented build or runtime need.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"

QUEUES = ("unpack", "analyze", "report")
WORKERS = tuple(f"worker-{queue}" for queue in QUEUES)
OUR_IMAGE = (*WORKERS, "cli")  # the services that run the fwtriage image and share its settings
SHARED_ENV = ("FWTRIAGE_HOME", "FWTRIAGE_BROKER_URL", "FWTRIAGE_RESULT_BACKEND", "FWTRIAGE_DB_URL")

# Packages the image installs that the Makefile's APT_PACKAGES does not list, and why the image needs them.
NOT_IN_MAKEFILE = {
    "python3": "the interpreter: the Makefile takes the machine's python3 as given",
    "python3-venv": "creates the image's venv (the Makefile's machine has it with its python3)",
    "libc6-dev": "C headers for building python-lzo; gcc only recommends it and the image skips recommends",
    "liblzo2-2": "the shared library python-lzo links, without the liblzo2-dev headers",
}


def _compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) when it works, else Debian's ``docker-compose`` (1.29), else None."""
    if shutil.which("docker") is not None:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.fixture(scope="module", params=["docker compose config", "plain yaml"])
def compose(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "plain yaml":
        return yaml.safe_load(COMPOSE.read_text())
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is available")
    result = subprocess.run([*command, "-f", str(COMPOSE), "--profile", "tools", "config"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)  # the normalised file, in YAML (a superset of JSON) for both versions


def _networks(service: dict[str, Any]) -> set[str]:
    """A service's networks, whether written as a list or normalised to a mapping."""
    return set(service.get("networks") or ())


def _store_mount(service: dict[str, Any]) -> dict[str, Any]:
    mounts = [m for m in service.get("volumes", []) if m.get("type") == "volume" and m.get("source") == "store"]
    assert len(mounts) == 1, f"expected one mount of the store volume, got {mounts}"
    return mounts[0]


def _queues(command: list[str]) -> list[str]:
    """The queues a ``fwtriage worker`` command line consumes (``--queues a,b`` or ``--queues=a,b``)."""
    for index, arg in enumerate(command):
        if arg == "--queues":
            return command[index + 1].split(",")
        if arg.startswith("--queues="):
            return arg.partition("=")[2].split(",")
    return []


def test_every_service_of_the_deployment_is_defined(compose: dict[str, Any]) -> None:
    assert {"redis", "postgres", *WORKERS, "api", "flower", "cli"} <= set(compose["services"])


def test_each_worker_consumes_exactly_its_queue(compose: dict[str, Any]) -> None:
    services = compose["services"]
    workers = {name: s for name, s in services.items() if s.get("command", [])[:2] == ["fwtriage", "worker"]}
    assert set(workers) == set(WORKERS)
    for queue in QUEUES:
        assert _queues(workers[f"worker-{queue}"]["command"]) == [queue]


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    started_by_up = {name: s for name, s in compose["services"].items() if not s.get("profiles")}
    assert set(started_by_up) >= {"redis", "postgres", *WORKERS, "flower"}
    for name, service in started_by_up.items():
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), name
        assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_our_containers_start_after_healthy_redis_and_postgres(compose: dict[str, Any]) -> None:
    for name in OUR_IMAGE:
        depends = compose["services"][name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert compose["services"]["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_workers_and_cli_share_one_store_and_the_same_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    targets = {name: _store_mount(services[name])["target"] for name in OUR_IMAGE}
    assert len(set(targets.values())) == 1, targets
    for name in OUR_IMAGE:
        assert services[name]["environment"]["FWTRIAGE_HOME"] == targets[name], name
    for variable in SHARED_ENV:
        values = {services[name]["environment"][variable] for name in OUR_IMAGE}
        assert len(values) == 1, f"{variable} differs between services: {values}"
    environment = services["cli"]["environment"]
    assert urlsplit(environment["FWTRIAGE_BROKER_URL"]).hostname == "redis"
    assert urlsplit(environment["FWTRIAGE_RESULT_BACKEND"]).hostname == "redis"
    db = urlsplit(environment["FWTRIAGE_DB_URL"])
    assert (db.scheme, db.hostname, db.path) == ("postgresql", "postgres", "/fwtriage")
    assert environment["FWTRIAGE_BROKER_URL"] in services["flower"]["command"], "flower watches another broker"


def test_no_service_pins_a_container_name(compose: dict[str, Any]) -> None:
    """A fixed name would make `docker compose up --scale worker-analyze=8` fail on the second replica."""
    assert [name for name, s in compose["services"].items() if "container_name" in s] == []


def test_named_volumes_are_declared_and_postgres_keeps_its_data(compose: dict[str, Any]) -> None:
    assert {"store", "pgdata"} <= set(compose["volumes"])
    mounts = compose["services"]["postgres"]["volumes"]
    assert {"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"}.items() <= mounts[0].items()


def test_containers_opening_images_have_no_route_out(compose: dict[str, Any]) -> None:
    """Seized firmware is hostile: what unpacks and analyses it sits on internal networks and publishes nothing."""
    for name in OUR_IMAGE:
        service = compose["services"][name]
        assert _networks(service), name
        for network in _networks(service):
            assert (compose["networks"][network] or {}).get("internal") is True, f"{name} on {network}"
        assert "ports" not in service, name


def test_the_api_queues_to_the_workers_on_the_shared_store_and_listens_on_loopback(compose: dict[str, Any]) -> None:
    """The API receives images but opens none (the workers do): it may publish its port, on 127.0.0.1 only."""
    services = compose["services"]
    api = services["api"]
    assert api["command"][:2] == ["fwtriage", "serve"]
    assert api["environment"]["FWTRIAGE_DISPATCH"] == "fleet"
    assert _store_mount(api)["target"] == api["environment"]["FWTRIAGE_HOME"]
    for variable in SHARED_ENV:
        assert api["environment"][variable] == services["worker-unpack"]["environment"][variable], variable
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    [port] = api["ports"]
    assert (port["host_ip"], str(port["target"])) == ("127.0.0.1", "8000") if isinstance(port, dict) \
        else port.startswith("127.0.0.1:")
    assert api["read_only"] is True and api["cap_drop"] == ["ALL"]


def test_cli_is_a_tool_with_the_images_read_only(compose: dict[str, Any]) -> None:
    cli = compose["services"]["cli"]
    assert cli["profiles"] == ["tools"]
    images = [m for m in cli["volumes"] if m.get("target") == "/images"]
    assert len(images) == 1 and images[0].get("read_only") is True


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined and comment lines dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _apt_packages(stage: list[tuple[str, str]]) -> set[str]:
    packages: set[str] = set()
    for keyword, arguments in stage:
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", arguments):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                packages.update(word for word in words[2:] if not word.startswith("-"))
    return packages


def _makefile_apt_packages() -> set[str]:
    text = re.sub(r"\\\n", " ", MAKEFILE.read_text())
    match = re.search(r"^APT_PACKAGES\s*:?=(.*)$", text, re.MULTILINE)
    assert match, "the Makefile no longer defines APT_PACKAGES"
    return set(match.group(1).split())


def test_every_stage_is_debian_bookworm() -> None:
    bases = [arguments.split()[0] for keyword, arguments in _dockerfile_instructions() if keyword == "FROM"]
    assert bases, "no FROM in the Dockerfile"
    for base in bases:
        assert re.fullmatch(r"[\w./-]+:[\w.-]*bookworm[\w.-]*", base), base


def test_every_apt_package_is_one_the_project_already_relies_on() -> None:
    installed = set().union(*(_apt_packages(stage) for stage in _stages()))
    assert "binwalk" in installed
    unexplained = installed - _makefile_apt_packages() - set(NOT_IN_MAKEFILE)
    assert unexplained == set(), "add these to the Makefile's APT_PACKAGES or to NOT_IN_MAKEFILE with a reason"


def test_the_runtime_image_has_no_compiler_or_sample_toolchain() -> None:
    runtime = _apt_packages(_stages()[-1])
    assert runtime, "the final stage installs nothing"
    banned = {"gcc", "chromium", "default-jre-headless", "libsmali-java", "python3-dev"}
    assert runtime & banned == set()
    assert [p for p in runtime if p.endswith("-dev") or "-cross" in p or p.startswith("gcc-")] == []


def test_the_build_context_holds_everything_the_dockerfile_copies() -> None:
    """The .dockerignore is a whitelist: a source missing from it fails the build only where it is built."""
    allowed = {line[1:] for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    sources = []
    for keyword, arguments in _dockerfile_instructions():
        words = arguments.split()
        if keyword == "COPY" and not any(word.startswith("--from=") for word in words):
            sources += [word for word in words[:-1] if not word.startswith("--")]
        sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", arguments)
    assert sources, "the Dockerfile copies nothing from the context"
    assert [source for source in sources if source.rstrip("/") not in allowed] == []
