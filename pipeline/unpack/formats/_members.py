"""Helpers shared by the archive formats that carry Unix modes (zip, cpio): what a member is."""

from __future__ import annotations

import stat

MAX_LINK_TARGET = 4096  # PATH_MAX: a longer symlink target is not a real one


def special_kind(mode: int) -> str | None:
    """The kind of a device node, FIFO or socket mode (as a reviewer reads it), None for anything else."""
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return None


class LinkTarget:
    """A writer that collects a symlink target stored as member data, refusing implausibly long ones."""

    def __init__(self) -> None:
        self.value = bytearray()

    def write(self, data: bytes) -> None:
        self.value += data
        if len(self.value) > MAX_LINK_TARGET:
            raise ValueError(f"symlink target longer than {MAX_LINK_TARGET} bytes")
