"""HTTPS for the sandbox: the CA, per-host certificates, CONNECT, direct TLS, okta-jwt-verifier.

Every test talks to a real TLS sandbox over loopback: through its proxy port with ``CONNECT``
(what HTTPS clients do with ``HTTPS_PROXY``), or straight to the port. Raw sockets show the
exact bytes a client gets where httpx would hide them behind an exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from mocks import defaults as d
from mocks.core.tls import SandboxCA
from mocks.sandbox import Sandbox

OKTA = d.OKTA_DOMAIN
ISSUER = f"https://{OKTA}/oauth2/default"
DISCOVERY_PATH = "/oauth2/default/.well-known/openid-configuration"
DISCOVERY = f"https://{OKTA}{DISCOVERY_PATH}"
WS_HOST = "dbc-aaa.cloud.databricks.test"


# -- helpers ---------------------------------------------------------------------------------
def _read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers (lower-cased names) and body (by Content-Length) of one response.

    The head is read byte by byte so that nothing after it (a TLS handshake) is consumed.
    """
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    status, *lines = head.decode("latin-1").strip().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    body = b""
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _connect(sandbox: Sandbox, target: str) -> tuple[socket.socket, str, dict[str, str], bytes]:
    sock = socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=5)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    status, headers, body = _read_response(sock)
    return sock, status, headers, body


def _client_context(sandbox: Sandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sandbox.ca_bundle))


def _tunnel(sandbox: Sandbox, host: str, *, sni: str | None = None) -> ssl.SSLSocket:
    sock, status, _, _ = _connect(sandbox, f"{host}:443")
    assert status == "HTTP/1.1 200 Connection Established"
    return _client_context(sandbox).wrap_socket(sock, server_hostname=sni or host)


