"""``mcp-harness issuer`` end to end: registration values, minting, defects, errors, serving.

Usage errors must be one line and exit 2 (never a traceback); the printed Databricks policy
must be one the mock account accepts as is; a served issuer must answer over HTTP with the
keys persisted in ``--key-dir`` and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from harness.cli import main
from harness.issuer import SIGNING_DEFECTS, TestIssuer
from mocks.databricks.policies import create_policy
from mocks.sandbox import Sandbox

DEFAULT_DIR = Path(".mcp-harness") / "issuer"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory: the default ``--key-dir`` lands in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mcp-harness: "), err
    assert "Traceback" not in err
    return err


def kids(key_dir: Path) -> list[str]:
    return [k["kid"] for k in TestIssuer(key_dir).jwks()["keys"]]


def policy_json(out: str) -> Any:
    """The JSON document printed after the Databricks policy heading."""
    _, _, rest = out.partition("Databricks account federation policy")
    return json.loads(rest[rest.index("{") :])


# -- --print -----------------------------------------------------------------------------------
def test_print_shows_the_registration_values_and_keeps_the_keys(
    workdir: Path, capsys: pytest.CaptureFixture[str], sandbox: Sandbox
) -> None:
    argv = ["issuer", "--print", "--audience", "https://a.example", "--audience", "b"]
    assert main([*argv, "--subject-claim", "email"]) == 0
    out = capsys.readouterr().out
    assert "issuer           http://127.0.0.1:8765\n" in out
    assert "JWKS URL         http://127.0.0.1:8765/jwks.json\n" in out
    assert "audiences        https://a.example, b\n" in out
    assert "subject claim    email\n" in out
    rs256, es256 = kids(workdir / DEFAULT_DIR)
    assert f"RS256  kid {rs256}" in out and f"ES256  kid {es256}" in out
    assert str((workdir / DEFAULT_DIR).resolve()) in out
    body = policy_json(out)
    assert body["oidc_policy"] == {
        "issuer": "http://127.0.0.1:8765",
        "audiences": ["https://a.example", "b"],
        "subject_claim": "email",
    }
    policy = create_policy(sandbox.databricks, body, policy_id="mcp-harness-issuer", sp_id=None)
    assert (policy.issuer, policy.subject_claim) == ("http://127.0.0.1:8765", "email")
    assert main(["issuer", "--print"]) == 0  # a second start reloads the same keys
    second = capsys.readouterr().out
    assert f"RS256  kid {rs256}" in second and "audiences        mcp-harness\n" in second


def test_print_with_an_issuer_url_uses_it_everywhere(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["issuer", "--print", "--issuer-url", "https://idp.tunnel.example/"]) == 0
    out = capsys.readouterr().out
    assert "issuer           https://idp.tunnel.example\n" in out
    assert "JWKS URL         https://idp.tunnel.example/jwks.json\n" in out
    assert policy_json(out)["oidc_policy"]["issuer"] == "https://idp.tunnel.example"


# -- --mint ------------------------------------------------------------------------------------
def test_mint_prints_one_token_the_published_keys_verify(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["issuer", "--mint", "--sub", "alice@example.com", "--lifetime", "60"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.count(".") == 2 and "\n" not in token
    jwks = TestIssuer(workdir / DEFAULT_DIR).jwks()
    [key] = [k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256", "ES256"],
        audience="mcp-harness",
        issuer="http://127.0.0.1:8765",
    )
    assert claims["sub"] == "alice@example.com" and claims["exp"] - claims["iat"] == 60


def test_mint_options_audiences_algorithm_subject_claim_and_defect(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["issuer", "--mint", "--sub", "a@example.com", "--subject-claim", "email"]
    assert main([*argv, "--aud", "x", "--aud", "y", "--alg", "ES256"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == ["x", "y"] and claims["email"] == claims["sub"] == "a@example.com"
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert main(["issuer", "--mint", "--sub", "a@example.com", "--defect", "alg-none"]) == 0
    unsecured = capsys.readouterr().out.strip()
    assert unsecured.endswith(".")
    assert jwt.get_unverified_header(unsecured)["alg"] == "none"


def test_mint_errors_are_one_line_exit_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["issuer", "--mint"]) == 2
    assert "--mint needs --sub" in one_line_error(capsys)
    assert main(["issuer", "--mint", "--sub", "a", "--defect", "nope"]) == 2
    err = one_line_error(capsys)
    assert "unknown signing defect 'nope'" in err and all(name in err for name in SIGNING_DEFECTS)
    assert main(["issuer", "--mint", "--sub", "a", "--port", "0"]) == 2
    assert "--port 0 gives no stable URL" in one_line_error(capsys)
    assert main(["issuer", "--print", "--issuer-url", "ftp://x"]) == 2
    assert "--issuer-url must be an absolute http(s) URL" in one_line_error(capsys)


def test_list_defects_names_every_defect_without_touching_keys(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["issuer", "--list-defects"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(SIGNING_DEFECTS)
    assert not (workdir / ".mcp-harness").exists()


# -- bad key directories, taken ports ----------------------------------------------------------
def test_a_key_dir_that_is_a_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "keys"
    target.write_text("not a directory")
    assert main(["issuer", "--print", "--key-dir", str(target)]) == 2
    assert f"{target}: key directory is not a directory" in one_line_error(capsys)


def test_a_corrupt_key_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "es256.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\ntruncated")
    assert main(["issuer", "--print", "--key-dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'es256.pem'}: not an unencrypted PEM private key" in one_line_error(capsys)


def test_serving_on_a_taken_port_exits_2_and_keeps_signal_handlers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = signal.getsignal(signal.SIGINT)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["issuer", "--key-dir", str(tmp_path), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(capsys)
    assert signal.getsignal(signal.SIGINT) is before


# -- serving -----------------------------------------------------------------------------------
def test_serve_answers_over_http_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "issuer", "--key-dir", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    watchdog = threading.Timer(60, process.kill)  # a hung start fails the test, not the run
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        serving = lines[0].split()
        assert serving[:3] == ["mcp-harness", "issuer:", "serving"], lines
        base = serving[3]
        doc = httpx.get(base + "/.well-known/openid-configuration").json()
        assert doc["issuer"] == base
        served = [k["kid"] for k in httpx.get(doc["jwks_uri"]).json()["keys"]]
        assert served == kids(tmp_path)
        assert httpx.get(base + "/jku/probe").status_code == 200
        assert httpx.get(base + "/_issuer/jku/probe").json()["fetched"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None and process.stderr.read() == ""
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
