"""HTTP plumbing shared by the Okta and Databricks clients.

All upstream traffic goes through one ``httpx.Client`` (optionally via a proxy, never reading
proxy settings from the environment so the sandbox proxy is the only path). Upstream failures
become :class:`UpstreamError`, which keeps exactly what an operator needs (BR-04): the host,
the HTTP status, the upstream ``error``/``error_description`` and request id — and never a token.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
REQUEST_ID_HEADERS = ("x-request-id", "x-databricks-request-id", "x-okta-request-id")


def scrub(text: str, limit: int = 300) -> str:
    """Shorten upstream text for an error message and blank anything that looks like a JWT."""
    text = _JWT_LIKE.sub("[redacted-jwt]", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(eq=False)
class UpstreamError(Exception):
    """A failed upstream call. ``status`` is None when no HTTP answer arrived at all."""

    host: str
    status: int | None
    error: str | None = None
    description: str | None = None
    request_id: str | None = None

    @property
    def temporary(self) -> bool:
        """Unreachable or 5xx: worth retrying later, not the client's fault."""
        return self.status is None or self.status >= 500 or self.status == 429

    def summary(self) -> str:
        """``upstream <host> answered <status> <error>: <description>`` (tokens scrubbed)."""
        if self.status is None:
            return f"upstream {self.host} unreachable: {self.description or 'no answer'}"
        text = f"upstream {self.host} answered {self.status}"
        if self.error:
            text += f" {self.error}"
        if self.description:
            text += f": {self.description}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __str__(self) -> str:
        return self.summary()


def request_id_of(response: httpx.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return scrub(value, 100)
    return None


def error_from_response(response: httpx.Response) -> UpstreamError:
    """Build an :class:`UpstreamError` from a non-2xx answer (OAuth or Okta-style body)."""
    host = urlsplit(str(response.request.url)).netloc
    error = description = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_error = body.get("error") or body.get("errorCode") or body.get("error_code")
        raw_desc = body.get("error_description") or body.get("errorSummary") or body.get("message")
        error = scrub(str(raw_error), 80) if raw_error is not None else None
        description = scrub(str(raw_desc)) if raw_desc is not None else None
    elif response.content:
        description = scrub(response.text)
    return UpstreamError(host, response.status_code, error, description, request_id_of(response))


def post_form(
    http: httpx.Client,
    url: str,
    data: dict[str, str],
    *,
    auth: tuple[str, str] | None = None,
) -> tuple[dict[str, Any], httpx.Response]:
    """POST a form, return the JSON object answer; raise :class:`UpstreamError` otherwise."""
    host = urlsplit(url).netloc
    headers = {"Accept": "application/json"}
    if auth is not None:
        raw = f"{auth[0]}:{auth[1]}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
    try:
        response = http.post(url, data=data, headers=headers)
    except httpx.HTTPError as exc:
        raise UpstreamError(host, None, None, type(exc).__name__) from None
    if not response.is_success:
        raise error_from_response(response)
    try:
        body = response.json()
    except ValueError:
        raise UpstreamError(
            host, response.status_code, None, "answer is not JSON", request_id_of(response)
        ) from None
    if not isinstance(body, dict):
        raise UpstreamError(
            host, response.status_code, None, "answer is not a JSON object", request_id_of(response)
        )
    return body, response


def get_json(http: httpx.Client, url: str) -> dict[str, Any]:
    """GET a JSON object; raise :class:`UpstreamError` on any failure."""
    host = urlsplit(url).netloc
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise UpstreamError(host, None, None, type(exc).__name__) from None
    if not response.is_success:
        raise error_from_response(response)
    try:
        body = response.json()
    except ValueError:
        raise UpstreamError(host, response.status_code, None, "answer is not JSON") from None
    if not isinstance(body, dict):
        raise UpstreamError(host, response.status_code, None, "answer is not a JSON object")
    return body
