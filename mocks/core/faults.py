"""The fault engine: make any mock misbehave on demand, reproducibly.

A fault has a *match* (host, path — exact or a glob —, method, form fields, client id), a
*window* (act on the first N matches, only after N matches, or with a seeded probability) and
an *effect*. Effects at the HTTP layer: ``status`` (any status and body), ``latency``,
``reset`` (TCP reset), ``empty`` (connection closed with no reply), ``truncate`` (body cut
short of its Content-Length), ``malformed_json``, ``rate_limit`` (429 with ``Retry-After``).
Effects at the token-protocol layer: ``drop_field`` (remove a member of a JSON response, e.g.
``issued_token_type``), ``set_field`` (e.g. a wrong ``token_type``), ``jwks_outage`` (503 on
the tenant's key endpoints) and ``clock_skew`` (the matched tenant sees the clock shifted).
Faults are per tenant (host) and are cleared by a sandbox reset. The same dictionaries drive
the Python API, ``/_harness/faults`` and the ``fault`` step of scenario files.
"""

from __future__ import annotations

import base64
import fnmatch
import itertools
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

EFFECTS = (
    "status",
    "latency",
    "reset",
    "empty",
    "truncate",
    "malformed_json",
    "rate_limit",
    "drop_field",
    "set_field",
    "jwks_outage",
    "clock_skew",
)
_JWKS_PATTERNS = ("*/keys", "*/v1/keys", "*/jwks", "*/jwks.json", "*/.well-known/jwks.json")
MAX_LATENCY = 30.0


class DropConnection(ConnectionError):
    """Raised through the WSGI stack so the server writes nothing and closes the socket.

    werkzeug treats a ``ConnectionError`` from the app as a dropped connection (no 500, no
    log); the sandbox's request handler then closes the socket, with an RST when ``reset``
    set ``SO_LINGER`` to zero beforehand.
    """


class FaultError(ValueError):
    """A fault specification that cannot be used (message names the field)."""


@dataclass
class Fault:
    id: str
    effect: str
    host: str | None = None
    path: str | None = None
    method: str | None = None
    form: dict[str, str] = field(default_factory=dict)
    client_id: str | None = None
    first: int | None = None
    after: int | None = None
    probability: float | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    matches: int = 0
    applied: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "effect": self.effect,
            "host": self.host,
            "path": self.path,
            "method": self.method,
            "form": self.form,
            "client_id": self.client_id,
            "first": self.first,
            "after": self.after,
            "probability": self.probability,
            "seed": self.seed,
            "params": self.params,
            "matches": self.matches,
            "applied": self.applied,
        }


