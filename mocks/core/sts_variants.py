"""Known-bad variants of the mock token services (DESIGN §7, issue #5 "Test the tester").

A conformance check that never fails is worthless, so the mocks can be switched, per tenant
host, into named known-bad behaviours, each a real code path in the handler it breaks (a
validation variant really skips the validation; it does not rewrite a good answer). They are
off by default, and a sandbox reset switches them off again unless they were set with
``keep_on_reset`` (how ``mcp-harness selftest`` runs whole scenarios against a bad platform).

Switches: :meth:`mocks.sandbox.Sandbox.set_sts_variant` in-process, or the admin API
``/_harness/sts-variants`` (see :mod:`mocks.core.admin`). The registry lives beside the
sandbox context (one per sandbox), so mocks find it from the context they already hold.

Which mock honours which variant: the Databricks token endpoints (every workspace and the
account host) honour all of them; the Snowflake token-exchange endpoint honours the STS
variants (not the two platform ones, which are Databricks resource-server behaviour).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import threading
import weakref
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from mocks.core.server import SandboxContext

#: The known-bad token services (contract C3): name -> what the mock then does wrong.
STS_VARIANTS: dict[str, str] = {
    "accepts-expired": "accepts a subject token whose exp has passed",
    "accepts-foreign-audience": "accepts a subject token whose aud names no trusted audience",
    "accepts-alg-none": "accepts an unsecured subject token (alg none, any spelling) unverified",
    "accepts-hs256-public-key": "verifies HS256 with the issuer's RSA public key PEM as the "
    "HMAC secret (RS->HS algorithm confusion)",
    "ignores-issuer": "accepts a token whose iss is not the policy's, its key found by kid "
    "among every trusted JWKS",
    "no-issued-token-type": "omits issued_token_type from token-exchange responses",
    "401-not-400": "answers rejected requests 401 instead of 400",
    "no-cache-control": "omits Cache-Control: no-store from token-endpoint responses",
    "accepts-get": "issues tokens for a GET with the parameters in the query string",
    "leaks-subject-token": "echoes the submitted subject token inside error_description",
    "500-on-malformed": "a malformed subject token crashes the endpoint: 500 with an HTML page",
    # platform variants: the workspace as a resource server (scenario checks ISO-06, DEP-05)
    "workspace-accepts-foreign-token": "the workspace accepts an access token issued by another "
    "workspace or the account of the same Databricks account",
    "accepts-deprovisioned-user": "the workspace accepts access tokens of users removed from "
    "the account until they expire",
}
#: Variants of the platform (the workspace as a resource server), not of its token endpoint.
PLATFORM_VARIANTS = frozenset({"workspace-accepts-foreign-token", "accepts-deprovisioned-user"})
#: Services whose hosts honour variants (``MockService.name``).
STS_SERVICES = ("databricks", "snowflake")
#: The key of a variant set for every host at once.
ANY_HOST = "*"


class UnknownVariant(ValueError):
    """A variant name that is not in :data:`STS_VARIANTS` (message lists the valid ones)."""


def check_name(name: str) -> str:
    if name not in STS_VARIANTS:
        raise UnknownVariant(
            f"unknown STS variant {name!r}; valid variants: {', '.join(STS_VARIANTS)}"
        )
    return name


class StsVariants:
    """The variant each host runs: one per host, or one for every host (:data:`ANY_HOST`).

    A host-specific entry wins over the every-host one. Entries set with ``keep_on_reset``
    are what a reset restores; all others are dropped by it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, str] = {}
        self._kept: dict[str, str] = {}

    def set(self, host: str | None, name: str | None, *, keep_on_reset: bool = False) -> None:
        key = (host or ANY_HOST).lower()
        if name is not None:
            check_name(name)
        with self._lock:
            for table in (self._active, self._kept) if keep_on_reset else (self._active,):
                if name is None:
                    table.pop(key, None)
                else:
                    table[key] = name
            if name is None:
                self._kept.pop(key, None)

    def get(self, host: str) -> str | None:
        with self._lock:
            return self._active.get(host.lower(), self._active.get(ANY_HOST))

    def is_on(self, host: str, name: str) -> bool:
        return self.get(host) == name

    def active(self) -> dict[str, str]:
        """``{host or "*": variant}`` of every variant switched on."""
        with self._lock:
            return dict(self._active)

    def clear(self) -> None:
        """Switch every variant off, the kept ones too."""
        with self._lock:
            self._active.clear()
            self._kept.clear()

    def reset(self) -> None:
        """What a sandbox reset does: only the ``keep_on_reset`` variants stay on."""
        with self._lock:
            self._active = dict(self._kept)


_REGISTRIES: weakref.WeakKeyDictionary[SandboxContext, StsVariants] = weakref.WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def variants_of(context: SandboxContext) -> StsVariants:
    """The registry of one sandbox (created on first use)."""
    with _REGISTRIES_LOCK:
        registry = _REGISTRIES.get(context)
        if registry is None:
            registry = _REGISTRIES[context] = StsVariants()
        return registry


def variant(context: SandboxContext, host: str) -> str | None:
    """The variant ``host`` runs in this sandbox, or None (the strict, good mock)."""
    with _REGISTRIES_LOCK:
        registry = _REGISTRIES.get(context)
    return registry.get(host) if registry is not None else None


# -- the bad code paths shared by the mocks ----------------------------------------------------
class MalformedTokenCrash(Exception):
    """``500-on-malformed``: a token parser error nobody caught. Never carries the token."""


def is_unsecured(alg: Any) -> bool:
    """``alg: none`` in any spelling (what ``accepts-alg-none`` lets through)."""
    return isinstance(alg, str) and alg.lower() == "none"


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload, no signature check at all (``accepts-alg-none``)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def hs256_with_public_pem(token: str, jwk: dict[str, Any]) -> dict[str, Any] | None:
    """``accepts-hs256-public-key``: the RS→HS confusion bug of a verifier that hands its
    stored key material (the issuer's public key as PEM) to a verify function that trusts the
    token's ``alg``: an HMAC "verifies" with the public PEM as the secret. Claims, or None."""
    try:
        public = jwt.PyJWK(jwk).key
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (jwt.PyJWKError, jwt.InvalidKeyError, AttributeError, TypeError, ValueError):
        return None
    signing_input, _, signature = token.rpartition(".")
    expected = base64.urlsafe_b64encode(
        hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    )
    if not hmac.compare_digest(expected.rstrip(b"=").decode(), signature):
        return None
    payload = signing_input.partition(".")[2]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def crash_page() -> Response:
    """``500-on-malformed``: what an unhandled exception looks like behind a web framework."""
    body = (
        "<!doctype html><html><head><title>500 Internal Server Error</title></head><body>"
        "<h1>Internal Server Error</h1><p>"
        + html.escape("jwt.exceptions.DecodeError: Invalid token: not enough segments")
        + "</p></body></html>"
    )
    return Response(body, status=500, content_type="text/html; charset=utf-8")


def leak(description: str, subject_token: str | None) -> str:
    """``leaks-subject-token``: the classic debugging aid left in production."""
    if not subject_token:
        return description
    return f"{description} (received subject_token={subject_token})"


def strip_no_store(response: Response) -> Response:
    """``no-cache-control``: the token endpoint forgets RFC 6749 §5.1's caching headers."""
    response.headers.pop("Cache-Control", None)
    return response
