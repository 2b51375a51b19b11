"""Real parts for realistic samples: Debian binaries for foreign architectures, cross-compiled programs.

Downloaded packages and compiled programs are cached in ``samples/cache`` so
the generator only pays for them once per machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from samples.sample import BuildContext

CROSS = {
    "armhf": "arm-linux-gnueabihf-gcc",
    "mipsel": "mipsel-linux-gnu-gcc",
}


def cross_compile(ctx: BuildContext, source: Path, arch: str, *, static: bool = False,
                  strip: bool = False, name: str | None = None) -> Path:
    """Compile one C file for ``arch`` (armhf or mipsel); cached by source content and options."""
    compiler = CROSS[arch]
    variant = f"{arch}{'-static' if static else ''}{'-stripped' if strip else ''}"
    target = ctx.cache / "bin" / variant / (name or source.stem)
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-Os", "-Wall", "-ffile-prefix-map=" + str(ctx.root) + "=.", "-Wl,--build-id=none"]
    if static:
        flags.append("-static")
    if strip:
        flags.append("-s")
    ctx.run(compiler, *flags, "-o", target, source)
    return target


def debian_package_tree(ctx: BuildContext, arch: str, packages: list[str]) -> Path:
    """Download Debian packages for ``arch`` and unpack them (``dpkg -x``) into one cached tree.

    Needs ``dpkg --add-architecture <arch>`` and ``apt-get update`` first
    (``make samples`` does it).
    """
    tree = ctx.cache / "debian" / arch / "-".join(sorted(packages))
    if (tree / ".done").exists():
        return tree
    downloads = ctx.cache / "debs" / arch
    downloads.mkdir(parents=True, exist_ok=True)
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for package in packages:
        if not list(downloads.glob(f"{package}_*_{arch}.deb")):
            ctx.run("apt-get", "download", f"{package}:{arch}", cwd=downloads)
        deb = sorted(downloads.glob(f"{package}_*_{arch}.deb"))[-1]
        ctx.run("dpkg", "-x", deb, tree)
    (tree / ".done").touch()
    return tree
