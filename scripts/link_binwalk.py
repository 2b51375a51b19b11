"""Make Debian's binwalk (its Python module in /usr/lib/python3/dist-packages) importable in the venv.

binwalk on PyPI is an empty placeholder. Linking only the ``binwalk`` package
and its egg-info (not the whole dist-packages folder) keeps Debian's other
Python packages out of our environment.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

DIST = Path("/usr/lib/python3/dist-packages")


def main() -> int:
    target = Path(site.getsitepackages()[0])
    sources = [DIST / "binwalk", *sorted(DIST.glob("binwalk-*.egg-info"))]
    if not sources[0].is_dir():
        print("binwalk is not installed: apt-get install binwalk", file=sys.stderr)
        return 1
    for source in sources:
        link = target / source.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
    print(f"binwalk linked into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
