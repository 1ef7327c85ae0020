"""Reporters: ``report.html``, ``results.json``, ``junit.xml``, ``summary.md`` (DESIGN §5).

:func:`write_reports` renders every chosen format in memory first (so a reporter bug never
leaves a partial run directory), writes them into a hidden staging directory, renames that to
``<report-dir>/<run-id>/`` and then swaps in a fresh copy as ``<report-dir>/latest/``. A plain
copy rather than a symlink, because CI artifact uploaders and Windows checkouts handle
symlinked directories badly. Every string that reaches a report passes through
:func:`mocks.core.redact.redact_text` once more: evidence is redacted when it is captured, and
this second pass means a capture bug still cannot put a whole token into a report.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from harness.reporting.html import render_html
from harness.reporting.json_report import render_json
from harness.reporting.junit import render_junit
from harness.reporting.markdown import render_markdown
from harness.results import RunResult

__all__ = ["FILENAMES", "FORMATS", "new_run_id", "parse_formats", "write_reports"]

FORMATS = ("html", "json", "junit", "md")
#: File each format is written to inside the run directory.
FILENAMES = {
    "html": "report.html",
    "json": "results.json",
    "junit": "junit.xml",
    "md": "summary.md",
}
_RENDERERS: dict[str, Callable[[RunResult], str]] = {
    "html": render_html,
    "json": render_json,
    "junit": render_junit,
    "md": render_markdown,
}
LATEST = "latest"


def parse_formats(spec: str) -> list[str]:
    """``--report html,json`` as a list; an unknown or empty choice is a usage error (exit 2)."""
    from harness.errors import UsageError

    chosen = [f.strip() for f in spec.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise UsageError(
            f"--report: unknown format(s) {', '.join(unknown) or '(none)'}; use {','.join(FORMATS)}"
        )
    return chosen


def new_run_id(now: float) -> str:
    """``20261123-141502-3fa2``: sorts by UTC start time; the random suffix keeps two runs
    started in the same second (parallel CI jobs sharing a report dir) apart."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


def _check_run_id(run_id: str) -> None:
    """The run id becomes a directory name next to ``latest`` and the staging directories."""
    if (
        not run_id
        or run_id == LATEST
        or run_id.startswith(".")
        or any(sep in run_id for sep in ("/", "\\", os.sep))
    ):
        raise ValueError(f"run id {run_id!r} cannot be used as a report directory name")


def _mkstage(parent: Path, prefix: str) -> Path:
    """A hidden staging directory on the same filesystem as its target, so rename is atomic.

    ``mkdtemp`` creates it ``0700``; reports are meant to be read by others (CI artifact
    servers, a colleague's browser), so it is opened up like a normal directory.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    return path


def _replace_dir(source: Path, target: Path, parent: Path) -> None:
    """Move ``source`` to ``target``, retiring whatever is there first.

    POSIX cannot atomically swap two non-empty directories, so the old one is first renamed
    aside: ``target`` is then briefly absent, but it is never half-written.
    """
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old.", dir=parent))
        os.replace(target, retired / target.name)
        shutil.rmtree(retired, ignore_errors=True)
    os.replace(source, target)


def write_reports(run: RunResult, report_dir: Path, formats: Iterable[str] = FORMATS) -> Path:
    """Write the chosen formats to ``report_dir/<run_id>/``, refresh ``latest/``; return the
    run directory. Unknown formats raise :class:`ValueError` before anything is written."""
    chosen = list(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in _RENDERERS]
    if unknown:
        raise ValueError(
            f"unknown report format(s) {', '.join(map(repr, unknown))}; valid: {', '.join(FORMATS)}"
        )
    _check_run_id(run.run_id)
    rendered = {FILENAMES[fmt]: _RENDERERS[fmt](run) for fmt in chosen}

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    out = report_dir / run.run_id
    staging = _mkstage(report_dir, f".{run.run_id}.")
    latest_staging: Path | None = None
    try:
        for name, text in rendered.items():
            (staging / name).write_text(text, encoding="utf-8")
        latest_staging = _mkstage(report_dir, f".{LATEST}.")
        shutil.copytree(staging, latest_staging, dirs_exist_ok=True)
        _replace_dir(staging, out, report_dir)
        _replace_dir(latest_staging, report_dir / LATEST, report_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if latest_staging is not None:
            shutil.rmtree(latest_staging, ignore_errors=True)
    return out
