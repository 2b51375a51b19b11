"""Name sanitising and the sandboxed tool runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.unpack.safety import ToolFailed, bubblewrap_available, run_tool, sanitise_member_name


@pytest.mark.parametrize(
    ("raw", "rooted", "expected", "changed"),
    [
        ("bin/busybox", False, "bin/busybox", False),
        ("./etc/init.d/rcS", False, "etc/init.d/rcS", False),
        ("../../etc/passwd", False, "etc/passwd", True),
        ("/etc/shadow", False, "etc/shadow", True),
        ("a/../../b", False, "a/b", True),
        ("..\\..\\windows\\system32", False, "windows/system32", True),
        ("evil\x00name\n", False, "evilname", True),
        ("FDL1:nand\\fdl1.bin", False, "FDL1:nand/fdl1.bin", True),
        ("/system/bin/syncd", True, "/system/bin/syncd", False),
        ("system/bin/syncd", True, "/system/bin/syncd", False),
        ("/../../x", True, "/x", True),
        ("", False, "_unnamed", False),
        (b"caf\xe9", False, "caf\ufffd", True),
    ],
)
def test_sanitise_member_name(raw: str | bytes, rooted: bool, expected: str, changed: bool) -> None:
    result = sanitise_member_name(raw, rooted=rooted)
    assert result.path == expected
    assert result.changed is changed
    assert ".." not in result.path.split("/")


def test_overlong_components_are_capped() -> None:
    result = sanitise_member_name("a" * 1000 + "/b", rooted=False)
    assert result.path == "a" * 255 + "/b"
    assert result.changed


def test_run_tool_cannot_write_outside_its_work_dir(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside.txt"
    result = run_tool(["sh", "-c", f"echo hi > inside.txt; echo x > {outside}; true"], work_dir=work,
                      timeout=20, memory=1 << 30, max_file_size=1 << 20)
    assert (work / "inside.txt").read_text() == "hi\n"
    if bubblewrap_available():
        assert not outside.exists()
        assert result.returncode == 0


def test_run_tool_is_killed_at_its_time_limit(tmp_path: Path) -> None:
    with pytest.raises(ToolFailed, match="killed after"):
        run_tool(["sleep", "30"], work_dir=tmp_path, timeout=0.5, memory=1 << 30, max_file_size=1 << 20)


def test_run_tool_file_size_limit(tmp_path: Path) -> None:
    run_tool(["sh", "-c", "head -c 10000000 /dev/zero > big; true"], work_dir=tmp_path, timeout=20,
             memory=1 << 30, max_file_size=1 << 20)
    assert (tmp_path / "big").stat().st_size <= 1 << 20
