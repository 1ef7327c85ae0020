"""The test issuer over HTTP: discovery, JWKS, the ``jku`` recorder, on a threaded werkzeug
server, as ``broker/server.py`` serves the reference broker.

A vendor's STS fetches these documents from its own network, so every answer is plain JSON
with a ``Content-Type``; an unknown path is a 404 and a wrong method a 405 (JSON both), and a
bug in a handler is a logged 500 with a JSON body, never a traceback on the wire.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, get_sockaddr, make_server, select_address_family
from werkzeug.wrappers import Request, Response

from mocks.core.http import json_response

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from harness.issuer.issuer import TestIssuer

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "ES256"]
NO_STORE = {"Cache-Control": "no-store"}
#: Short enough that a vendor sees a key change soon, long enough to spare the issuer.
PUBLIC = {"Cache-Control": "public, max-age=60"}

_URLS = Map(
    [
        Rule("/.well-known/openid-configuration", endpoint="openid", methods=["GET"]),
        Rule("/.well-known/oauth-authorization-server", endpoint="oauth", methods=["GET"]),
        Rule("/jwks.json", endpoint="jwks", methods=["GET"]),
        Rule("/jku/<nonce>", endpoint="jku", methods=["GET"]),
        Rule("/_issuer/jku/<nonce>", endpoint="jku_status", methods=["GET"]),
        Rule("/authorize", endpoint="authorize", methods=["GET", "POST"]),
        Rule("/health", endpoint="health", methods=["GET"]),
    ],
    strict_slashes=False,
)


def metadata(issuer: TestIssuer) -> dict[str, Any]:
    """The discovery document (OIDC Discovery §3) or RFC 8414 metadata: the same core fields.

    ``authorization_endpoint`` is REQUIRED by both specifications, and some relying parties
    validate it, so it is published even though this issuer signs nothing interactively.
    """
    return {
        "issuer": issuer.issuer,
        "jwks_uri": issuer.jwks_uri,
        "authorization_endpoint": f"{issuer.issuer}/authorize",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
    }


class IssuerApp:
    """The WSGI application of one :class:`TestIssuer`."""

    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer = issuer

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self.dispatch(Request(environ))
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        try:
            endpoint, args = _URLS.bind_to_environ(request.environ).match()
        except NotFound:
            return _error("not_found", f"no such path {request.path!r} on this test issuer", 404)
        except MethodNotAllowed as exc:
            allow = ", ".join(sorted(exc.valid_methods or ()))
            return _error(
                "method_not_allowed", f"{request.method} not allowed; use {allow}", 405, allow
            )
        except HTTPException as exc:  # e.g. a malformed request line werkzeug refuses
            code = exc.code if exc.code is not None and exc.code < 500 else 400
            return _error("invalid_request", exc.description or exc.name, code)
        try:
            return self._handle(endpoint, args, request)
        except Exception:  # a bug in the issuer: logged, a JSON 500, never a traceback
            log.exception("test issuer failed on %s %s", request.method, request.path)
            return _error("server_error", "test issuer internal error", 500)

    def _handle(self, endpoint: str, args: Mapping[str, Any], request: Request) -> Response:
        issuer = self.issuer
        if endpoint in ("openid", "oauth"):
            return json_response(metadata(issuer), headers=dict(PUBLIC))
        if endpoint == "jwks":
            return json_response(issuer.jwks(), headers=dict(PUBLIC))
        if endpoint == "jku":
            issuer.record_jku_fetch(
                args["nonce"], request.headers.get("User-Agent"), request.remote_addr
            )
            return json_response(issuer.attacker_jwks(), headers=dict(NO_STORE))
        if endpoint == "jku_status":
            fetches = issuer.jku_fetches(args["nonce"])
            body = {"nonce": args["nonce"], "fetched": bool(fetches), "fetches": fetches}
            return json_response(body, headers=dict(NO_STORE))
        if endpoint == "authorize":
            return _error(
                "unsupported_response_type",
                "this test issuer mints tokens only through mcp-harness (issuer --mint)",
                400,
            )
        return json_response({"status": "ok", "issuer": issuer.issuer}, headers=dict(NO_STORE))


def _error(error: str, description: str, status: int, allow: str | None = None) -> Response:
    headers = dict(NO_STORE)
    if allow:
        headers["Allow"] = allow
    return json_response({"error": error, "error_description": description}, status, headers)


class ServerThread:
    """A threaded werkzeug server for one app on ``host:port`` (0: a free port)."""

    def __init__(self, app: IssuerApp, host: str, port: int) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        listener = _listen(host, port)  # OSError when the port is taken: the caller words it
        try:
            self._server: BaseWSGIServer | None = make_server(
                host, port, app, threaded=True, fd=listener.fileno()
            )
        finally:
            listener.close()  # werkzeug serves a duplicate of the descriptor
        self.port = int(self._server.port)
        server = self._server
        # A short poll interval makes stop() quick (the default 0.5 s adds up across tests).
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05),
            name="test-issuer",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._thread.join(timeout=5)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here rather than by werkzeug: on a taken port werkzeug
    prints to stderr and calls ``sys.exit``, where the CLI needs an exception to word."""
    family = select_address_family(host, port)
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(get_sockaddr(host, port, family))
        listener.listen(128)
    except BaseException:
        listener.close()
        raise
    return listener
