"""``--bundle``: one archive a vendor can hand to a customer.

It holds the report files, the profile YAML the run used, the harness and Python versions,
the command line (secrets elided) and ``MANIFEST.sha256`` — ``sha256sum -c`` format, one line
per other file — so the receiver can check nothing was changed. The archive is written to a
temporary file next to its target and renamed, so a reader never sees half an archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import harness
from harness.errors import UsageError
from harness.verify.profiles import Profile

SECRET_FLAGS = ("--client-secret", "--subject-token", "--actor-token")
MANIFEST = "MANIFEST.sha256"


def archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    raise UsageError(f"--bundle {path}: use a .zip or .tar.gz file name")


def elide_secrets(argv: Sequence[str]) -> list[str]:
    """The command line with the values of secret flags replaced by ``<elided>``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("<elided>")
            hide_next = False
            continue
        flag, eq, _ = arg.partition("=")
        if flag in SECRET_FLAGS:
            if eq:
                out.append(f"{flag}=<elided>")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def bundle_files(run_dir: Path, profile: Profile, argv: Sequence[str]) -> dict[str, bytes]:
    """Every file of the archive by its path inside it, the manifest last."""
    files: dict[str, bytes] = {}
    for report in sorted(run_dir.iterdir()):
        if report.is_file():
            files[f"report/{report.name}"] = report.read_bytes()
    if profile.path is not None:
        files[f"profile/{profile.path.name}"] = profile.path.read_bytes()
    versions = {
        "harness": harness.__version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "profile": profile.name,
    }
    files["versions.json"] = (json.dumps(versions, indent=2) + "\n").encode()
    command = " ".join(_quote(a) for a in ["mcp-harness", *elide_secrets(argv)])
    files["command.txt"] = (command + "\n").encode()
    files[MANIFEST] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode()
    return files


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def write_bundle(path: Path, run_dir: Path, profile: Profile, argv: Sequence[str]) -> Path:
    kind = archive_kind(path)
    files = bundle_files(run_dir, profile, argv)
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            if kind == "zip":
                with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
                    for name, data in files.items():
                        archive.writestr(name, data)
            else:
                with tarfile.open(fileobj=handle, mode="w:gz") as archive:
                    for name, data in files.items():
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        info.mtime = int(time.time())
                        info.mode = 0o644
                        archive.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_bundle(path: Path) -> dict[str, bytes]:
    """Every file of a bundle (for tests and receivers that verify it in Python)."""
    if archive_kind(path) == "zip":
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    out: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            if extracted is not None:
                out[member.name] = extracted.read()
    return out


def verify_manifest(files: dict[str, bytes]) -> list[str]:
    """Names whose SHA-256 does not match the manifest, or that it misses or lists extra."""
    listed: dict[str, str] = {}
    for line in files.get(MANIFEST, b"").decode().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = [
        n
        for n, d in listed.items()
        if hashlib.sha256(files.get(n, b"")).hexdigest() != d or n not in files
    ]
    problems += [n for n in files if n != MANIFEST and n not in listed]
    return sorted(set(problems))
