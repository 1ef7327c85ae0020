"""A relying party's view of a foreign issuer's keys: fetched over HTTP, cached, verified.

Mocks that trust an external IdP (Snowflake External OAuth integrations, Databricks federation
policies) fetch the IdP's JWKS *through the sandbox*, exactly as the real service would over
the network, so faults such as a JWKS outage or a key rotation reach them. Keys are cached per
URL for :data:`MAX_AGE` seconds of sandbox-clock time (so a scenario that advances the clock
sees a refetch, as it would after that long in production) and refetched at once on an unknown
``kid``, which is how real relying parties survive a rotation. An issuer's ``jwks_uri`` can be
found from its OpenID discovery document (:meth:`JwksCache.discover`), cached until
:meth:`JwksCache.clear`.

Failures are exceptions, not HTTP answers: each relying party words them as its vendor does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from mocks.core.jose import SUPPORTED_ALGS

if TYPE_CHECKING:
    from mocks.core.server import SandboxContext

MAX_AGE = 300.0


class JwksUnavailable(Exception):
    """The issuer's keys (or discovery document) could not be retrieved or parsed."""


class DiscoveryUnavailable(JwksUnavailable):
    """The issuer's discovery document could not be read or names no ``jwks_uri``."""


def keys_by_kid(keys: list[Any]) -> dict[str, dict[str, Any]]:
    """The JWKs of a JWKS ``keys`` array by ``kid`` (entries without a string ``kid`` dropped)."""
    return {k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}


class JwksCache:
    """Issuer keys by JWKS URL, cached on the sandbox clock, refetched on an unknown ``kid``."""

    def __init__(self, context: SandboxContext, *, max_age: float = MAX_AGE) -> None:
        self.context = context
        self.max_age = max_age
        self._entries: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._discovered: dict[str, str] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached key set and discovered ``jwks_uri`` (a tenant reset)."""
        with self._lock:
            self._entries.clear()
            self._discovered.clear()

    def key(self, jwks_uri: str, kid: str | None) -> dict[str, Any] | None:
        """The JWK with ``kid`` published at ``jwks_uri``, or ``None`` if it is not there."""
        now = self.context.clock.now()
        with self._lock:
            cached = self._entries.get(jwks_uri)
        if cached is not None and 0 <= now - cached[0] < self.max_age and kid in cached[1]:
            return cached[1][kid]
        keys = self._fetch(jwks_uri)
        with self._lock:
            self._entries[jwks_uri] = (now, keys)
        return keys.get(kid) if kid is not None else None

    def _fetch(self, jwks_uri: str) -> dict[str, dict[str, Any]]:
        try:
            response = self.context.http().get(jwks_uri)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            raise JwksUnavailable(jwks_uri) from None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, list):
            raise JwksUnavailable(jwks_uri)
        return keys_by_kid(keys)

    def discover(self, issuer: str) -> str:
        """The ``jwks_uri`` of ``issuer``'s OpenID discovery document, fetched once per issuer."""
        with self._lock:
            cached = self._discovered.get(issuer)
        if cached is not None:
            return cached
        try:
            response = self.context.http().get(f"{issuer}/.well-known/openid-configuration")
            uri = response.json().get("jwks_uri") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            uri = None
        if not isinstance(uri, str):
            raise DiscoveryUnavailable(issuer)
        with self._lock:
            self._discovered[issuer] = uri
        return uri


def verify_with_jwk(token: str, jwk: dict[str, Any]) -> dict[str, Any]:
    """Claims of ``token`` if ``jwk`` verifies its signature (RS256/ES256 only, alg pinned).

    Time claims are not checked here: callers compare them with the sandbox clock, which pyjwt
    cannot see. Raises :class:`jwt.InvalidTokenError` on any failure.
    """
    alg = jwt.get_unverified_header(token).get("alg")
    if alg not in SUPPORTED_ALGS:
        raise jwt.InvalidAlgorithmError("unsupported algorithm")
    try:
        public = jwt.PyJWK(jwk)
    except (jwt.PyJWKError, jwt.InvalidKeyError):
        raise jwt.InvalidKeyError("unusable key") from None
    if public.algorithm_name != alg:
        raise jwt.InvalidAlgorithmError("algorithm does not match the key")
    claims: dict[str, Any] = jwt.decode(
        token,
        public.key,
        algorithms=[alg],
        options={
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": False,
        },
    )
    return claims
