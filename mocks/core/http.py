"""Small HTTP helpers every mock uses, so error bodies and headers are uniform.

Every response has a ``Content-Type`` (the Databricks SDK crashes on errors without one,
``vendor-fidelity.md`` §A.3); token responses carry ``Cache-Control: no-store`` and
``Pragma: no-cache`` (RFC 6749 §5.1).
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

JSON = "application/json"


class OAuthFailure(Exception):
    """An OAuth error a mock answers with: ``error``, ``error_description``, HTTP status.

    Models raise it; handlers turn it into :func:`oauth_error`. The description is what the
    client sees, so it must never contain a token.
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    payload: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    content_type: str = JSON,
) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        headers=headers or {},
        content_type=content_type,
    )


def oauth_error(
    error: str,
    description: str | None = None,
    status: int = 400,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """RFC 6749 §5.2 error body, with ``no-store`` like the success responses."""
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
    body.update(extra)
    return json_response(body, status, {**NO_STORE, **(headers or {})})


def token_response(payload: dict[str, Any]) -> Response:
    return json_response(payload, 200, dict(NO_STORE))


def text_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        text, status=status, headers=headers or {}, content_type="text/plain; charset=utf-8"
    )


def html_response(html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        html, status=status, headers=headers or {}, content_type="text/html; charset=utf-8"
    )


def form_params(request: Request) -> MultiDict[str, str] | None:
    """The form body if the request is ``application/x-www-form-urlencoded``, else ``None``."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return None
    return request.form


def repeated_params(params: MultiDict[str, str], names: tuple[str, ...] | None = None) -> list[str]:
    """Names that occur more than once (RFC 6749 §3.2: parameters must not repeat)."""
    keys = names if names is not None else tuple(params.keys())
    return [k for k in keys if len(params.getlist(k)) > 1]
