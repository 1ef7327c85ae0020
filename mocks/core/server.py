"""The sandbox server: one threaded werkzeug server on 127.0.0.1 serving every mock as a vhost.

Clients reach a tenant host (``acme.okta.test``, ``dbc-aaa.cloud.databricks.test`` …) either by
using the server as an HTTP proxy (absolute-form request targets; werkzeug copies the target's
authority into ``Host``) or by sending the ``Host`` header directly (DESIGN §2). A host that
no mock serves gets a 502 with a clear body, as a proxy reports a DNS failure. The admin API
lives under ``/_harness/`` on the server's own address, where it never collides with vendor
paths.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import httpx
from werkzeug.exceptions import HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from mocks.core.admin import handle_admin
from mocks.core.clock import Clock
from mocks.core.faults import DropConnection, FaultEngine
from mocks.core.http import json_response, text_response
from mocks.core.jose import KeySet, SigningKey, fixture_key
from mocks.core.journal import Journal, make_entry
from mocks.core.seed import IdSource, seeded_key
from mocks.core.tls import SandboxCA

#: WSGI environ key holding the journal request id of the request being handled.
REQUEST_ID_ENVIRON = "mcp_harness.request_id"

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_harness/"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
TLS_HANDSHAKE_TIMEOUT = 10.0


class _SandboxWSGIServer(ThreadedWSGIServer):
    """werkzeug's threaded server, knowing its :class:`SandboxServer` (for CONNECT and TLS)."""

    sandbox: SandboxServer


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, plus TLS (CONNECT tunnels, direct TLS) and faults' dropped sockets.

    A ``CONNECT host:port`` to a sandbox host is answered ``200`` and the socket is wrapped in
    TLS with that host's certificate; the handler then goes on reading HTTP requests from the
    TLS stream, so they reach the same WSGI app (routing, journal, faults) with ``Host`` set to
    the CONNECT target whatever the client's ``Host`` header says. In TLS mode a connection
    whose first byte is a TLS handshake record is TLS straight to the port (loopback
    certificate, or the SNI-named host's).
    """

    server: _SandboxWSGIServer
    tunnel_host: str | None = None
    tls_socket: ssl.SSLSocket | None = None

    def handle(self) -> None:
        try:
            if self.server.sandbox.context.tls is not None and self._starts_with_tls():
                if not self._wrap(self.server.sandbox.direct_tls_context()):
                    return
            super().handle()
        except (ssl.SSLError, ssl.CertificateError) as exc:  # werkzeug re-raises these
            log.debug("TLS error from %s: %s", self.client_address, exc)
            self.close_connection = True

    def _starts_with_tls(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b"\x16"
        except OSError:
            return False

    def _wrap(self, context: ssl.SSLContext) -> bool:
        """Swap the plain socket for a TLS one; False (connection closed) if the handshake fails."""
        raw = self.connection
        raw.settimeout(TLS_HANDSHAKE_TIMEOUT)  # a silent client must not hold a thread forever
        # Without it Nagle holds each small TLS record until the client's delayed ACK: 16 ms
        # per request instead of 5 on loopback.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = context.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
        except (OSError, ValueError) as exc:
            log.debug("TLS handshake with %s failed: %s", self.client_address, exc)
            self.close_connection = True
            raw.close()
            return False
        self.tls_socket = tls
        self.connection = self.request = tls
        self.rfile = tls.makefile("rb")  # buffered, as StreamRequestHandler makes it
        # Buffered too: werkzeug flushes after every body chunk, so the head and the first
        # chunk leave in one TLS record, and a truncating fault still sends what it keeps.
        self.wfile = tls.makefile("wb")
        return True

    def do_CONNECT(self) -> None:
        sandbox = self.server.sandbox
        authority = self.path.lower()
        host, _, port = authority.rpartition(":")
        refusal = sandbox.connect_refusal(host, port, tunnelled=self.tunnel_host is not None)
        if refusal is not None:
            status, body = refusal
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        tls = sandbox.context.tls
        assert tls is not None  # connect_refusal refuses when TLS is off
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        if self._wrap(tls.context_for(host)):
            self.tunnel_host = host if port == "443" else authority
            self.close_connection = False  # the outer loop reads the tunnelled requests

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A request the HTTP layer refuses before any mock sees it (414, 431, a malformed
        request line) gets JSON like every other answer of the sandbox, not http.server's
        HTML page; the request line is not echoed back."""
        short, long = self.responses.get(code, ("Error", ""))
        self.log_error("code %d, message %s", code, message or short)
        body = json.dumps({"error": "invalid_request", "error_description": long or short})
        self.send_response(code, short)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body.encode())

    def make_environ(self) -> Any:
        environ = super().make_environ()
        if self.tls_socket is not None:
            environ["wsgi.url_scheme"] = "https"
        if self.tunnel_host is not None:
            environ["HTTP_HOST"] = self.tunnel_host
        return environ

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.tls_socket is not None:
                # socketserver shuts down the original socket, which wrap_socket detached.
                try:
                    self.tls_socket.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                self.tls_socket.close()

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True
        if isinstance(error, DropConnection) and error.args == ("reset",):
            # Close now, before socketserver's shutdown(SHUT_WR) would send a FIN: with
            # SO_LINGER 0 (set by the fault) the kernel answers with an RST instead.
            for stream in (self.rfile, self.wfile):  # makefile() references defer the close
                try:
                    stream.close()
                except OSError:
                    pass
            self.wfile = io.BytesIO()  # http.server flushes wfile once more: a harmless sink
            self.connection.close()


