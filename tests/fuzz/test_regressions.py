"""Regressions: each test pins one bug the fuzzers (or their seeds) found, with its minimised input.

Every input goes through ``fuzz.targets.run_format``, so the fuzzing
property (documented errors only, confined, within budget) is checked too.
"""

from __future__ import annotations

import brotli

from fuzz import seeds
from fuzz.targets import LIMITS, run_format
from pipeline.model import IssueKind
from pipeline.unpack.formats.android_boot import AndroidBoot
from pipeline.unpack.formats.android_ota import AndroidOta

TRANSFER_LIST = "system.transfer.list"


def test_invalid_brotli_new_data_is_a_member_failure_not_a_brotli_error() -> None:
    """Bug: ``brotli.error`` (not a ValueError) escaped BrotliReader, so the walker's catch-all recorded
    the whole transfer list as unparsable instead of the rebuilt image as a failed member."""
    out = run_format(AndroidOta, b"1\n\nnew 2,0,1", TRANSFER_LIST, {"system.new.dat.br": b"\xff"})

    assert out.children == []
    [issue] = out.issues
    assert (issue.member, issue.kind) == ("system.img", IssueKind.FAILURE)
    assert "not valid brotli" in issue.error


def test_vendor_boot_header_spanning_two_pages_is_skipped_whole() -> None:
    """Bug: the 2128-byte vendor boot v4 header was taken to fill one 2048-byte page, so every region was read
    one page early and the ramdisk fragment table was rejected as lying outside the ramdisk."""
    vendor_boot = seeds.boot_seeds()[2].data  # page size 2048: the header takes pages 0 and 1

    out = run_format(AndroidBoot, vendor_boot, "vendor_boot.img")

    assert out.issues == []
    children = {child.name: child.offset for child in out.children}
    assert children == {"vendor_ramdisk_platform": 4096, "vendor_ramdisk_recovery": 4196, "dtb": 6144,
                        "bootconfig": 10240}
    assert vendor_boot[6144:6148] == b"\xd0\x0d\xfe\xed"


def test_out_of_order_brotli_data_beyond_the_quota_is_refused_before_spooling() -> None:
    """Bug: out-of-order brotli new data was spooled to a scratch file up to 4 GiB whatever the image's quota
    (the scratch file is not counted in it): a few kilobytes of brotli filled the disk before the quota
    stopped the image. Now it is refused, as a limit, when it cannot fit in what the quota has left."""
    blocks = LIMITS.total_bytes_floor // seeds.OTA_BLOCK + 1
    half = blocks // 2
    transfer_list = f"4\n{blocks}\n0\n0\nnew 2,{half},{blocks}\nnew 2,0,{half}\n".encode()
    zeros = brotli.compress(bytes(blocks * seeds.OTA_BLOCK), quality=1)

    out = run_format(AndroidOta, transfer_list, TRANSFER_LIST, {"system.new.dat.br": zeros})

    assert out.children == []
    [issue] = out.issues
    assert issue.kind is IssueKind.LIMIT and "scratch file" in issue.error
