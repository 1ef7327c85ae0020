"""Reporters: ``report.html``, ``results.json``, ``junit.xml``, ``summary.md`` (DESIGN §5).

:func:`write_reports` writes ``<report-dir>/<run-id>/`` and then replaces
``<report-dir>/latest/`` with a copy, through a temporary directory and a rename, so a crash
never leaves a half-written ``latest``. Every string that reaches a report passes through
:func:`mocks.core.redact.redact_text` once more (defence in depth on top of the redaction done
when evidence is captured).
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

FORMATS = ("html", "json", "junit", "md")
_WRITERS: dict[str, tuple[str, Callable[[RunResult], str]]] = {
    "html": ("report.html", render_html),
    "json": ("results.json", render_json),
    "junit": ("junit.xml", render_junit),
    "md": ("summary.md", render_markdown),
}


def new_run_id(now: float) -> str:
    """``20261123-141502-3fa2``: sortable UTC time plus a random suffix against collisions."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


def write_reports(run: RunResult, report_dir: Path, formats: Iterable[str] = FORMATS) -> Path:
    chosen = list(formats)
    unknown = [f for f in chosen if f not in _WRITERS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; valid: {', '.join(FORMATS)}")
    report_dir.mkdir(parents=True, exist_ok=True)
    out = report_dir / run.run_id
    staging = Path(tempfile.mkdtemp(prefix=f".{run.run_id}.", dir=report_dir))
    try:
        for fmt in chosen:
            name, render = _WRITERS[fmt]
            (staging / name).write_text(render(run), encoding="utf-8")
        latest_staging = Path(tempfile.mkdtemp(prefix=".latest.", dir=report_dir))
        shutil.copytree(staging, latest_staging, dirs_exist_ok=True)
        os.replace(staging, out)
        latest = report_dir / "latest"
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        elif latest.exists():
            retired = Path(tempfile.mkdtemp(prefix=".latest-old.", dir=report_dir))
            os.replace(latest, retired / "latest")
            shutil.rmtree(retired, ignore_errors=True)
        os.replace(latest_staging, latest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
