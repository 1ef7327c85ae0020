"""Gateway forwarding: one MCP Streamable HTTP request relayed to the upstream MCP server.

In gateway mode the MCP client talks to ``<broker>/v1/<upstream>/<segment>/mcp`` with a token
the broker issued; the caller has validated that token and obtained the upstream token (a
Databricks workspace token, a Snowflake token). :func:`forward_mcp` then relays the request
(MCP revisions 2025-06-18 and 2025-11-25) and relays the answer back. Three rules shape it:

* **The client's token never goes upstream** (MCP "Token Passthrough", MC-03). The broker's
  token is meant for the broker; an upstream that received it could replay it against the
  broker, and accepting it upstream would erase the audience boundary the broker exists for.
  The only ``Authorization`` sent is ``Bearer <upstream token>``, set here.
* **Headers are an allow-list, not a deny-list.** Anything the client sends that the MCP
  transport does not need (cookies for the broker, ``Forwarded``/``X-Forwarded-*`` that could
  make the upstream trust a spoofed address, ``Proxy-*``, hop-by-hop headers, ``Host``) stays
  behind, including headers nobody has thought of yet. The same holds on the way back: only
  the MCP headers (and ``Allow``/``Retry-After``, which clients act on) return; an upstream
  ``Set-Cookie`` would otherwise plant the upstream's session cookie on the broker's origin.
  Requests are built as bare :class:`httpx.Request` objects so the shared client's cookie jar
  and default headers are not merged in either.
* **``text/event-stream`` answers are streamed**, bytes relayed as they arrive: an SSE answer
  may carry progress notifications and requests to the client before the response, a GET
  stream may stay open indefinitely, and buffering either would stall or break the session.
  The upstream response is closed when the stream ends or the client goes away (the WSGI
  server closes the iterable). JSON answers are small and read whole.

Other choices: the query string of the client's request is not forwarded (the caller builds
``upstream_url``); an invalid JSON body is forwarded as is, so the upstream answers the parse
error in its own words; a read timeout on a quiet stream ends it, and the client reconnects
with ``Last-Event-ID`` as the spec expects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
from werkzeug.wrappers import Request, Response

from broker.upstream import request_id_of

log = logging.getLogger("broker.gateway")

#: Client request headers that go upstream (matched case-insensitively). Nothing else does.
FORWARDED_REQUEST_HEADERS = (
    "Content-Type",
    "Accept",
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "Last-Event-ID",
)
#: Upstream response headers that come back.
RETURNED_RESPONSE_HEADERS = (
    "Content-Type",
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "Allow",
    "Retry-After",
)
METHODS = ("POST", "GET", "DELETE")
MAX_BODY = 1 << 20
EVENT_STREAM = "text/event-stream"
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603


class UpstreamRefused(Exception):
    """The upstream answered 401/403 to the upstream token.

    The caller drops its cached upstream token and may retry once with a fresh one; only then
    does the client see a refusal. ``www_authenticate`` and ``request_id`` are the upstream's,
    for the audit record; the body has already been read and the response closed.
    """

    def __init__(
        self, host: str, status: int, www_authenticate: str | None, request_id: str | None
    ) -> None:
        super().__init__(f"upstream {host} refused the upstream token with {status}")
        self.host = host
        self.status = status
        self.www_authenticate = www_authenticate
        self.request_id = request_id


def forward_mcp(
    http: httpx.Client,
    request: Request,
    upstream_url: str,
    upstream_token: str,
    *,
    max_body: int = MAX_BODY,
    body: bytes | None = None,
) -> Response:
    """Relay one MCP request to ``upstream_url`` with ``upstream_token``; the upstream's answer.

    POST carries JSON-RPC message(s), GET opens the server-initiated SSE stream, DELETE ends
    the session; other methods get 405. A body over ``max_body`` bytes gets 413 without being
    sent. Upstream 401/403 raise :class:`UpstreamRefused`; no answer at all (connection
    refused, reset, timeout) is a 502 JSON-RPC error naming the host and the error type only.
    Every other status, 5xx included, is passed back as is.
    """
    if request.method not in METHODS:
        return _rpc_error(
            405,
            INVALID_REQUEST,
            f"method {request.method} not allowed",
            {"Allow": ", ".join(METHODS)},
        )
    url = httpx.URL(upstream_url)
    if url.userinfo:
        raise ValueError("upstream_url must not carry credentials")
    if request.method == "POST" and body is None:
        body = read_body(request, max_body)
        if body is None:
            return too_large(max_body)
    body = body or b""
    headers = [
        (name, value)
        for name in FORWARDED_REQUEST_HEADERS
        for value in request.headers.getlist(name)
    ]
    headers.append(("Authorization", f"Bearer {upstream_token}"))
    content = body if request.method == "POST" else None
    outgoing = httpx.Request(request.method, url, headers=headers, content=content)
    host = url.netloc.decode("ascii")
    try:
        upstream = http.send(outgoing, stream=True, auth=None, follow_redirects=False)
    except httpx.HTTPError as exc:
        # The exception text may quote the request; only its type goes back to the client.
        log.warning("gateway: upstream %s unreachable: %s", host, type(exc).__name__)
        return _rpc_error(502, INTERNAL_ERROR, f"upstream {host} unreachable: {type(exc).__name__}")
    if upstream.status_code in (401, 403):
        try:
            upstream.read()
        except httpx.HTTPError:
            pass
        finally:
            upstream.close()
        raise UpstreamRefused(
            host,
            upstream.status_code,
            upstream.headers.get("WWW-Authenticate"),
            request_id_of(upstream),
        )
    returned = [
        (name, value)
        for name in RETURNED_RESPONSE_HEADERS
        for value in upstream.headers.get_list(name)
    ]
    if _is_event_stream(upstream):
        stream = _RelayedStream(upstream, host)
        response = Response(stream, status=upstream.status_code, direct_passthrough=True)
        response.call_on_close(stream.close)
        response.headers["X-Accel-Buffering"] = "no"  # asks nginx-like proxies not to buffer
    else:
        try:
            data = upstream.read()
        except httpx.HTTPError as exc:
            log.warning("gateway: upstream %s broke off its answer: %s", host, type(exc).__name__)
            return _rpc_error(
                502, INTERNAL_ERROR, f"upstream {host} unreachable: {type(exc).__name__}"
            )
        finally:
            upstream.close()
        response = Response(data, status=upstream.status_code)
    del response.headers["Content-Type"]  # werkzeug's default; only the upstream's counts
    response.headers.extend(returned)
    response.headers["Cache-Control"] = "no-store"
    request_id = request_id_of(upstream)
    if request_id:
        # For the audit record and for the user's support ticket at the platform.
        response.headers["X-Upstream-Request-Id"] = request_id
    return response


class _RelayedStream:
    """An upstream SSE body as a WSGI iterable: chunks as they arrive, then the upstream closed.

    A class rather than a generator because a generator that never started ignores ``close``:
    a client that leaves before the first event would leak the upstream connection.
    """

    def __init__(self, upstream: httpx.Response, host: str) -> None:
        self._upstream = upstream
        self._host = host

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._upstream.iter_bytes():
                if chunk:
                    yield chunk
        except httpx.HTTPError as exc:
            # Mid-stream the status is already sent: end the stream, the client reconnects.
            log.warning("gateway: stream from %s ended: %s", self._host, type(exc).__name__)
        finally:
            self.close()

    def close(self) -> None:
        self._upstream.close()


def _is_event_stream(upstream: httpx.Response) -> bool:
    mimetype = upstream.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    return mimetype == EVENT_STREAM


def too_large(max_body: int) -> Response:
    """413 for a request body over the limit (nothing was sent upstream)."""
    return _rpc_error(413, INVALID_REQUEST, f"request body exceeds {max_body} bytes")


def read_body(request: Request, max_body: int = 1 << 20) -> bytes | None:
    """The request body, or None when it is larger than ``max_body`` (nothing more is read)."""
    length = request.content_length
    if length is not None:
        return None if length > max_body else request.get_data()
    data = request.stream.read(max_body + 1)  # chunked: read one byte past the limit at most
    return None if len(data) > max_body else data


def _rpc_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A JSON-RPC error object with ``id`` null: the gateway cannot tell which message failed."""
    error = {"code": code, "message": message}
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": None, "error": error}
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
