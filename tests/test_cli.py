"""The ``mcp-harness`` CLI end to end: exit codes, one-line errors, reports, env file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from harness.cli import main


def test_validate_reports_file_and_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.scenario.yaml"
    bad.write_text("version: 1\nid: x\nname: x\nrequirements: [BR-03]\nsteps:\n  - fly: {}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6:" in err and "Traceback" not in err


def test_validate_bundled_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert "scenario(s)" in capsys.readouterr().out


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--report", "pdf"]) == 2
    assert "unknown format" in capsys.readouterr().err
    assert main(["run", "-k", "no-such-scenario-anywhere"]) == 2
    assert "no scenario matches" in capsys.readouterr().err
    assert main(["run", "-k", "expiry", "--broker", "reference:nonsense"]) == 2
    err = capsys.readouterr().err
    assert "unknown reference broker defect" in err and "shared-cache" in err
    assert main(["run", "-k", "expiry", "--broker", "ftp:x"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_list_shows_scenarios_and_variants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "invalid-segment[newline]" in out and "reference:stale-tokens" in out


def test_run_writes_every_report_and_latest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "-k", "multi-workspace or isolation", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASSED" in out and "report:" in out
    runs = [p for p in tmp_path.iterdir() if p.name != "latest"]
    assert len(runs) == 1
    for directory in (runs[0], tmp_path / "latest"):
        for name in ("report.html", "results.json", "junit.xml", "summary.md"):
            assert (directory / name).is_file(), name
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert results["summary"]["PASSED"] == 2
    assert {s["id"] for s in results["scenarios"]} == {"multi-workspace", "token-isolation"}
    assert all(c["status"] == "PASSED" for s in results["scenarios"] for c in s["checks"])
    ET.parse(tmp_path / "latest" / "junit.xml")


def test_run_against_a_known_bad_broker_exits_1_and_names_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "-k",
            "multi-workspace",
            "--broker",
            "reference:leak-id-token",
            "--report-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert (
        "MW-01" in out
        and "rerun: mcp-harness run -k multi-workspace --broker reference:leak-id-token" in out
    )
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    failed = {c["id"] for s in results["scenarios"] for c in s["checks"] if c["status"] == "FAILED"}
    assert "MW-01" in failed


def test_serve_writes_env_file_and_answers(tmp_path: Path) -> None:
    env_file = tmp_path / "harness.env"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # the env file is written before "Press Ctrl+C"
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        expected = {
            "HARNESS_PROXY",
            "HARNESS_ADMIN",
            "HARNESS_OKTA_ISSUER",
            "HARNESS_OKTA_CLIENT_ID",
            "HARNESS_OKTA_CLIENT_SECRET",
            "HARNESS_USERS",
            "HARNESS_USER_PASSWORD",
            "HARNESS_DATABRICKS_WORKSPACES",
            "HARNESS_DATABRICKS_ACCOUNT_HOST",
            "HARNESS_DATABRICKS_ACCOUNT_ID",
            "HARNESS_SNOWFLAKE_ACCOUNTS",
            "HARNESS_BROKER",
        }
        assert set(values) == expected
        assert values["HARNESS_USERS"] == "alice@example.com,bob@example.com"
        assert httpx.get(values["HARNESS_ADMIN"] + "/health").json()["status"] == "ok"
        meta = httpx.get(values["HARNESS_BROKER"] + "/.well-known/oauth-authorization-server")
        assert meta.status_code == 200
        with httpx.Client(proxy=values["HARNESS_PROXY"], trust_env=False) as client:
            doc = client.get(values["HARNESS_OKTA_ISSUER"] + "/.well-known/openid-configuration")
            assert doc.json()["issuer"] == values["HARNESS_OKTA_ISSUER"]
            for workspace in values["HARNESS_DATABRICKS_WORKSPACES"].split(","):
                assert client.get(workspace + "/.well-known/databricks-config").status_code == 200
            account = values["HARNESS_DATABRICKS_ACCOUNT_HOST"]
            oidc = f"{account}/oidc/accounts/{values['HARNESS_DATABRICKS_ACCOUNT_ID']}"
            assert client.get(oidc + "/.well-known/oauth-authorization-server").status_code == 200
            snowflake = values["HARNESS_SNOWFLAKE_ACCOUNTS"]
            assert snowflake == "http://myorg-acct1.snowflakecomputing.test"
            login = client.post(snowflake + "/session/v1/login-request", json={"data": {}})
            assert login.status_code == 200 and login.json()["success"] is False
        assert values["HARNESS_OKTA_CLIENT_SECRET"] not in "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for process exit, not for token expiry
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")
