"""Assemble a minimal root filesystem that runs ``python -m broker`` (for ``docker import``).

No base image can be pulled in CI (no registry access), so the image is built from what the
machine already has: the Python interpreter running this script (binary, shared
``libpython``, the standard library with its bytecode but without tests, IDLE, Tk and build
files), the installed
distributions the reference broker needs (the project's runtime requirements, followed
recursively), the ``broker`` package itself, and every shared library ``ldd`` lists for those
binaries. Paths of the interpreter and the system libraries are kept as on the host, so the
interpreter finds its standard library and ``libpython`` through its own rpath without any
patching; the packages go to ``/app/site-packages`` (``PYTHONPATH``).

Usage: ``python docker/rootfs.py ROOT`` (ROOT must not exist yet).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

PROJECT = "mcp-broker-harness"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SITE = Path("/app/site-packages")
#: Standard library parts a broker never imports (they are most of its size).
STDLIB_SKIP = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "site-packages",
    "dist-packages",
}
_LDD_PATH = re.compile(r"(/\S+)")


def _dest(root: Path, path: Path) -> Path:
    return root / str(path).lstrip("/")


def _copy_file(root: Path, src: Path, dest: Path | None = None) -> None:
    target = dest if dest is not None else _dest(root, src)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src.resolve(), target)


def required_distributions() -> list[Distribution]:
    """The project's runtime requirements and theirs, extras followed, test extra not."""
    found: dict[str, Distribution] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[str, frozenset[str]]] = [(PROJECT, frozenset())]
    while pending:
        name, extras = pending.pop()
        key = name.lower().replace("_", "-")
        if (key, extras) in done:
            continue
        done.add((key, extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional dependency that is not installed
        found[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                pending.append((req.name, frozenset(req.extras)))
    found.pop(PROJECT, None)
    return list(found.values())


def copy_distributions(root: Path) -> list[Path]:
    """Every file of the needed distributions, into ``/app/site-packages``; returns the
    host paths of their shared objects (for ``ldd``)."""
    shared: list[Path] = []
    for dist in required_distributions():
        base = Path(str(dist.locate_file("")))
        for file in dist.files or []:
            if ".." in file.parts:
                continue  # console scripts outside site-packages
            src = base / file
            if not src.is_file():
                continue
            _copy_file(root, src, _dest(root, SITE / file))
            if ".so" in src.name:
                shared.append(src)
    return shared


def copy_python(root: Path) -> list[Path]:
    """The interpreter, its standard library and ``libpython``; returns the binaries."""
    executable = Path(os.path.realpath(sys.executable))
    _copy_file(root, executable)
    stdlib = Path(sysconfig.get_paths()["stdlib"])

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n.startswith("config-")}
        if Path(directory) == stdlib:
            skip |= {n for n in names if n in STDLIB_SKIP}
        return skip

    shutil.copytree(stdlib, _dest(root, stdlib), ignore=ignore, symlinks=False)
    binaries = [executable]
    binaries += [p for p in (stdlib / "lib-dynload").glob("*.so")]
    for name in ("python", "python3"):
        link = root / "usr/local/bin" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(executable)
    return binaries


def copy_broker(root: Path) -> None:
    shutil.copytree(
        PROJECT_ROOT / "broker",
        _dest(root, SITE / "broker"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )


def copy_shared_libraries(root: Path, binaries: list[Path], inside: list[Path]) -> None:
    """What ``ldd`` resolves for ``binaries``, at the paths it names (libraries the wheels
    bundle next to themselves are copied with their distribution already)."""
    for binary in binaries:
        output = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, check=False
        ).stdout
        for line in output.splitlines():
            match = _LDD_PATH.search(line.split("=>")[-1])
            if match is None:
                continue
            lib = Path(match.group(1))
            if any(lib.is_relative_to(d) for d in inside) or not lib.exists():
                continue
            _copy_file(root, lib)


def compile_bytecode(root: Path) -> None:
    """Bytecode for everything under ``/app`` (recorded in the image's paths): without it
    every container start compiles the imports again, seconds instead of a fraction."""
    import compileall

    compileall.compile_dir(
        str(_dest(root, SITE)), quiet=1, stripdir=str(root), prependdir="/", workers=0
    )


def build(root: Path) -> None:
    root.mkdir(parents=True)
    binaries = copy_python(root)
    binaries += copy_distributions(root)
    copy_broker(root)
    compile_bytecode(root)
    purelib = Path(sysconfig.get_paths()["purelib"])
    copy_shared_libraries(root, binaries, inside=[purelib])
    tmp = root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/false\n")
    (etc / "group").write_text("root:x:0:\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docker/rootfs.py ROOT")
    build(Path(sys.argv[1]))