def _client_id(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return unquote(decoded.partition(":")[0])
    value = request.form.get("client_id") if request.mimetype.endswith("urlencoded") else None
    return value or request.args.get("client_id")


class FaultEngine:
    """Holds the active faults and applies them around a mock's handler."""

    _PARAMS = {
        "status": {"status", "body", "headers"},
        "latency": {"seconds"},
        "reset": set(),
        "empty": set(),
        "truncate": {"keep"},
        "malformed_json": set(),
        "rate_limit": {"retry_after", "body"},
        "drop_field": {"field"},
        "set_field": {"field", "value"},
        "jwks_outage": {"status"},
        "clock_skew": {"seconds"},
    }
    _MATCH = {
        "host",
        "path",
        "method",
        "form",
        "client_id",
        "first",
        "after",
        "probability",
        "seed",
        "effect",
        "id",
    }

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # -- management -------------------------------------------------------------------
    def add(self, spec: dict[str, Any] | None = None, **kwargs: Any) -> Fault:
        """Install a fault from a dictionary (admin API, scenarios) or keyword arguments."""
        data = {**(spec or {}), **kwargs}
        fault = self._parse(data)
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _parse(self, data: dict[str, Any]) -> Fault:
        effect = data.get("effect")
        if effect not in EFFECTS:
            raise FaultError(f"'effect' must be one of {', '.join(EFFECTS)}")
        allowed = self._MATCH | self._PARAMS[effect]
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise FaultError(f"unknown field(s) for effect {effect!r}: {', '.join(unknown)}")
        for name in ("first", "after"):
            value = data.get(name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise FaultError(f"'{name}' must be a non-negative integer")
        probability = data.get("probability")
        if probability is not None and not (
            isinstance(probability, int | float) and 0 <= probability <= 1
        ):
            raise FaultError("'probability' must be a number between 0 and 1")
        form = data.get("form") or {}
        if not isinstance(form, dict) or not all(isinstance(v, str) for v in form.values()):
            raise FaultError("'form' must map field names to strings")
        params = {k: v for k, v in data.items() if k in self._PARAMS[effect]}
        self._check_params(effect, params)
        path = data.get("path")
        if effect == "jwks_outage" and path is None:
            path = "|".join(_JWKS_PATTERNS)
        seed = int(data.get("seed", 0))
        fault = Fault(
            id=str(data.get("id") or f"fault-{next(self._ids)}"),
            effect=effect,
            host=str(data["host"]).lower() if data.get("host") else None,
            path=path,
            method=str(data["method"]).upper() if data.get("method") else None,
            form={str(k): v for k, v in form.items()},
            client_id=data.get("client_id"),
            first=data.get("first"),
            after=data.get("after"),
            probability=probability,
            seed=seed,
            params=params,
        )
        fault._rng.seed(seed)
        return fault

    @staticmethod
    def _check_params(effect: str, params: dict[str, Any]) -> None:
        def number(name: str, low: float, high: float) -> None:
            value = params.get(name)
            if not isinstance(value, int | float) or not low <= value <= high:
                raise FaultError(f"'{name}' must be a number from {low:g} to {high:g}")

        if effect == "status":
            status = params.get("status")
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise FaultError("'status' must be an HTTP status code")
        elif effect == "latency":
            number("seconds", 0, MAX_LATENCY)
        elif effect == "clock_skew":
            number("seconds", -10 * 365 * 86400, 10 * 365 * 86400)
        elif effect in ("drop_field", "set_field") and not isinstance(params.get("field"), str):
            raise FaultError("'field' must name a JSON member")
        elif effect == "set_field" and "value" not in params:
            raise FaultError("'value' is required")
        elif effect == "rate_limit" and "retry_after" in params:
            number("retry_after", 0, 86400)
        elif effect == "truncate" and "keep" in params:
            number("keep", 0, 1)

    # -- matching ---------------------------------------------------------------------
    def _matches(self, fault: Fault, host: str, request: Request) -> bool:
        if fault.host is not None and fault.host != host:
            return False
        if fault.method is not None and fault.method != request.method:
            return False
        if fault.path is not None and not any(
            fnmatch.fnmatchcase(request.path, pattern) for pattern in fault.path.split("|")
        ):
            return False
        if fault.form:
            form = request.form if request.mimetype.endswith("urlencoded") else {}
            if any(form.get(k) != v for k, v in fault.form.items()):
                return False
        return fault.client_id is None or _client_id(request) == fault.client_id

    def select(self, host: str, request: Request) -> list[Fault]:
        """The faults that act on this request (their counters move even when they don't)."""
        chosen: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if not self._matches(fault, host, request):
                    continue
                fault.matches += 1
                if fault.first is not None and fault.matches > fault.first:
                    continue
                if fault.after is not None and fault.matches <= fault.after:
                    continue
                if fault.probability is not None and fault._rng.random() >= fault.probability:
                    continue
                fault.applied += 1
                chosen.append(fault)
        return chosen

    # -- application --------------------------------------------------------------------
    def apply(
        self,
        host: str,
        request: Request,
        handler: Callable[[], Response],
        *,
        skewed: Callable[[float, Callable[[], Response]], Response],
    ) -> Response:
        faults = self.select(host, request) if self._faults else []
        if not faults:
            return handler()
        skew = sum(f.params["seconds"] for f in faults if f.effect == "clock_skew")
        for fault in faults:
            if fault.effect == "latency":
                time.sleep(float(fault.params["seconds"]))  # injected latency, not a wait
        for fault in faults:
            early = self._short_circuit(fault, request)
            if early is not None:
                return early
        response = skewed(skew, handler) if skew else handler()
        for fault in faults:
            response = self._rewrite(fault, response)
        return response

    def _short_circuit(self, fault: Fault, request: Request) -> Response | None:
        params = fault.params
        if fault.effect == "status":
            body = params.get("body", "")
            headers = dict(params.get("headers") or {})
            if isinstance(body, dict | list):
                return Response(
                    json.dumps(body),
                    status=params["status"],
                    headers=headers,
                    content_type="application/json",
                )
            return Response(
                str(body),
                status=params["status"],
                headers=headers,
                content_type=headers.pop("Content-Type", "text/plain; charset=utf-8"),
            )
        if fault.effect == "jwks_outage":
            return Response(
                json.dumps({"error": "temporarily_unavailable"}),
                status=int(params.get("status", 503)),
                content_type="application/json",
            )
        if fault.effect == "rate_limit":
            retry = params.get("retry_after", 1)
            body = params.get("body") or {
                "error": "rate_limited",
                "error_description": "Too many requests.",
            }
            return Response(
                json.dumps(body),
                status=429,
                content_type="application/json",
                headers={"Retry-After": str(int(retry))},
            )
        if fault.effect in ("reset", "empty"):
            if fault.effect == "reset":
                sock = request.environ.get("werkzeug.socket")
                if isinstance(sock, socket.socket):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise DropConnection(fault.effect)
        return None

    @staticmethod
    def _rewrite(fault: Fault, response: Response) -> Response:
        if fault.effect == "truncate":
            body = response.get_data()
            keep = int(len(body) * float(fault.params.get("keep", 0.5)))
            truncated = Response(
                body[:keep], status=response.status_code, headers=dict(response.headers)
            )
            truncated.headers["Content-Length"] = str(len(body))  # promise more than is sent
            truncated.headers["Connection"] = "close"
            return truncated
        if fault.effect == "malformed_json":
            body = response.get_data()
            response.set_data(body[: max(1, len(body) // 2)] + b"\x00}")
            return response
        if fault.effect in ("drop_field", "set_field"):
            try:
                data = json.loads(response.get_data(as_text=True))
            except ValueError:
                return response
            if isinstance(data, dict):
                name = fault.params["field"]
                if fault.effect == "drop_field":
                    data.pop(name, None)
                else:
                    data[name] = fault.params["value"]
                response.set_data(json.dumps(data, separators=(",", ":")))
            return response
        return response
