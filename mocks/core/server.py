"""The sandbox server: one threaded werkzeug server on 127.0.0.1 serving every mock as a vhost.

Clients reach a tenant host (``acme.okta.test``, ``dbc-aaa.cloud.databricks.test`` …) either by
using the server as an HTTP proxy (absolute-form request targets; werkzeug copies the target's
authority into ``Host``) or by sending the ``Host`` header directly (DESIGN §2). A host that
no mock serves gets a 502 with a clear body, as a proxy reports a DNS failure. The admin API
lives under ``/_harness/`` on the server's own address, where it never collides with vendor
paths.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import httpx
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from mocks.core.admin import handle_admin
from mocks.core.clock import Clock
from mocks.core.faults import DropConnection, FaultEngine
from mocks.core.http import json_response, text_response
from mocks.core.jose import KeySet, SigningKey, fixture_key
from mocks.core.journal import Journal, make_entry
from mocks.core.seed import IdSource, seeded_key

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_harness/"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, closing the connection when a fault dropped it (no keep-alive)."""

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True
        if isinstance(error, DropConnection) and error.args == ("reset",):
            # Close now, before socketserver's shutdown(SHUT_WR) would send a FIN: with
            # SO_LINGER 0 (set by the fault) the kernel answers with an RST instead.
            try:
                self.rfile.close()  # the makefile() reference would defer the real close
            except OSError:
                pass
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
                self._client = httpx.Client(proxy=self.proxy_url, timeout=10.0, trust_env=False)
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
        self._server: BaseWSGIServer | None = None
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
        self._server = make_server(
            self.bind_host,
            self.bind_port,
            self.wsgi_app,
            threaded=True,
            request_handler=_RequestHandler,
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
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
        journal.record(entry)
        service = self.service_for(host)
        if service is None:
            response = text_response(
                f"502 Bad Gateway: sandbox host {host!r} does not exist (no mock tenant serves "
                f"it; known hosts: {', '.join(self.hosts)})\n",
                502,
            )
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
