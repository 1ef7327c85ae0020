"""The admin API under ``/_harness/`` (DESIGN §2): health, reset, clock, journal, faults, keys,
seed, tenants, sts-variants (known-bad token services, DESIGN §7).

It lives on the sandbox server's own address, where it can never collide with a vendor path.
Brokers and tools in another process use it; the CLI and pytest fixtures call the same Python
objects directly. Every answer is JSON; bad input gets an RFC 6749-style ``invalid_request``
with a one-line description, and nothing is changed by a request that was refused.

Mocks plug in through two optional capabilities of a service (see :mod:`mocks.core.server`):
``AdministeredService`` (``/_harness/tenants/<name>/…``, the service's own runtime control:
users, roles, workspaces, policies, clients) and ``KeyedService`` (``/_harness/keys``, key
rotation on demand for any tenant host).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from mocks.core.faults import FaultError
from mocks.core.http import json_response
from mocks.core.jose import SUPPORTED_ALGS, KeySet, generate_key

if TYPE_CHECKING:
    from mocks.core.server import SandboxServer

AdminHandler = Callable[["SandboxServer", Request, str], Response]


def handle_admin(server: SandboxServer, request: Request, name: str) -> Response:
    """Dispatch ``/_harness/<name>``; ``name`` may have a sub-path (``faults/<id>``)."""
    head, _, rest = name.partition("/")
    handler = _HANDLERS.get(head)
    if handler is None:
        return not_found(f"no admin endpoint {name!r}")
    return handler(server, request, rest)


# -- helpers shared by admin handlers (also used by the mocks' own admin routes) ---------------
def admin_params(request: Request) -> dict[str, Any] | None:
    """The JSON object body, else the form, else the query; ``None`` for a bad JSON body."""
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return dict(request.form.items()) or dict(request.args.items())


def bad_request(message: str) -> Response:
    return json_response({"error": "invalid_request", "error_description": message}, 400)


def not_found(message: str) -> Response:
    return json_response({"error": "not_found", "error_description": message}, 404)


def method_not_allowed(allowed: str) -> Response:
    return json_response(
        {"error": "invalid_request", "error_description": f"method not allowed; use {allowed}"},
        405,
        {"Allow": allowed},
    )


# -- handlers ------------------------------------------------------------------------------------
def _health(server: SandboxServer, request: Request, rest: str) -> Response:
    return json_response(
        {"status": "ok", "hosts": server.hosts, "clock": server.context.clock.now()}
    )


def _reset(server: SandboxServer, request: Request, rest: str) -> Response:
    if request.method != "POST":
        return method_not_allowed("POST")
    server.reset()
    return json_response({"status": "reset"})


def _clock(server: SandboxServer, request: Request, rest: str) -> Response:
    clock = server.context.clock
    if request.method == "GET":
        return json_response(clock.snapshot())
    if request.method != "POST":
        return method_not_allowed("GET, POST")
    params = admin_params(request)
    if params is None:
        return bad_request("body must be a JSON object or a form")
    try:
        if "advance" in params:
            clock.advance(float(params["advance"]))
        elif "set" in params:
            clock.set(float(params["set"]))
        else:
            return bad_request("give 'advance' (seconds) or 'set' (epoch seconds)")
    except (TypeError, ValueError):
        return bad_request("'advance' and 'set' must be numbers")
    return json_response(clock.snapshot())


def _journal(server: SandboxServer, request: Request, rest: str) -> Response:
    if request.method != "GET":
        return method_not_allowed("GET")
    args = request.args
    try:
        since = int(args.get("since", "0"))
    except ValueError:
        return bad_request("'since' must be an integer")
    entries = server.context.journal.entries(
        host=args.get("host"),
        path=args.get("path"),
        method=args.get("method"),
        token=args.get("token"),
        since=since,
    )
    return json_response({"entries": [e.to_dict() for e in entries]})


def _faults(server: SandboxServer, request: Request, fault_id: str) -> Response:
    engine = server.context.faults
    if request.method == "GET" and not fault_id:
        return json_response({"faults": [f.to_dict() for f in engine.active()]})
    if request.method == "POST" and not fault_id:
        params = admin_params(request) if request.mimetype == "application/json" else None
        if params is None:
            return bad_request("POST a JSON object describing the fault")
        try:
            fault = engine.add(params)
        except FaultError as exc:
            return bad_request(str(exc))
        return json_response(fault.to_dict(), 201)
    if request.method == "DELETE":
        if not fault_id:
            engine.clear()
            return json_response({"status": "cleared"})
        if engine.remove(fault_id):
            return json_response({"status": "removed", "id": fault_id})
        return not_found(f"no fault {fault_id!r}")
    return method_not_allowed("GET, POST, DELETE")


def _keys(server: SandboxServer, request: Request, rest: str) -> Response:
    """``GET ?host=`` lists a tenant's kids; ``POST {"host", "action": "rotate"|"remove"}``.

    Rotation publishes a new active key and keeps the old one verifiable until it is removed,
    as Okta does: brokers that cache a JWKS must refetch on an unknown ``kid``.
    """
    from mocks.core.server import KeyedService

    params = request.args.to_dict() if request.method == "GET" else admin_params(request)
    if params is None:
        return bad_request("body must be a JSON object or a form")
    host = str(params.get("host") or "").lower()
    if not host:
        return bad_request("give 'host': the tenant host whose keys to show or rotate")
    keyset = next(
        (
            ks
            for s in server.services()
            if isinstance(s, KeyedService) and (ks := s.keyset(host)) is not None
        ),
        None,
    )
    if keyset is None:
        return not_found(f"no signing keys for host {host!r}")
    if request.method == "POST":
        try:
            apply_key_action(keyset, params)
        except ValueError as exc:
            return bad_request(str(exc))
    elif request.method != "GET":
        return method_not_allowed("GET, POST")
    return json_response({"host": host, **keyset_view(keyset)})


def apply_key_action(keyset: KeySet, params: dict[str, Any]) -> None:
    """``{"action": "rotate", "alg"?}`` or ``{"action": "remove", "kid"}`` on one key set.

    Shared by ``/_harness/keys`` and the mocks' own key endpoints (Okta's per-server keys), so
    every key endpoint refuses the same way. Raises ``ValueError`` with the description, and
    changes nothing when it does.
    """
    action = params.get("action", "rotate")
    if action == "rotate":
        alg = str(params.get("alg") or keyset.active.alg)
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"'alg' must be one of {', '.join(SUPPORTED_ALGS)}")
        keyset.rotate(generate_key(alg))
    elif action == "remove":
        kid = params.get("kid")
        if not isinstance(kid, str) or keyset.find(kid) is None:
            raise ValueError("'remove' needs the 'kid' of a published key")
        keyset.remove(kid)  # ValueError for the last key
    else:
        raise ValueError("'action' must be 'rotate' or 'remove'")


def keyset_view(keyset: KeySet) -> dict[str, Any]:
    keys = keyset.keys()
    return {"active": keys[0].kid, "keys": [{"kid": k.kid, "alg": k.alg} for k in keys]}


def _seed(server: SandboxServer, request: Request, rest: str) -> Response:
    """``GET`` the seed; ``POST {"seed": n}`` (or ``null``) sets it and resets the sandbox.

    The reset is part of the contract: keys and ids are derived when state is built, so a
    seed takes effect on a fresh sandbox, and two runs seeded alike see the same tokens.
    """
    ids = server.context.ids
    if request.method == "POST":
        params = admin_params(request)
        if params is None or "seed" not in params:
            return bad_request("give 'seed': a non-negative integer, or null for random")
        seed = params["seed"]
        if isinstance(seed, str) and seed.isdigit():
            seed = int(seed)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            return bad_request("'seed' must be a non-negative integer, or null for random")
        ids.reseed(seed)
        server.reset()
    elif request.method != "GET":
        return method_not_allowed("GET, POST")
    return json_response({"seed": ids.seed})


def _tenants(server: SandboxServer, request: Request, rest: str) -> Response:
    from mocks.core.server import AdministeredService

    services = {s.name: s for s in server.services() if isinstance(s, AdministeredService)}
    name, _, sub = rest.partition("/")
    if not name:
        if request.method != "GET":
            return method_not_allowed("GET")
        return json_response({"tenants": {n: s.describe() for n, s in services.items()}})
    service = services.get(name)
    if service is None:
        return not_found(f"no service {name!r}; known: {', '.join(sorted(services))}")
    return service.admin(request, sub)


def _sts_variants(server: SandboxServer, request: Request, rest: str) -> Response:
    """Known-bad token services (:mod:`mocks.core.sts_variants`, DESIGN §7).

    ``GET`` lists every variant and the ones switched on; ``POST {"host", "variant",
    "keep_on_reset"?}`` switches a host (``host`` null or ``"*"``: every host; ``variant``
    null: back to the strict mock); ``DELETE [?host=]`` switches one host, or all, back.
    """
    from mocks.core.sts_variants import (
        ANY_HOST,
        PLATFORM_VARIANTS,
        STS_SERVICES,
        STS_VARIANTS,
        UnknownVariant,
        variants_of,
    )

    registry = variants_of(server.context)
    if request.method == "GET":
        return json_response(
            {
                "variants": STS_VARIANTS,
                "platform": sorted(PLATFORM_VARIANTS),
                "active": registry.active(),
            }
        )
    if request.method == "DELETE":
        host = request.args.get("host")
        if host:
            registry.set(None if host == ANY_HOST else host, None)
        else:
            registry.clear()
        return json_response({"active": registry.active()})
    if request.method != "POST":
        return method_not_allowed("GET, POST, DELETE")
    params = admin_params(request)
    if params is None or "variant" not in params:
        return bad_request("give 'variant' (a name, or null for the strict mock) and 'host'")
    host, name, keep = params.get("host"), params["variant"], params.get("keep_on_reset", False)
    if host is not None and not isinstance(host, str):
        return bad_request("'host' must be a string or null")
    if host == ANY_HOST:
        host = None
    if host is not None:
        service = server.service_for(host.lower())
        if service is None or getattr(service, "name", None) not in STS_SERVICES:
            return bad_request(f"{host!r} is not a token-service host of this sandbox")
    if name is not None and not isinstance(name, str):
        return bad_request("'variant' must be a string or null")
    if keep not in (True, False, "true", "false"):
        return bad_request("'keep_on_reset' must be a boolean")
    try:
        registry.set(host, name, keep_on_reset=keep in (True, "true"))
    except UnknownVariant as exc:
        return bad_request(str(exc))
    return json_response({"active": registry.active()})


_HANDLERS: dict[str, AdminHandler] = {
    "health": _health,
    "reset": _reset,
    "clock": _clock,
    "journal": _journal,
    "faults": _faults,
    "keys": _keys,
    "seed": _seed,
    "tenants": _tenants,
    "sts-variants": _sts_variants,
}
