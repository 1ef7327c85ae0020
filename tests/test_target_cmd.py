"""``--broker cmd:<command>``: the harness starts, health-checks, records and stops a broker.

The end-to-end tests start the reference broker as ``python -m broker`` configured only from
the ``HARNESS_*`` variables; the others use a tiny stand-in broker (a stdlib HTTP server
written to a temporary file) whose behaviour each test chooses: exit at once, never become
healthy, ignore SIGTERM, fork a child, print secrets.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from harness import started_target
from harness.cli import main
from harness.process_target import ProcessTarget
from harness.results import Status
from harness.sandbox_env import SandboxFacts, harness_env
from harness.scenario import default_scenario_dir, load_paths
from harness.session import HarnessSession
from harness.targets import TargetError
from mocks import defaults
from mocks.sandbox import Sandbox

PYTHON = shlex.quote(sys.executable)
BROKER = f"cmd:{PYTHON} -m broker"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW5vdC1yZWFs"

#: A stand-in broker: answers 200 at the health path on $HARNESS_BROKER_PORT once started.
#: argv: MODE OUT_DIR; modes combine with "+": env (dump the environment), child (fork a
#: sleeping child, write its pid), stubborn (ignore SIGTERM), secrets (print a JWT and the
#: client secret), die-after-start (exit 7 after the first request).
STAND_IN = textwrap.dedent(
    """
    import http.server, json, os, signal, subprocess, sys, threading
    modes, out = sys.argv[1].split("+"), sys.argv[2]
    if "env" in modes:
        env = {k: v for k, v in os.environ.items() if k.startswith("HARNESS_")}
        json.dump({"env": env, "pid": os.getpid()}, open(os.path.join(out, "env.json"), "w"))
    if "child" in modes:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open(os.path.join(out, "child.pid"), "w").write(str(child.pid))
    if "stubborn" in modes:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "secrets" in modes:
        print("subject token", sys.argv[3], "secret", os.environ["HARNESS_OKTA_CLIENT_SECRET"])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/.well-known/oauth-authorization-server"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")
            if "die-after-start" in modes:
                threading.Thread(target=lambda: os._exit(7)).start()

        def log_message(self, *args):
            pass

    port = int(os.environ["HARNESS_BROKER_PORT"])
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    print("stand-in serving", port, flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return script


def _command(script: Path, mode: str, out: Path, *extra: str) -> str:
    return " ".join(shlex.quote(a) for a in (sys.executable, str(script), mode, str(out), *extra))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


# -- the reference broker as a command ----------------------------------------------------
def test_the_reference_broker_as_a_command_passes_every_scenario_it_can_run() -> None:
    scenarios = load_paths([default_scenario_dir()])
    with HarnessSession(BROKER) as session:
        results = [session.run_scenario(s) for s in scenarios]
    by_id = {r.id: r for r in results}
    clock = [s.id for s in scenarios if "clock" in s.requires]
    assert clock, "the bundled scenarios include clock scenarios"
    for scenario_id in clock:
        (check,) = by_id[scenario_id].checks
        assert (check.id, check.status) == ("CLOCK-01", Status.SKIPPED)
        assert "cannot share the sandbox clock" in check.message
    runnable = [
        r
        for s, r in zip(scenarios, results, strict=True)
        if not ({"clock", "audit"} & set(s.requires)) and not s.broker_settings
    ]
    assert len(runnable) >= 20
    assert {r.id: r.status for r in runnable} == {r.id: Status.PASSED for r in runnable}, {
        r.id: [c.message for c in r.failed_checks()] or r.error
        for r in runnable
        if r.status is not Status.PASSED
    }
    skipped = {c.id for r in results if r.status is Status.SKIPPED for c in r.checks}
    assert skipped <= {"CLOCK-01", "AUDIT-01", "CONFIG-01"}
    # its output is in the report, scenario by scenario, tokens redacted
    isolation = by_id["token-isolation"].target_log
    assert any("broker: serving at" in line for line in isolation)
    assert any("dbc-bbb.cloud.databricks.test" in line for line in isolation)
    assert not any("eyJ" in line for r in results for line in r.target_log)


def test_a_known_bad_broker_started_as_a_command_fails_the_scenarios_that_catch_it() -> None:
    (scenario,) = [s for s in load_paths([default_scenario_dir()]) if s.id == "multi-workspace"]
    with HarnessSession(f"{BROKER} --defect shared-cache") as session:
        result = session.run_scenario(scenario)
    assert result.status is Status.FAILED
    assert {"MW-02", "MW-03"} <= {c.id for c in result.failed_checks()}


def test_the_cli_runs_a_command_broker_and_reports_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    selection = ["-k", "invalid-segment and evil or expiry", "--broker", BROKER]
    code = main(["run", *selection, "--report", "json", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert results["broker"] == BROKER
    assert {s["id"]: s["status"] for s in results["scenarios"]} == {
        "invalid-segment[evil]": "PASSED",
        "expiry": "SKIPPED",
    }


# -- start-up failures ----------------------------------------------------------------------
def test_a_command_that_exits_at_once_is_one_line_with_its_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = f"{PYTHON} -c \"print('broker: bad setting x'); raise SystemExit(4)\""
    code = main(["run", "--broker", f"cmd:{command}", "-k", "expiry"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert "exited with status 4" in err and "broker: bad setting x" in err


def test_the_reference_broker_missing_its_settings_says_which(sandbox: Sandbox) -> None:
    """``python -m broker`` with an empty client id: its one-line configuration error."""
    target = ProcessTarget(f"env HARNESS_OKTA_CLIENT_ID= {PYTHON} -m broker", sandbox)
    with pytest.raises(TargetError) as info:
        target.start()
    assert "exited with status 2" in str(info.value)
    assert "HARNESS_OKTA_CLIENT_ID" in str(info.value)


def test_a_command_that_never_becomes_healthy_times_out_and_is_stopped(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    target = ProcessTarget(
        _command(stand_in, "plain", tmp_path), sandbox, health="/never", timeout=1.0
    )
    with pytest.raises(TargetError) as info:
        target.start()
    message = str(info.value)
    assert "did not answer" in message and "/never" in message and "within 1 s" in message
    assert "HTTP 404" in message and "stand-in serving" in message
    assert target.process is not None and target.process.poll() is not None
    assert not Path(target.state_dir).exists()


def test_an_unknown_program_and_an_empty_command_are_usage_errors(sandbox: Sandbox) -> None:
    with pytest.raises(TargetError, match="cannot be started"):
        ProcessTarget("/nonexistent/broker --port 1", sandbox).start()
    with pytest.raises(TargetError, match="needs a command"):
        ProcessTarget("  ", sandbox)
    with pytest.raises(TargetError, match="cannot split"):
        ProcessTarget("python -c 'unterminated", sandbox)


# -- the contract with the started broker ---------------------------------------------------
def test_the_broker_gets_the_harness_variables_its_port_and_url(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    target = ProcessTarget(_command(stand_in, "env", tmp_path), sandbox).start()
    try:
        seen = json.loads((tmp_path / "env.json").read_text())["env"]
    finally:
        target.stop()
    expected = harness_env(SandboxFacts.of(sandbox), target.url)  # serve --env-file's set
    assert {k: seen[k] for k in expected} == expected
    assert seen["HARNESS_BROKER_PORT"] == str(target.port)
    assert seen["HARNESS_BROKER"] == target.url == f"http://127.0.0.1:{target.port}"
    assert seen["HARNESS_BROKER_STATE_DIR"] == target.state_dir
    assert seen["HARNESS_OKTA_ISSUER"] == sandbox.okta_issuer
    assert not Path(target.state_dir).exists()  # removed at stop


def test_output_is_captured_with_tokens_and_secrets_redacted(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    target = ProcessTarget(_command(stand_in, "secrets", tmp_path, JWT), sandbox).start()
    try:
        lines = target.drain_log()
    finally:
        target.stop()
    text = "\n".join(lines)
    assert "subject token <jwt sha256:" in text and "stand-in serving" in text
    assert JWT not in text and defaults.TEST_CLIENT_SECRET not in text
    assert "secret <redacted len=" in text
    assert target.drain_log() == []  # drained once


def test_stopping_kills_the_process_group_even_a_child(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    target = ProcessTarget(_command(stand_in, "child", tmp_path), sandbox).start()
    child = int((tmp_path / "child.pid").read_text())
    assert target.process is not None
    parent = target.process.pid
    assert _alive(child) and _alive(parent)
    target.stop()
    assert not _alive(parent)
    assert not _alive(child)


def test_a_broker_ignoring_sigterm_is_killed_after_the_grace_period(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(started_target, "STOP_GRACE", 0.5)
    target = ProcessTarget(_command(stand_in, "stubborn", tmp_path), sandbox).start()
    assert target.process is not None
    target.stop()
    assert target.process.returncode == -signal.SIGKILL


def test_a_fresh_broker_per_scenario_unless_restart_is_run(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    def pid() -> int:
        return int(json.loads((tmp_path / "env.json").read_text())["pid"])

    target = ProcessTarget(_command(stand_in, "env", tmp_path), sandbox).start()
    try:
        first, first_dir = pid(), target.state_dir
        target.reset()  # the first scenario runs on the process that was health-checked
        assert pid() == first
        target.reset()  # the next one gets a new process and an empty state directory
        assert pid() != first and not _alive(first)
        assert target.state_dir != first_dir and not Path(first_dir).exists()
        assert target.url == f"http://127.0.0.1:{target.port}"  # same port, same URL
    finally:
        target.stop()
    keep = ProcessTarget(_command(stand_in, "env", tmp_path), sandbox, restart="run").start()
    try:
        first = pid()
        keep.reset()
        keep.reset()
        assert pid() == first
    finally:
        keep.stop()
    with pytest.raises(TargetError, match="--broker-restart"):
        ProcessTarget("true", sandbox, restart="never")


def test_a_broker_that_dies_mid_run_errors_the_next_scenario_then_restarts(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    target = ProcessTarget(_command(stand_in, "env", tmp_path), sandbox, restart="run").start()
    try:
        assert target.process is not None
        os.killpg(target.process.pid, signal.SIGKILL)
        target.process.wait()
        with pytest.raises(TargetError, match=r"exited with status -9; last output: stand-in"):
            target.reset()
        target.reset()  # a new broker for the scenario after
        assert target.process.poll() is None
    finally:
        target.stop()


def test_a_scenario_on_a_dead_broker_is_an_error_not_a_failure(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    from harness.runner import ScenarioRunner

    (scenario,) = [s for s in load_paths([default_scenario_dir()]) if s.id == "token-isolation"]
    target = ProcessTarget(_command(stand_in, "die-after-start", tmp_path), sandbox).start()
    try:
        assert target.process is not None
        target.process.wait(timeout=10)  # the health request made it exit
        result = ScenarioRunner(sandbox, target).run(scenario)
    finally:
        target.stop()
    assert result.status is Status.ERROR
    assert result.error is not None and "exited with status 7" in result.error


def test_the_command_target_cannot_share_the_clock_or_be_configured(
    sandbox: Sandbox, stand_in: Path, tmp_path: Path
) -> None:
    target = ProcessTarget(_command(stand_in, "plain", tmp_path), sandbox)
    assert target.shares_clock is False and target.can_configure is False
    assert target.audit_records() is None
    with pytest.raises(TargetError, match="cannot be reconfigured"):
        target.configure({"exchange_flow": "federated"})
