"""Small response helpers so every endpoint answers the same way.

Token-bearing and error answers always carry ``Cache-Control: no-store`` and ``Pragma:
no-cache`` (RFC 6749 §5.1/§5.2): a cached token response is a leaked token.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from werkzeug.wrappers import Response

from broker.errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    no_store: bool = True,
) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json",
        headers={**(NO_STORE if no_store else {}), **(headers or {})},
    )


def error_response(error: OAuthError) -> Response:
    return json_response(error.body(), status=error.status, headers=error.headers)


def redirect(url: str) -> Response:
    return Response("", status=302, headers={"Location": url, **NO_STORE})


def add_query(url: str, params: dict[str, str | None]) -> str:
    """Append parameters to a redirect URI, keeping any query it already has (RFC 6749 §3.1.2)."""
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def single_params(values: Any, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Request parameters as a plain dict; a repeated parameter is ``invalid_request``.

    RFC 6749 §3.1/§3.2: parameters must not be included more than once.
    """
    result: dict[str, str] = {}
    for key in values:
        items = values.getlist(key)
        if len(items) > 1 and (names is None or key in names):
            raise OAuthError("invalid_request", f"parameter {key!r} was given more than once")
        result[key] = items[0]
    return result
