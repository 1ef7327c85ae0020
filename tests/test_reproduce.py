"""Reproduce lines: the curl of a recorded exchange replays the request and never holds a token.

The strongest proof that a command is copy-pasteable is to paste it: each test records a real
request with real signed tokens through the harness's own :class:`EvidenceRecorder`, turns the
redacted exchange into a curl line, asserts that no secret survives in the line, then runs the
line in ``bash`` with the secrets exported as the variables it names, and compares what a real
HTTP server received the second time with what it received the first time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from base64 import b64encode
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from harness.evidence import EvidenceRecorder
from harness.reproduce import curl_command, is_sandbox_host
from harness.results import Exchange
from mocks.core.jose import fixture_key

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

SUBJECT = fixture_key("reproduce-subject").sign({"sub": "alice@example.com", "aud": "x"})
ACTOR = fixture_key("reproduce-actor").sign({"sub": "svc", "aud": "x"})
ACCESS = fixture_key("reproduce-access").sign({"sub": "alice@example.com", "scope": "all-apis"})
SECRET = "s3cr3t-with-'quotes'-and-$dollar-and-\"dq\"-!bang"


class _Recorder(BaseHTTPRequestHandler):
    """Answers 400 to everything and keeps what it received (absolute-form targets too, so
    it doubles as the HTTP proxy of a ``*.test`` host)."""

    received: list[dict[str, Any]] = []
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        type(self).received.append(
            {
                "method": self.command,
                "target": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        payload = b'{"error":"invalid_request"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()


def _record(method: str, url: str, proxy: str | None = None, **kwargs: Any) -> Exchange:
    with httpx.Client(proxy=proxy, trust_env=False) as client:
        recorder = EvidenceRecorder(client)
        recorder.request(method, url, **kwargs)
    return recorder.exchanges[-1]


def _replay(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        ["bash", "-c", line], env=clean, capture_output=True, text=True, timeout=30, check=False
    )


def _assert_no_secret(line: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in line
    assert "eyJ" not in line  # no JWT at all, not even a fragment of header or payload


def _same_request(first: dict[str, Any], second: dict[str, Any], *headers: str) -> None:
    assert second["method"] == first["method"]
    assert second["target"] == first["target"]
    for name in headers:
        assert second["headers"].get(name) == first["headers"].get(name), name


def test_form_exchange_replays_with_secrets_as_variables(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, received = server
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": SUBJECT,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "actor_token": ACTOR,
        "client_secret": SECRET,
        "scope": "all-apis sql",
        "resource": "http://b/v1/x/mcp?a=1&b=2",
    }
    exchange = _record("POST", f"{base}/oidc/v1/token", data=form)
    line = curl_command(exchange)

    _assert_no_secret(line, SUBJECT, ACTOR, SECRET)
    assert "\n" not in line
    for var in ("$SUBJECT_TOKEN", "$ACTOR_TOKEN", "$CLIENT_SECRET"):
        assert var in line
    result = _replay(
        line, {"SUBJECT_TOKEN": SUBJECT, "ACTOR_TOKEN": ACTOR, "CLIENT_SECRET": SECRET}
    )
    assert result.returncode == 0, result.stderr
    assert "HTTP/1.1 400" in result.stdout  # -i: the reader sees the status line
    first, second = received
    _same_request(first, second, "content-type")
    assert dict(parse_qsl(second["body"])) == form


def test_basic_auth_and_bearer_become_credentials_variables(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, received = server
    basic = _record(
        "POST",
        f"{base}/token",
        headers={"Authorization": "Basic " + b64encode(f"my-client:{SECRET}".encode()).decode()},
        data={"grant_type": "refresh_token", "refresh_token": "rt-" + "x" * 40},
    )
    line = curl_command(basic)
    _assert_no_secret(line, SECRET, "rt-" + "x" * 40)
    assert '-u "$CLIENT_ID:$CLIENT_SECRET"' in line
    assert "$REFRESH_TOKEN" in line
    env = {"CLIENT_ID": "my-client", "CLIENT_SECRET": SECRET, "REFRESH_TOKEN": "rt-" + "x" * 40}
    assert _replay(line, env).returncode == 0

    bearer = _record(
        "GET", f"{base}/api/2.0/mcp/sql", headers={"Authorization": f"Bearer {ACCESS}"}
    )
    line = curl_command(bearer)
    _assert_no_secret(line, ACCESS)
    assert '-H "Authorization: Bearer $ACCESS_TOKEN"' in line
    assert _replay(line, {"ACCESS_TOKEN": ACCESS}).returncode == 0
    for first, second in (received[0:2], received[2:4]):
        _same_request(first, second, "authorization", "content-type")
    assert dict(parse_qsl(received[1]["body"])) == dict(parse_qsl(received[0]["body"]))


def test_json_body_and_query_secrets(server: tuple[str, list[dict[str, Any]]]) -> None:
    base, received = server
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": 'it\'s "quoted"', "arguments": {"token": ACCESS, "n": [1, 2]}},
    }
    exchange = _record(
        "POST",
        f"{base}/mcp?code=authcode-1234567890&state=xyz",
        json=body,
        headers={"Accept": "application/json, text/event-stream", "Mcp-Session-Id": "s-1"},
    )
    line = curl_command(exchange)
    _assert_no_secret(line, ACCESS, "authcode-1234567890")
    assert "$CODE" in line and "${TOKEN}" in line
    result = _replay(line, {"TOKEN": ACCESS, "CODE": "authcode-1234567890"})
    assert result.returncode == 0, result.stderr
    first, second = received
    _same_request(first, second, "accept", "mcp-session-id", "content-type")
    assert json.loads(second["body"]) == body


def test_sandbox_hosts_go_through_the_proxy(server: tuple[str, list[dict[str, Any]]]) -> None:
    proxy, received = server
    url = "http://dbc-aaa.cloud.databricks.test/oidc/v1/token"
    exchange = _record("POST", url, proxy=proxy, data={"subject_token": SUBJECT})
    line = curl_command(exchange, proxy=proxy)
    assert f"--proxy {proxy}" in line
    assert _replay(line, {"SUBJECT_TOKEN": SUBJECT}).returncode == 0
    first, second = received
    assert second["target"] == first["target"] == url
    assert dict(parse_qsl(second["body"])) == {"subject_token": SUBJECT}
    # without a known proxy the line names the variable ``mcp-harness serve`` writes
    assert '--proxy "$HARNESS_PROXY"' in curl_command(exchange)
    https = Exchange(1, 1, "GET", "https://acme.okta.test/x", {}, None, None, {}, None, 0.0)
    assert '--cacert "$HARNESS_CA_BUNDLE"' in curl_command(https)


def test_loopback_hosts_get_no_proxy() -> None:
    exchange = Exchange(1, 1, "GET", "http://127.0.0.1:1/x", {}, None, None, {}, None, 0.0)
    assert "--proxy" not in curl_command(exchange)
    assert is_sandbox_host("acme.okta.test") and is_sandbox_host("Dbc-AAA.cloud.databricks.test.")
    assert not is_sandbox_host("example.com") and not is_sandbox_host("testing.example")


def test_a_token_that_escaped_redaction_is_still_elided() -> None:
    """Evidence is redacted at capture; a capture bug must still not reach the line."""
    exchange = Exchange(
        seq=1,
        step=1,
        method="POST",
        url=f"http://127.0.0.1:1/t?assertion={SUBJECT}",
        request_headers={"X-Leak": f"tok {ACCESS}", "Content-Type": "text/plain"},
        request_body=f"raw {ACTOR}",
        status=None,
        response_headers={},
        response_body=None,
        duration_ms=0.0,
    )
    line = curl_command(exchange)
    _assert_no_secret(line, SUBJECT, ACCESS, ACTOR)
    assert "$ASSERTION" in line and "$X_LEAK" in line and "$BODY_SECRET" in line


def test_two_different_tokens_in_one_body_get_two_variables() -> None:
    other = fixture_key("reproduce-other").sign({"sub": "bob"})
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as client:
        recorder = EvidenceRecorder(client)
        recorder.request("POST", "http://b/x", json={"a": {"token": ACCESS}, "b": {"token": other}})
    line = curl_command(recorder.exchanges[0])
    assert "${TOKEN}" in line and "${TOKEN_2}" in line
    _assert_no_secret(line, ACCESS, other)
    assert urlsplit("http://b/x").path in line