def _get(sock: socket.socket, path: str, host: str) -> tuple[str, dict[str, str], bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return _read_response(sock)


def _unknown_host_body(sandbox: Sandbox, host: str) -> bytes:
    return (
        f"502 Bad Gateway: sandbox host {host!r} does not exist (no mock tenant serves it; "
        f"known hosts: {', '.join(sandbox.server.hosts)})\n"
    ).encode()


# -- HTTPS through the proxy -------------------------------------------------------------------
def test_discovery_over_https_through_the_proxy(https: httpx.Client) -> None:
    response = https.get(DISCOVERY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == f"{ISSUER}/v1/keys"
    assert doc["token_endpoint"] == f"{ISSUER}/v1/token"
    keys = https.get(doc["jwks_uri"])
    assert keys.status_code == 200 and keys.json()["keys"][0]["alg"] == "RS256"


def test_tls_sandbox_publishes_https_urls(tls_sandbox: Sandbox) -> None:
    assert tls_sandbox.okta_issuer == ISSUER
    assert tls_sandbox.context.url_for(WS_HOST) == f"https://{WS_HOST}"
    assert tls_sandbox.url.startswith("http://127.0.0.1:")  # the proxy port itself stays http


def test_workspace_metadata_over_https(https: httpx.Client) -> None:
    meta = https.get(f"https://{WS_HOST}/.well-known/databricks-config")
    assert meta.status_code == 200
    assert meta.json()["oidc_endpoint"] == f"https://{WS_HOST}/oidc"


def test_plain_http_proxying_keeps_working_in_tls_mode(tls_sandbox: Sandbox) -> None:
    with httpx.Client(proxy=tls_sandbox.proxy_url, trust_env=False) as client:
        response = client.get(f"http://{OKTA}/oauth2/default/.well-known/openid-configuration")
    assert response.status_code == 200 and response.json()["issuer"] == ISSUER


def test_unknown_host_through_connect_is_a_502(tls_sandbox: Sandbox) -> None:
    sock, status, headers, body = _connect(tls_sandbox, "nowhere.okta.test:443")
    with sock:
        assert sock.recv(1) == b""  # the server closed the connection
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["connection"] == "close"
    assert body == _unknown_host_body(tls_sandbox, "nowhere.okta.test")
    assert int(headers["content-length"]) == len(body)
    [entry] = tls_sandbox.journal.entries(host="nowhere.okta.test")
    assert (entry.method, entry.path, entry.status) == ("CONNECT", "", 502)


def test_unknown_host_through_httpx_is_a_proxy_error(https: httpx.Client) -> None:
    with pytest.raises(httpx.ProxyError, match="502 Bad Gateway"):
        https.get("https://nowhere.okta.test/")


@pytest.mark.parametrize(
    "target",
    ["acme.okta.test", "acme.okta.test:https", "acme.okta.test:0", ":443", "acme.okta.test:99999"],
)
def test_connect_needs_host_and_port(tls_sandbox: Sandbox, target: str) -> None:
    sock, status, headers, body = _connect(tls_sandbox, target)
    sock.close()
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body == b"400 Bad Request: CONNECT needs a host:port target\n"


def test_connect_to_a_plain_sandbox_is_not_implemented(sandbox: Sandbox) -> None:
    sock, status, headers, body = _connect(sandbox, "acme.okta.test:8443")
    sock.close()
    assert status == "HTTP/1.1 501 Not Implemented"
    assert headers["connection"] == "close"
    assert body == (
        b"501 Not Implemented: this sandbox serves plain HTTP only; start it with TLS "
        b"(Sandbox(tls=True), mcp-harness serve --tls) to use https:// URLs\n"
    )


def test_connect_inside_a_tunnel_is_refused(tls_sandbox: Sandbox) -> None:
    with _tunnel(tls_sandbox, OKTA) as tls:
        tls.sendall(b"CONNECT dbc-aaa.cloud.databricks.test:443 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = _read_response(tls)
    assert status == "HTTP/1.1 400 Bad Request"
    assert body == b"400 Bad Request: CONNECT inside a CONNECT tunnel\n"


def test_host_is_the_connect_target_whatever_the_header_says(tls_sandbox: Sandbox) -> None:
    with _tunnel(tls_sandbox, OKTA) as tls:
        status, headers, body = _get(tls, DISCOVERY_PATH, WS_HOST)
    assert status == "HTTP/1.1 200 OK"
    assert json.loads(body)["issuer"] == ISSUER
    assert headers["connection"] == "close"  # werkzeug never keeps a connection alive
    [entry] = tls_sandbox.journal.entries(host=OKTA)
    assert entry.headers["Host"] == OKTA


def test_the_journal_records_tls_requests(https: httpx.Client, tls_sandbox: Sandbox) -> None:
    response = https.get(DISCOVERY, params={"client_id": d.TEST_CLIENT_ID})
    [entry] = tls_sandbox.journal.entries(host=OKTA, path=DISCOVERY_PATH)
    assert (entry.method, entry.status) == ("GET", 200)
    assert entry.query == {"client_id": d.TEST_CLIENT_ID}
    assert entry.request_id == response.headers["x-request-id"]
    assert entry.headers["Host"] == OKTA


def test_faults_apply_to_tls_requests(https: httpx.Client, tls_sandbox: Sandbox) -> None:
    tls_sandbox.context.faults.add(effect="status", host=OKTA, status=503, body={"error": "x"})
    response = https.get(DISCOVERY)
    assert response.status_code == 503 and response.json() == {"error": "x"}


def test_reset_fault_resets_the_tls_connection(
    https: httpx.Client, tls_sandbox: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    """A TCP RST, as in plain HTTP; OpenSSL reports a reset under TLS as an unexpected EOF."""
    tls_sandbox.context.faults.add(effect="reset", host=OKTA, first=3)
    with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected"):
        https.get(DISCOVERY)
    with _tunnel(tls_sandbox, OKTA) as tls:
        raw = socket.socket(fileno=os.dup(tls.fileno()))  # the TCP stream under the TLS layer
        raw.settimeout(5)
        tls.sendall(f"GET /oauth2/default/v1/keys HTTP/1.1\r\nHost: {OKTA}\r\n\r\n".encode())
        with raw, pytest.raises(ConnectionResetError):
            while raw.recv(4096):  # session tickets, then the reset
                pass
    with httpx.Client(proxy=tls_sandbox.proxy_url, trust_env=False) as plain:
        with pytest.raises(httpx.ReadError, match="reset"):
            plain.get(DISCOVERY.replace("https://", "http://"))
    assert https.get(DISCOVERY).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_truncating_fault_over_tls(https: httpx.Client, tls_sandbox: Sandbox) -> None:
    """Buffered TLS writes still send exactly the part of the body a truncation keeps."""
    full = https.get(DISCOVERY).content
    tls_sandbox.context.faults.add(effect="truncate", host=OKTA, keep=0.5)
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        https.get(DISCOVERY)
    assert f"received {len(full) // 2} bytes, expected {len(full)}" in str(caught.value)


def test_mocks_call_each_other_over_tls(https: httpx.Client, tls_sandbox: Sandbox) -> None:
    """A workspace fetches the Okta JWKS over https (its client trusts the sandbox CA)."""
    internal = tls_sandbox.context.http().get(f"{ISSUER}/v1/keys")
    assert internal.status_code == 200 and internal.json()["keys"]
    id_token = tls_sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    response = https.post(
        f"https://{WS_HOST}/oidc/v1/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": id_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "sql",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


def test_broken_handshakes_do_not_hurt_the_server(
    https: httpx.Client, tls_sandbox: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    sock, status, _, _ = _connect(tls_sandbox, f"{OKTA}:443")
    with sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello-not-tls")
        answer = b""
        with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread
            while chunk := sock.recv(4096):
                answer += chunk
        assert b"HTTP/" not in answer  # a TLS alert and a close, never an HTTP answer
    with socket.create_connection(("127.0.0.1", tls_sandbox.server.port), timeout=5) as raw:
        raw.sendall(b"\x16garbage")
    with _tunnel(tls_sandbox, OKTA):
        pass  # handshake, then the client leaves without a request
    assert status == "HTTP/1.1 200 Connection Established"
    assert https.get(DISCOVERY).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


# -- certificates ---------------------------------------------------------------------------
def test_certificate_is_valid_for_its_host_only(tls_sandbox: Sandbox) -> None:
    with _tunnel(tls_sandbox, OKTA) as tls:
        der = tls.getpeercert(binary_form=True)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() in (None, "http/1.1")
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [OKTA]
    ca = x509.load_pem_x509_certificate(Path(str(tls_sandbox.ca_bundle)).read_bytes())
    store = Store([ca])
    # cryptography's verifier applies the CA/B Forum profile (webpki-like strictness)
    PolicyBuilder().store(store).build_server_verifier(x509.DNSName(OKTA)).verify(leaf, [])
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName(WS_HOST)).verify(leaf, [])


def test_a_tunnel_keeps_its_targets_certificate(tls_sandbox: Sandbox) -> None:
    """Asking for another name by SNI inside a tunnel fails, as against a real server."""
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _tunnel(tls_sandbox, OKTA, sni=WS_HOST)


def test_untrusted_clients_fail_verification(tls_sandbox: Sandbox) -> None:
    with httpx.Client(proxy=tls_sandbox.proxy_url, trust_env=False) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(DISCOVERY)


def test_ca_file_and_keys(tmp_path: Path) -> None:
    started = time.perf_counter()
    ca = SandboxCA(tmp_path / "ca")
    ca.context_for(OKTA)
    assert time.perf_counter() - started < 0.5  # ECDSA keys: milliseconds, not RSA seconds
    assert ca.path == tmp_path / "ca" / "ca.pem"
    cert = x509.load_pem_x509_certificate(ca.path.read_bytes())
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == [".lock", "ca-key.pem", "ca.pem"]
    again = SandboxCA(tmp_path / "ca")  # a truststore imported once keeps working
    assert again.certificate == ca.certificate
    ca.cleanup()
    again.cleanup()
    assert ca.path.exists()  # a given directory is never removed


def test_unreadable_ca_in_a_directory_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    (tmp_path / "ca-key.pem").write_text("not a key")
    ca = SandboxCA(tmp_path)
    assert x509.load_pem_x509_certificate(ca.path.read_bytes()) == ca.certificate


# -- TLS straight to the port -----------------------------------------------------------------
def test_direct_tls_to_the_admin_api(tls_sandbox: Sandbox) -> None:
    base = tls_sandbox.url.replace("http://", "https://")
    with httpx.Client(verify=_client_context(tls_sandbox), trust_env=False) as client:
        response = client.get(f"{base}/_harness/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_direct_tls_with_sni_presents_the_named_host(tls_sandbox: Sandbox) -> None:
    """``curl --resolve acme.okta.test:PORT:127.0.0.1``: SNI picks the host's certificate."""
    raw = socket.create_connection(("127.0.0.1", tls_sandbox.server.port), timeout=5)
    with _client_context(tls_sandbox).wrap_socket(raw, server_hostname=OKTA) as tls:
        status, _, body = _get(tls, DISCOVERY_PATH, OKTA)
    assert status == "HTTP/1.1 200 OK" and json.loads(body)["issuer"] == ISSUER


# -- okta-jwt-verifier, unmodified ------------------------------------------------------------
@pytest.fixture
def okta_tokens(tls_sandbox: Sandbox) -> Iterator[dict[str, str]]:
    okta = tls_sandbox.okta
    yield {
        "access": okta.mint_access_token("alice@example.com", d.TEST_CLIENT_ID),
        "id": okta.mint_id_token("alice@example.com", d.TEST_CLIENT_ID, nonce="n-0S6_WzA2Mj"),
    }


def test_okta_jwt_verifier_sync(
    tls_sandbox: Sandbox, okta_tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify_sync fetches ``{issuer}/v1/keys`` with requests: REQUESTS_CA_BUNDLE + proxy."""
    from okta_jwt_verifier import AccessTokenVerifier, IDTokenVerifier
    from okta_jwt_verifier.exceptions import JWTValidationException

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_sandbox.ca_bundle))
    proxy = tls_sandbox.proxy_url
    AccessTokenVerifier(issuer=ISSUER, audience="api://default", proxy=proxy).verify_sync(
        okta_tokens["access"]
    )
    verifier = IDTokenVerifier(issuer=ISSUER, client_id=d.TEST_CLIENT_ID, proxy=proxy)
    verifier.verify_sync(okta_tokens["id"], nonce="n-0S6_WzA2Mj")
    with pytest.raises(JWTValidationException):
        verifier.verify_sync(okta_tokens["id"], nonce="another-nonce")
    with pytest.raises(JWTValidationException):
        AccessTokenVerifier(issuer=ISSUER, audience="api://other", proxy=proxy).verify_sync(
            okta_tokens["access"]
        )
    assert tls_sandbox.journal.entries(host=OKTA, path="/oauth2/default/v1/keys")


def test_okta_jwt_verifier_async_in_a_fresh_process(
    tls_sandbox: Sandbox, okta_tokens: dict[str, str]
) -> None:
    """The async path (aiohttp) reads SSL_CERT_FILE at import: a broker process sets it at start."""
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from okta_jwt_verifier import AccessTokenVerifier, IDTokenVerifier

        issuer, proxy = os.environ["ISSUER"], os.environ["HARNESS_PROXY"]
        asyncio.run(AccessTokenVerifier(issuer, "api://default", proxy=proxy).verify(
            os.environ["ACCESS_TOKEN"]))
        asyncio.run(IDTokenVerifier(issuer, os.environ["CLIENT_ID"], proxy=proxy).verify(
            os.environ["ID_TOKEN"], nonce="n-0S6_WzA2Mj"))
        print("verified")
        """
    )
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(tls_sandbox.ca_bundle),
        "ISSUER": ISSUER,
        "HARNESS_PROXY": tls_sandbox.proxy_url,
        "CLIENT_ID": d.TEST_CLIENT_ID,
        "ACCESS_TOKEN": okta_tokens["access"],
        "ID_TOKEN": okta_tokens["id"],
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "verified\n"
    [keys] = tls_sandbox.journal.entries(host=OKTA, path="/oauth2/default/v1/keys")
    assert keys.status == 200


# -- mcp-harness serve --tls ------------------------------------------------------------------
def test_serve_tls_writes_the_ca_bundle_to_the_env_file(tmp_path: Path) -> None:
    env_file, ca_dir = tmp_path / "harness.env", tmp_path / "ca"
    command = [sys.executable, "-m", "harness.cli", "serve", "--tls", "--ca-dir", str(ca_dir)]
    process = subprocess.Popen(
        [*command, "--env-file", str(env_file)],
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
        assert values["HARNESS_CA_BUNDLE"] == str(ca_dir / "ca.pem")
        assert values["HARNESS_OKTA_ISSUER"] == ISSUER
        assert values["HARNESS_DATABRICKS_WORKSPACES"].startswith(f"https://{WS_HOST},https://")
        ca = x509.load_pem_x509_certificate(Path(values["HARNESS_CA_BUNDLE"]).read_bytes())
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        printed = "".join(lines)
        assert f"  CA bundle              {ca_dir / 'ca.pem'}\n" in printed
        assert f"  Okta issuer            {ISSUER}\n" in printed
        verify = ssl.create_default_context(cafile=values["HARNESS_CA_BUNDLE"])
        with httpx.Client(proxy=values["HARNESS_PROXY"], verify=verify, trust_env=False) as client:
            doc = client.get(values["HARNESS_OKTA_ISSUER"] + "/.well-known/openid-configuration")
        assert doc.status_code == 200 and doc.json()["issuer"] == ISSUER
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    assert process.returncode == 0
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")
    assert (ca_dir / "ca.pem").exists()  # kept for the next run's truststore


def test_serve_ca_dir_needs_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["serve", "--ca-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "mcp-harness: --ca-dir needs --tls\n"


# -- the README recipes: requests by environment, Java by system properties ---------------------
def test_requests_with_https_proxy_and_ca_bundle_env(
    tls_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    monkeypatch.setenv("HTTPS_PROXY", tls_sandbox.proxy_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_sandbox.ca_bundle))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    response = requests.get(DISCOVERY, timeout=10)
    assert response.status_code == 200 and response.json()["issuer"] == ISSUER


JAVA_FETCH = """
import java.net.HttpURLConnection;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder().proxy(ProxySelector.getDefault()).build();
        HttpResponse<String> response = client.send(
            HttpRequest.newBuilder(URI.create(args[0])).build(),
            HttpResponse.BodyHandlers.ofString());
        System.out.println(response.statusCode());
        System.out.println(response.body());
        HttpURLConnection legacy = (HttpURLConnection) URI.create(args[0]).toURL().openConnection();
        System.out.println(legacy.getResponseCode());
    }
}
"""


@pytest.mark.skipif(not (shutil.which("java") and shutil.which("keytool")), reason="no JDK")
def test_java_with_a_truststore_and_proxy_properties(tls_sandbox: Sandbox, tmp_path: Path) -> None:
    """keytool imports the CA; https.proxyHost/Port route both Java HTTP clients via CONNECT."""
    store = tmp_path / "sandbox-truststore.p12"
    keytool = ["keytool", "-importcert", "-noprompt", "-alias", "mcp-harness-sandbox"]
    ca, password = str(tls_sandbox.ca_bundle), "changeit"
    subprocess.run(
        [*keytool, "-file", ca, "-keystore", str(store), "-storepass", password],
        check=True,
        capture_output=True,
        timeout=60,
    )
    source = tmp_path / "Fetch.java"
    source.write_text(JAVA_FETCH)
    properties = {
        "https.proxyHost": "127.0.0.1",
        "https.proxyPort": str(tls_sandbox.server.port),
        "javax.net.ssl.trustStore": str(store),
        "javax.net.ssl.trustStorePassword": "changeit",
    }
    done = subprocess.run(
        ["java", *(f"-D{k}={v}" for k, v in properties.items()), str(source), DISCOVERY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    status, body, legacy = done.stdout.splitlines()
    assert (status, legacy) == ("200", "200")
    assert json.loads(body)["issuer"] == ISSUER
