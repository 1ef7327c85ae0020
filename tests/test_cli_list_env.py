"""``mcp-harness list``, ``validate`` and ``env``: sections and known ids, every error with
file:line, the HARNESS_* values in each format, and rendered broker configs that the
reference broker really starts with (``--check-config``, and a scenario run against it)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from harness.cli import main
from harness.envcmd import format_values
from harness.sandbox_env import DEFAULT_SANDBOX_PORT, SandboxFacts, harness_env
from mocks.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
HEAD = "version: 1\nid: sample\nname: A sample\nrequirements: [BR-03]\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- list --------------------------------------------------------------------------------------
def test_list_shows_every_section_with_known_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for heading in (
        "Scenarios (",
        "Checks made by scenarios (",
        "Checks of the verify catalog (",
        "Verify profiles:",
        "Brokers and reference broker variants",
        "Mock STS known-bad variants (selftest):",
    ):
        assert heading in out, heading
    assert "invalid-segment[newline]" in out and "multi-workspace" in out
    assert "scenarios/multi-workspace.scenario.yaml:3" in out  # file:line of the scenario
    assert "MW-01" in out and "FLOW-01" in out  # a scenario check, a runner check
    assert "TX-02" in out and "generic" in out  # the verify catalog and its profiles
    assert "reference:shared-cache" in out and "accepts-expired" in out
    assert "(not available)" not in out


def test_list_one_section_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "checks", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"checks"}
    by_id = {row["id"]: row for row in data["checks"]["scenario"]}
    assert by_id["MW-01"]["scenarios"] == ["multi-workspace"]
    assert by_id["MW-01"]["requirement"] == "BR-03" and by_id["MW-01"]["level"] == "MUST"
    # checks of fragments count as the including scenario's (audit-chain uses login.yaml)
    assert "AUD-01" in by_id and by_id["AUD-01"]["scenarios"] == ["audit-chain"]
    catalog = {row["id"]: row for row in data["checks"]["catalog"]}
    assert {"id", "level", "area", "title"} <= set(catalog["TX-02"])
    assert main(["list", "variants", "--json"]) == 0
    variants = json.loads(capsys.readouterr().out)["variants"]
    assert any(v["name"] == "reference:shared-cache" for v in variants["broker"])
    assert any(v["name"] == "accepts-alg-none" for v in variants["sts"])
    assert main(["list", "profiles", "--json"]) == 0
    profiles = json.loads(capsys.readouterr().out)["profiles"]
    assert profiles[0]["name"] == "generic" and profiles[0]["description"]


def test_list_scenarios_of_given_paths_and_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.scenario.yaml"
    path.write_text(
        HEAD + "parametrize: {user: [alice, bob]}\nsteps:\n  - expect: {check: ZZ-01, that: "
        "[{left: 1, op: '==', right: 1}]}\n"
    )
    assert main(["list", "scenarios", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Scenarios (2):" in out and "sample[alice]" in out and f"{path}:1" in out
    assert "multi-workspace" not in out and "Checks" not in out
    assert main(["list", "checks", str(path)]) == 0
    assert "ZZ-01" in capsys.readouterr().out
    path.write_text(HEAD + "steps:\n  - fly: {}\n")
    assert main(["list", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6:" in err and "Traceback" not in err


# -- validate ----------------------------------------------------------------------------------
def test_validate_prints_every_error_of_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one.scenario.yaml"
    one.write_text(HEAD + "steps:\n  - fly: {}\n  - login: {user: '${UNSET_FOR_VALIDATE}'}\n")
    two = tmp_path / "two.scenario.yaml"
    two.write_text(HEAD + "includes: [missing-fragment]\nsteps: [{mark: m}]\n")
    fragment = tmp_path / "fragments" / "bad.yaml"
    fragment.parent.mkdir()
    fragment.write_text("version: 1\nsteps:\n  - login: {}\n")
    os.environ.pop("UNSET_FOR_VALIDATE", None)
    assert main(["validate", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == f"{one}:7: environment variable UNSET_FOR_VALIDATE is not set " + (
        "(give a default: ${UNSET_FOR_VALIDATE:-value})"
    )
    assert lines[1].startswith(f"{two}:5: include 'missing-fragment': no such fragment")
    assert lines[2] == f"{fragment}:3: steps[0].login: 'user' is a required property"
    assert lines[3] == "mcp-harness: 3 error(s) in 3 file(s)"
    assert "Traceback" not in captured.err and captured.out == ""
    one.write_text(HEAD + "steps:\n  - fly: {}\n  - walk: {}\n")
    assert main(["validate", str(one)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [e.split(": ")[0] for e in err[:2]] == [f"{one}:6", f"{one}:7"]


def test_validate_counts_when_everything_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fragments").mkdir()
    (tmp_path / "fragments" / "setup.yaml").write_text(
        "version: 1\ndefine:\n  go:\n    - mark: go\n"
    )
    (tmp_path / "a.scenario.yaml").write_text(
        HEAD + "includes: [setup]\nsteps:\n  - include: go\n"  # found in fragments/
    )
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "ok: 1 file(s), 1 scenario(s), 1 fragment(s)\n"


# -- env -----------------------------------------------------------------------------------------
def test_env_prints_the_values_serve_writes(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["env", "--sandbox", sandbox.url]) == 0
    out = capsys.readouterr().out
    values = dict(line.split("=", 1) for line in out.splitlines())
    # the same function serve uses, on the same sandbox read in-process
    expected = harness_env(SandboxFacts.of(sandbox), "http://127.0.0.1:8400")
    assert values == expected
    assert values["HARNESS_PROXY"] == sandbox.proxy_url
    assert values["HARNESS_OKTA_ISSUER"] == sandbox.okta_issuer
    assert values["HARNESS_DATABRICKS_WORKSPACES"].split(",") == [
        sandbox.workspace("dbc-aaa").url,
        sandbox.workspace("dbc-bbb").url,
    ]


def test_env_formats(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["env", "--sandbox", sandbox.url, "--broker", "url:http://127.0.0.1:9999/"]
    assert main([*args, "--format", "json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["HARNESS_BROKER"] == "http://127.0.0.1:9999"
    assert main([*args, "--format", "shell"]) == 0
    shell = capsys.readouterr().out
    printed = subprocess.run(
        ["sh", "-c", shell + 'printf %s "$HARNESS_USER_PASSWORD"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout
    assert printed == values["HARNESS_USER_PASSWORD"]  # quoted: "!" and friends survive
    assert main([*args, "--format", "dotenv"]) == 0
    dotenv = capsys.readouterr().out
    assert f'HARNESS_PROXY="{sandbox.proxy_url}"' in dotenv.splitlines()
    assert format_values({"K": 'a "b" \\ c'}, "dotenv") == 'K="a \\"b\\" \\\\ c"\n'
    assert shlex.split(format_values({"K": "it's"}, "shell")) == ["export", "K=it's"]


def test_env_without_a_running_sandbox_uses_the_port(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["env", "--port", str(port)]) == 0
    captured = capsys.readouterr()
    values = dict(line.split("=", 1) for line in captured.out.splitlines())
    assert values["HARNESS_PROXY"] == f"http://127.0.0.1:{port}"
    assert values["HARNESS_BROKER"] == "http://127.0.0.1:8400"
    assert f"mcp-harness serve --port {port}" in captured.err
    with pytest.raises(httpx.ConnectError):  # started only to read the values, then stopped
        httpx.get(f"http://127.0.0.1:{port}/_harness/health", timeout=2.0)
    assert DEFAULT_SANDBOX_PORT == 8380


def test_env_reads_a_sandbox_already_on_the_port(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    port = sandbox.proxy_url.rsplit(":", 1)[1]
    assert main(["env", "--port", port, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["HARNESS_PROXY"] == sandbox.proxy_url
    assert "no sandbox runs" not in captured.err


def test_env_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:  # a port taken by something that is not a sandbox
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = str(busy.getsockname()[1])
        assert main(["env", "--port", taken]) == 2
        assert "not an mcp-harness sandbox" in capsys.readouterr().err
    assert main(["env", "--sandbox", f"http://127.0.0.1:{free_port()}"]) == 2
    assert "no mcp-harness sandbox answers" in capsys.readouterr().err
    assert main(["env", "--broker", "ftp:x"]) == 2
    assert "use reference or url:<base>" in capsys.readouterr().err
    assert main(["env", "--tls"]) == 2
    assert "--tls needs --ca-dir" in capsys.readouterr().err
    assert main(["env", "--template", "no-such-broker"]) == 2
    err = capsys.readouterr().err
    assert "no such template" in err and "reference-toml" in err
    with pytest.raises(SystemExit) as exited:
        main(["env", "--port", "70000"])
    assert exited.value.code == 2


def test_env_renders_a_custom_template_strictly(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "mine.conf.j2"
    good.write_text("issuer={{ env.HARNESS_OKTA_ISSUER }} port={{ broker_port }}\n")
    assert main(["env", "--sandbox", sandbox.url, "--template", str(good)]) == 0
    assert capsys.readouterr().out == f"issuer={sandbox.okta_issuer} port=8400\n"
    bad = tmp_path / "bad.j2"
    bad.write_text("line one\n{{ env.HARNESS_NOPE }}\n")
    assert main(["env", "--sandbox", sandbox.url, "--template", str(bad)]) == 2
    assert "--template bad.j2" in capsys.readouterr().err


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``python -m broker --config path --check-config`` with no BROKER_*/HARNESS_* in the
    environment: the file alone must configure the broker."""
    return subprocess.run(
        [sys.executable, "-m", "broker", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"]},
        timeout=60,
    )


@pytest.mark.parametrize("name", ["reference-toml", "reference-yaml"])
def test_rendered_reference_config_passes_check_config(
    name: str, sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"broker.{name.split('-')[1]}"
    assert main(["env", "--sandbox", sandbox.url, "--template", name, "-o", str(path)]) == 0
    capsys.readouterr()
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    assert data["okta_issuer"] == sandbox.okta_issuer
    assert data["upstream_proxy"] == sandbox.proxy_url
    assert data["databricks_host_template"] == "http://%s.cloud.databricks.test"
    assert "upstream_ca_bundle" not in data
    done = check_config(path)
    assert done.returncode == 0, done.stderr
    assert "databricks-sql provider=databricks" in done.stdout
    assert "host=http://%s.cloud.databricks.test" in done.stdout
    # the check is real: a broken rendering is refused
    path.write_text(text.replace("okta_issuer", "okta_isuer"))
    assert check_config(path).returncode == 2


def test_rendered_tls_config_names_the_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir = tmp_path / "ca"
    out = tmp_path / "broker.toml"
    port = str(free_port())
    argv = ["env", "--port", port, "--tls", "--ca-dir", str(ca_dir), "--template"]
    assert main([*argv, "reference-toml", "-o", str(out)]) == 0
    assert f"--tls --ca-dir {ca_dir}" in capsys.readouterr().err
    data = tomllib.loads(out.read_text())
    assert data["okta_issuer"].startswith("https://")
    assert Path(data["upstream_ca_bundle"]).is_file()
    done = check_config(out)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def broker_from_rendered_config(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A reference broker process configured only by ``env --template reference-toml``."""
    sandbox_port, broker_port = free_port(), free_port()
    config = tmp_path / "broker.toml"
    argv = ["env", "--port", str(sandbox_port), "--broker-port", str(broker_port)]
    assert main([*argv, "--template", "reference-toml", "-o", str(config)]) == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "--config", str(config), "--port", str(broker_port)],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "broker: serving at ..." once it listens
        assert "serving at" in line or "INFO" in line, line
        yield sandbox_port, f"http://127.0.0.1:{broker_port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_broker_configured_by_env_passes_a_scenario(
    broker_from_rendered_config: tuple[int, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox_port, broker_url = broker_from_rendered_config
    code = main(
        [
            "run",
            "--port",
            str(sandbox_port),
            "--broker",
            f"url:{broker_url}",
            "-k",
            "multi-workspace",
            "--report-dir",
            str(tmp_path),
            "--report",
            "json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert [s["status"] for s in results["scenarios"]] == ["PASSED"]
