"""Evidence capture: every HTTP exchange a scenario makes, recorded and redacted.

The recorder wraps one ``httpx.Client``. Bodies are parsed (form, JSON) and secrets replaced by
their descriptions (:mod:`mocks.core.redact`): a JWT becomes its decoded header and claims plus
a fingerprint; anything else secret becomes a mask. Query strings and ``Location`` headers are
treated the same way because authorization codes travel there.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from harness.results import Exchange
from mocks.core.redact import SECRET_FIELDS, mask, redact_header, redact_mapping, redact_text

BODY_LIMIT = 4096


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [
        (k, mask(v) if k.lower() in SECRET_FIELDS and v else redact_text(v))
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="<>=: ")))


def redact_body(content: bytes, content_type: str) -> Any:
    if not content:
        return None
    text = content[: BODY_LIMIT * 4].decode("utf-8", "replace")
    if "application/x-www-form-urlencoded" in content_type:
        return redact_mapping(dict(parse_qsl(text, keep_blank_values=True)))
    if "json" in content_type:
        try:
            return redact_mapping(json.loads(text))
        except ValueError:
            pass
    text = redact_text(text)
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"... ({len(text)} chars)"


def redact_headers(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        out[name] = redact_url(value) if name.lower() == "location" else redact_header(name, value)
    return out


class EvidenceRecorder:
    """Sends requests and keeps a redacted :class:`Exchange` for each."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.exchanges: list[Exchange] = []
        self.step = 0

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        request = self.client.build_request(method, url, **kwargs)
        started = time.perf_counter()
        seq = len(self.exchanges) + 1
        exchange = Exchange(
            seq=seq,
            step=self.step,
            method=method,
            url=redact_url(str(request.url)),
            request_headers=redact_headers(request.headers),
            request_body=redact_body(request.read(), request.headers.get("content-type", "")),
            status=None,
            response_headers={},
            response_body=None,
            duration_ms=0.0,
        )
        self.exchanges.append(exchange)
        try:
            response = self.client.send(request)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {redact_text(str(exc))}"
            exchange.duration_ms = (time.perf_counter() - started) * 1000
            raise
        exchange.duration_ms = (time.perf_counter() - started) * 1000
        exchange.status = response.status_code
        exchange.response_headers = redact_headers(response.headers)
        exchange.response_body = redact_body(
            response.content, response.headers.get("content-type", "")
        )
        return response

    @property
    def last_seq(self) -> int:
        return len(self.exchanges)

    def curl(self, seq: int) -> str:
        """A ``curl`` command reproducing exchange ``seq`` with every secret elided."""
        ex = self.exchanges[seq - 1]
        parts = ["curl", "-i", "-X", ex.method, f"'{ex.url}'"]
        for name, value in ex.request_headers.items():
            if name.lower() in (
                "host",
                "accept-encoding",
                "connection",
                "user-agent",
                "content-length",
            ):
                continue
            shown = "<elided>" if "redacted" in value else value
            if name.lower() == "authorization":
                shown = value.split(" ", 1)[0] + " <elided>"
            parts.append(f"-H '{name}: {shown}'")
        ctype = next((v for k, v in ex.request_headers.items() if k.lower() == "content-type"), "")
        if isinstance(ex.request_body, dict) and "json" in ctype:
            parts.append(f"--data '{json.dumps(ex.request_body)}'")
        elif isinstance(ex.request_body, dict):
            form = "&".join(
                f"{k}={'<elided>' if not isinstance(v, str) or 'redacted' in v else v}"
                for k, v in ex.request_body.items()
            )
            parts.append(f"--data '{form}'")
        elif isinstance(ex.request_body, str):
            parts.append("--data '<body elided>'")
        return " ".join(parts)
