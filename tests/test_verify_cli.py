"""``mcp-harness verify`` end to end (its own issuer, reports, ``--bundle``) and its errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from verify_support import AUDIENCE, USER

from harness.cli import main
from harness.verify.bundle import MANIFEST, elide_secrets, read_bundle, verify_manifest
from mocks.sandbox import Sandbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("archive", ["bundle.zip", "bundle.tar.gz"])
def test_cli_verifies_the_mock_and_writes_a_bundle(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], archive: str
) -> None:
    port = _free_port()
    issuer_url = f"http://127.0.0.1:{port}"
    sandbox.databricks.add_federation_policy("cli", issuer=issuer_url, audiences=[AUDIENCE])
    ws = sandbox.workspace("dbc-aaa")
    code = main(
        [
            "verify",
            f"{ws.url}/oidc/v1/token",
            "--profile",
            "databricks",
            "--issuer-key-dir",
            str(tmp_path / "keys"),
            "--issuer-port",
            str(port),
            "--audience",
            AUDIENCE,
            "--subject",
            USER,
            "--proxy",
            sandbox.proxy_url,
            "--allow-plain-http",
            "--report-dir",
            str(tmp_path / "reports"),
            "--bundle",
            str(tmp_path / archive),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASSED: 64 checks" in out and "(profile databricks)" in out
    results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    assert results["environment"]["mode"] == "verify" and len(results["scenarios"]) == 64
    ht01 = next(s for s in results["scenarios"] if s["id"] == "HT-01")
    assert ht01["status"] == "SKIPPED" and "--allow-plain-http" in ht01["checks"][0]["message"]
    files = read_bundle(tmp_path / archive)
    assert verify_manifest(files) == []
    assert {
        "report/results.json",
        "report/report.html",
        "profile/databricks.yaml",
        "versions.json",
        "command.txt",
        MANIFEST,
    } <= set(files)
    versions = json.loads(files["versions.json"])
    assert versions["harness"] and versions["python"]
    # the manifest really protects the files: a changed byte is reported
    files["report/results.json"] += b" "
    assert verify_manifest(files) == ["report/results.json"]
    assert not list(tmp_path.glob(".bundle*"))  # no temporary file left behind


def test_cli_fails_with_exit_1_and_a_rerun_line(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    sandbox.databricks.add_federation_policy(
        "cli", issuer=f"http://127.0.0.1:{port}", audiences=[AUDIENCE]
    )
    ws = sandbox.workspace("dbc-aaa")
    code = main(
        [
            "verify",
            f"{ws.url}/oidc/v1/token",
            "--profile",
            "generic",
            "--issuer-port",
            str(port),
            "--issuer-key-dir",
            str(tmp_path / "keys"),
            "--audience",
            AUDIENCE,
            "--subject",
            USER,
            "--proxy",
            sandbox.proxy_url,
            "--report-dir",
            str(tmp_path),
            "--report",
            "json",
            "--only",
            "HT-01,TX-02",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED: HT-01" in out
    assert f"rerun: mcp-harness verify {ws.url}/oidc/v1/token --profile generic --only HT-01" in out


def test_cli_baseline_turns_known_deviations_into_expected_failures_and_flags_stale(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A vendor gating releases on verify lists its known deviations; one that is fixed (a
    listed check that now passes) is STALE and fails the run until it is removed."""
    port = _free_port()
    sandbox.databricks.add_federation_policy(
        "cli", issuer=f"http://127.0.0.1:{port}", audiences=[AUDIENCE]
    )
    ws = sandbox.workspace("dbc-aaa")

    def verify(entries: str) -> tuple[int, dict[str, str]]:
        baseline = tmp_path / "expected-failures.yaml"
        baseline.write_text(entries)
        code = main(
            [
                "verify",
                f"{ws.url}/oidc/v1/token",
                "--profile",
                "generic",
                "--issuer-port",
                str(port),
                "--issuer-key-dir",
                str(tmp_path / "keys"),
                "--audience",
                AUDIENCE,
                "--subject",
                USER,
                "--proxy",
                sandbox.proxy_url,
                "--allow-plain-http",
                "--report-dir",
                str(tmp_path / "reports"),
                "--report",
                "json",
                "--only",
                "TX-07,TR-03",
                "--expected-failures",
                str(baseline),
            ]
        )
        capsys.readouterr()
        results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
        return code, {s["id"]: s["status"] for s in results["scenarios"]}

    listed = "- id: TX-07\n  comment: the mock ignores resource (vendor-fidelity)\n"
    code, status = verify(listed)
    assert code == 0 and status["TX-07"] == "EXPECTED_FAILURE" and status["TR-03"] == "PASSED"
    code, status = verify(listed + "- id: TR-03\n  comment: fixed since\n")
    assert code == 1 and status["TR-03"] == "STALE"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "ftp://example.test/token", "--subject-token", "x"], "http(s) URL"),
        (
            ["verify", "http://127.0.0.1:9/t", "--profile", "nope", "--subject-token", "x"],
            "unknown profile",
        ),
        (
            ["verify", "http://127.0.0.1:9/t", "--only", "XX-99", "--subject-token", "x"],
            "unknown check",
        ),
        (
            ["verify", "http://127.0.0.1:9/t", "--bundle", "out.rar", "--subject-token", "x"],
            ".zip or .tar.gz",
        ),
        (
            ["verify", "http://127.0.0.1:9/t", "--client-auth", "post", "--subject-token", "x"],
            "needs --client-id",
        ),
    ],
)
def test_cli_usage_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*argv, "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_secrets_are_elided_from_the_command_line() -> None:
    argv = [
        "verify",
        "https://x/t",
        "--client-secret",
        "s3cret",
        "--subject-token=eyJabc",
        "--client-id",
        "cid",
    ]
    shown = elide_secrets(argv)
    assert "s3cret" not in shown and "--subject-token=<elided>" in shown and "cid" in shown
