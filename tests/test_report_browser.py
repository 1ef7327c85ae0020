"""``report.html`` in a real headless Chromium: renders, console clean, offline, filters work.

The report is opened from CI artifacts and air-gapped machines, so "self-contained" has to be
proven in a browser, not by grepping the HTML: the page runs under its own Content Security
Policy (``default-src 'none'``), so any external font, script or image would show up both as
a request and as a CSP console error.

Driver: Playwright for Python, launched on Debian's ``/usr/bin/chromium`` (never a
downloaded browser). It is well kept, speaks the DevTools protocol for us, and exposes the
three things this test needs as plain events (console messages, page errors, every request),
with auto-waiting clicks; a hand-written CDP client would need a WebSocket library and our
own protocol plumbing for the same result.

Skipped, with the reason, when Chromium or Playwright is missing; ``HARNESS_REQUIRE_BROWSER=1``
(set in CI) turns that skip into a failure so the check cannot silently disappear.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
SELECTION = "invalid-segment[evil] or invalid-segment[empty] or multi-workspace"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"HARNESS_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    path = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        _unavailable("Chromium is not installed (Debian: apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: a known-bad broker variant fails one scenario, two pass."""
    out = tmp_path_factory.mktemp("browser-report")
    args = ["--broker", "reference:no-segment-check", "-k", SELECTION, "--report", "html"]
    code = main(["run", "-q", *args, "--report-dir", str(out)])
    assert code == 1
    return out / "latest" / "report.html"


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[tuple[Any, dict[str, list[str]]]]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    report: Path = request.getfixturevalue("report")  # only once a browser is there to use it
    seen: dict[str, list[str]] = {"console": [], "errors": [], "requests": [], "blocked": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def block(route: Any) -> None:
                seen["blocked"].append(route.request.url)
                route.abort()

            context.route(re.compile(r"^(?!file:)"), block)
            page = context.new_page()
            page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            yield page, seen
        finally:
            browser.close()


def _visible_statuses(page: Any, selector: str) -> list[str]:
    statuses: list[str] = page.eval_on_selector_all(
        selector,
        "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.status)",
    )
    return statuses


def _save_screenshot(page: Any, tmp_path: Path) -> Path:
    shot = tmp_path / "report-failed-filter.png"
    page.screenshot(path=str(shot), full_page=True)
    kept = ROOT / "reports" / "screenshots" / shot.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, kept)
    print(f"report screenshot: {kept} (and {shot})")
    return kept


def test_report_renders_offline_with_a_clean_console_and_filters(
    page: tuple[Any, dict[str, list[str]]], tmp_path: Path
) -> None:
    page_, seen = page
    assert "FAILED" in page_.title()
    assert page_.locator("h1").inner_text().startswith("MCP broker conformance")
    rows = _visible_statuses(page_, "#matrix tr.row")
    assert sorted(rows) == ["FAILED", "PASSED", "PASSED"]
    assert page_.locator("#matrix tbody.group").count() == 2  # two scenario files

    page_.click('button[data-filter="FAILED"]')
    assert _visible_statuses(page_, "#matrix tr.row") == ["FAILED"]
    cells = _visible_statuses(page_, "#matrix .cell")
    assert cells and set(cells) == {"FAILED"}
    assert set(_visible_statuses(page_, "details.scenario")) == {"FAILED"}
    assert page_.locator('button[data-filter="FAILED"]').get_attribute("aria-pressed") == "true"
    assert page_.locator('button[data-filter="ALL"]').get_attribute("aria-pressed") == "false"
    kept = _save_screenshot(page_, tmp_path)
    assert kept.stat().st_size > 10_000

    page_.click('button[data-filter="PASSED"]')  # a second status adds to the selection
    assert sorted(_visible_statuses(page_, "#matrix tr.row")) == ["FAILED", "PASSED", "PASSED"]
    page_.click('button[data-filter="FAILED"]')  # and clicking again removes it
    assert _visible_statuses(page_, "#matrix tr.row") == ["PASSED", "PASSED"]
    assert page_.locator("#matrix tbody.group:visible").count() == 2
    page_.click('button[data-filter="ALL"]')
    assert len(_visible_statuses(page_, "#matrix tr.row")) == 3

    copy = page_.locator("#failures button.copy, .repro button.copy").first
    copy.click()
    page_.wait_for_function(
        "b => b.textContent !== 'Copy'", arg=copy.element_handle(), timeout=5000
    )
    assert page_.locator("#repro-1").inner_text().startswith("curl ")

    problems = [m for m in seen["console"] if m.split(":", 1)[0] in ("error", "warning")]
    assert problems == [] and seen["errors"] == []
    assert seen["blocked"] == []
    assert seen["requests"] and all(url.startswith("file://") for url in seen["requests"])


def test_the_csp_really_blocks_external_resources(page: tuple[Any, dict[str, list[str]]]) -> None:
    """The test above cannot pass by accident: an external image injected into the page is
    seen by the request monitor and refused by the report's CSP (a console error) before it
    reaches the network."""
    page_, seen = page
    with page_.expect_console_message(lambda m: "Content Security Policy" in m.text) as info:
        page_.evaluate(
            "() => { const i = document.createElement('img');"
            " i.src = 'http://example.invalid/x.png'; document.body.appendChild(i); }"
        )
    assert info.value.type == "error"
    # the request monitor of the test above does see such a request (so it can fail) ...
    assert "http://example.invalid/x.png" in seen["requests"]
    # ... and the CSP stopped it before it reached the network layer
    assert seen["blocked"] == []