@runtime_checkable
class MockService(Protocol):
    """What the sandbox needs from a mock: the hosts it serves, a handler, and a reset."""

    @property
    def hosts(self) -> Iterable[str]: ...

    def handle(self, request: Request) -> Response: ...

    def reset(self) -> None: ...


@runtime_checkable
class AdministeredService(Protocol):
    """A mock with runtime control under ``/_harness/tenants/<name>/…`` (DESIGN §2).

    ``describe`` is the tenant summary ``GET /_harness/tenants`` lists; ``admin`` answers a
    request below the service's prefix (``path`` is what follows ``<name>/``).
    """

    name: str

    def describe(self) -> dict[str, Any]: ...

    def admin(self, request: Request, path: str) -> Response: ...


@runtime_checkable
class KeyedService(Protocol):
    """A mock whose tenants sign with their own keys: ``/_harness/keys`` rotates them."""

    def keyset(self, host: str) -> KeySet | None: ...


class SandboxContext:
    """What mocks share: the clock, the journal and a way to call other mocks over HTTP.

    Mocks that fetch from another tenant (a workspace fetching the IdP's JWKS) go through the
    sandbox server as a proxy, exactly as they would go over the network in production.
    """

    def __init__(self, clock: Clock | None = None, journal: Journal | None = None) -> None:
        self.clock = clock or Clock()
        self.journal = journal or Journal()
        self.faults = FaultEngine()
        self.proxy_url: str | None = None
        self.ids = IdSource()
        """Generated ids and opaque secrets: from :mod:`secrets`, or from the seed."""
        self.scheme = "http"
        """``https`` once the sandbox serves TLS: every tenant URL (issuers!) follows it."""
        self.tls: SandboxCA | None = None
        """The sandbox CA when tenant hosts are served over TLS (see :meth:`use_tls`)."""
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def seed(self) -> int | None:
        return self.ids.seed

    def key(self, name: str, alg: str = "RS256") -> SigningKey:
        """The signing key of tenant ``name``: derived from the seed if one is set.

        Models take their keys here on every reset, so ``POST /_harness/seed`` followed by the
        reset it triggers gives every tenant its seeded key.
        """
        if self.ids.seed is None:
            return fixture_key(name, alg)
        return seeded_key(self.ids.seed, name, alg)

    def use_tls(self, ca: SandboxCA) -> None:
        """Serve tenant hosts over TLS with ``ca``: call before mocks build their URLs."""
        self.tls = ca
        self.scheme = "https"

    def url_for(self, host: str) -> str:
        """The base URL of a tenant host (``http://acme.okta.test``), in the sandbox's scheme.

        Mocks build every absolute URL they publish (issuers, endpoints, JWKS URIs) with this,
        so switching the sandbox to HTTPS changes them all at once.
        """
        return f"{self.scheme}://{host}"

    def http(self) -> httpx.Client:
        """A shared client routed through the sandbox (valid once the server has started)."""
        with self._lock:
            if self._client is None:
                if self.proxy_url is None:
                    raise RuntimeError("the sandbox server has not started yet")
                # In TLS mode the mocks trust the sandbox CA, and only it, as clients would.
                verify: ssl.SSLContext | bool = True
                if self.tls is not None:
                    verify = self.tls.client_context()
                # Loopback URLs are not sandbox hosts: they are services next to the sandbox
                # (a broker the mocks trust as a federated issuer), reached directly as the
                # real service would reach them over the network.
                direct = httpx.HTTPTransport(verify=verify, trust_env=False)
                self._client = httpx.Client(
                    proxy=self.proxy_url,
                    timeout=10.0,
                    trust_env=False,
                    verify=verify,
                    mounts={f"all://{name}": direct for name in LOOPBACK_NAMES},
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def host_of(request: Request) -> str:
    """Lower-cased host name of the request, without port."""
    host = (request.host or "").lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


class SandboxServer:
    """Routes requests to mocks by host, journals them, and serves the admin API."""

    def __init__(
        self,
        context: SandboxContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        self.context = context
        self.bind_host = host
        self.bind_port = port
        self.on_reset = on_reset
        self._services: list[MockService] = []
        self._server: _SandboxWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- registry ------------------------------------------------------------------------
    def add(self, service: MockService) -> None:
        """Register a mock; its ``hosts`` are read on every request, so they may change."""
        if service not in self._services:
            self._services.append(service)

    def services(self) -> list[MockService]:
        return list(self._services)

    def service_for(self, host: str) -> MockService | None:
        return next((s for s in self._services if host in s.hosts), None)

    @property
    def hosts(self) -> list[str]:
        return sorted(h for s in self._services for h in s.hosts)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://{self.bind_host}:{self._server.server_port}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_port)

    def start(self) -> SandboxServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = _SandboxWSGIServer(
            self.bind_host, self.bind_port, self.wsgi_app, handler=_RequestHandler
        )
        self._server.sandbox = self
        self._server.daemon_threads = True
        self.context.proxy_url = self.url
        # A short poll interval makes stop() quick (the default 0.5 s adds up across tests).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.context.close()

    def reset(self) -> None:
        """Every mock back to its initial state, journal emptied, clock back to real time.

        A seeded id stream restarts too, so a scenario's ids do not depend on what ran before.
        """
        self.context.ids.reseed(self.context.ids.seed)
        for service in self.services():
            service.reset()
        self.context.journal.clear()
        self.context.faults.clear()
        self.context.clock.reset()
        if self.on_reset is not None:
            self.on_reset()

    # -- TLS -----------------------------------------------------------------------------
    def connect_refusal(self, host: str, port: str, *, tunnelled: bool) -> tuple[int, bytes] | None:
        """Why a ``CONNECT`` must be refused (status, body), or None to open the tunnel.

        An unknown host gets the plain path's 502 (and a journal entry, as there), so a client
        sees the same answer whichever scheme it uses.
        """
        if tunnelled:
            return 400, b"400 Bad Request: CONNECT inside a CONNECT tunnel\n"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return 400, b"400 Bad Request: CONNECT needs a host:port target\n"
        if self.context.tls is None:
            return 501, (
                b"501 Not Implemented: this sandbox serves plain HTTP only; start it with "
                b"TLS (Sandbox(tls=True), mcp-harness serve --tls) to use https:// URLs\n"
            )
        if self.service_for(host) is None:
            journal = self.context.journal
            entry = make_entry(
                seq=journal.next_seq(),
                time=self.context.clock.now(),
                method="CONNECT",
                host=host,
                path="",
                query={},
                headers=[],
                form={},
            )
            entry.request_id = self.context.ids.token_hex(16)
            journal.record(entry)
            body = self._unknown_host(host).encode()
            journal.complete(entry, 502, body)
            return 502, body
        return None

    def direct_tls_context(self) -> ssl.SSLContext:
        """The context for TLS straight to the port: SNI picks any current sandbox host."""
        assert self.context.tls is not None
        return self.context.tls.direct_context(lambda name: self.service_for(name) is not None)

    def _unknown_host(self, host: str) -> str:
        return (
            f"502 Bad Gateway: sandbox host {host!r} does not exist (no mock tenant serves "
            f"it; known hosts: {', '.join(self.hosts)})\n"
        )

    # -- WSGI --------------------------------------------------------------------------
    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        host = host_of(request)
        if host in LOOPBACK_NAMES or host == self.bind_host:
            if request.path.startswith(ADMIN_PREFIX):
                return self._admin(request)
            return json_response(
                {
                    "error": "not_found",
                    "error_description": "This is the sandbox server itself: use it as an HTTP "
                    "proxy or send a Host header naming a sandbox host. Admin API: /_harness/.",
                    "hosts": self.hosts,
                },
                404,
            )
        return self._to_service(host, request)

    def _to_service(self, host: str, request: Request) -> Response:
        journal = self.context.journal
        form = request.form if request.mimetype == "application/x-www-form-urlencoded" else {}
        entry = make_entry(
            seq=journal.next_seq(),
            time=self.context.clock.now(),
            method=request.method,
            host=host,
            path=request.path,
            query=request.args.to_dict(),
            headers=list(request.headers.items()),
            form=dict(form.items()) if form else {},
        )
        entry.request_id = self.context.ids.token_hex(16)
        # Services record it with what they log (query histories), so a scenario can follow
        # one request from the broker's audit through the journal to the platform's history.
        request.environ[REQUEST_ID_ENVIRON] = entry.request_id
        journal.record(entry)
        service = self.service_for(host)
        if service is None:
            response = text_response(self._unknown_host(host), 502)
        else:
            try:
                response = self.context.faults.apply(
                    host, request, lambda: service.handle(request), skewed=self._skewed
                )
            except DropConnection:
                journal.complete(entry, 0, None)
                raise
            except HTTPException as exc:
                response = json_response(
                    {"error": "invalid_request", "error_description": exc.description or exc.name},
                    exc.code or 400,
                )
            except Exception:  # a mock bug must show as a clear 500, never kill the server
                log.exception("mock for %s failed on %s %s", host, request.method, request.path)
                response = json_response(
                    {"error": "server_error", "error_description": "mock internal error"}, 500
                )
        response.headers.setdefault("X-Request-Id", entry.request_id)
        body = response.get_data() if not response.is_streamed else None
        journal.complete(entry, response.status_code, body)
        return response

    def _skewed(self, seconds: float, handler: Callable[[], Response]) -> Response:
        with self.context.clock.skewed(seconds):
            return handler()

    # -- admin API ------------------------------------------------------------------------
    def _admin(self, request: Request) -> Response:
        return handle_admin(self, request, request.path[len(ADMIN_PREFIX) :].strip("/"))
