"""Verification of an external subject token against federation policies (§A.3-A.4).

A subject JWT is accepted only when a policy names its issuer *exactly*, its signature verifies
with that policy's keys (``jwks_json``, ``jwks_uri``, or the issuer's discovery document,
fetched through the sandbox and cached), it is RS256 or ES256 with no ``crit`` header, it is
within ``exp``/``nbf`` (with the authority's skew), its ``aud`` contains one of the policy's
audiences, and its subject claim is present (account policies) or equals the policy's
``subject`` exactly (service-principal policies). Refusals never quote the token.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import jwt

from mocks.core.http import OAuthFailure
from mocks.core.jose import SUPPORTED_ALGS
from mocks.core.server import SandboxContext
from mocks.databricks.models import Authority, FederationPolicy

JWKS_CACHE_SECONDS = 300.0
_NO_TIME_CHECKS = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
}


def _unavailable(text: str) -> OAuthFailure:
    return OAuthFailure("temporarily_unavailable", text, 503)


class _JwksCache:
    """Issuer keys fetched through the sandbox, cached per URL, refetched on an unknown kid."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self._entries: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._discovered: dict[str, str] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._discovered.clear()

    def key(self, jwks_uri: str, kid: str | None) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(jwks_uri)
        if cached is not None and now - cached[0] < JWKS_CACHE_SECONDS and kid in cached[1]:
            return cached[1][kid]
        keys = self._fetch(jwks_uri)
        with self._lock:
            self._entries[jwks_uri] = (now, keys)
        return keys.get(kid) if kid is not None else None

    def _fetch(self, jwks_uri: str) -> dict[str, dict[str, Any]]:
        try:
            response = self.context.http().get(jwks_uri)
            data = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            raise _unavailable("The issuer's signing keys could not be retrieved.") from None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, list):
            raise _unavailable("The issuer's signing keys could not be retrieved.")
        return _by_kid(keys)

    def discover(self, issuer: str) -> str:
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
            raise _unavailable("The issuer's discovery document could not be read.")
        with self._lock:
            self._discovered[issuer] = uri
        return uri


def _by_kid(keys: list[Any]) -> dict[str, dict[str, Any]]:
    return {k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}


class SubjectVerifier:
    """Checks subject tokens for one account; holds the JWKS cache of trusted issuers."""

    def __init__(self, context: SandboxContext) -> None:
        self._jwks = _JwksCache(context)

    def clear(self) -> None:
        self._jwks.clear()

    def _jwk(self, policy: FederationPolicy, kid: str | None) -> dict[str, Any] | None:
        if policy.jwks_json is not None:
            return _by_kid(json.loads(policy.jwks_json).get("keys", [])).get(kid or "")
        uri = policy.jwks_uri or self._jwks.discover(policy.issuer)
        return self._jwks.key(uri, kid)

    def verify(
        self, authority: Authority, token: str, policies: list[FederationPolicy], now: float
    ) -> tuple[dict[str, Any], FederationPolicy, str]:
        """``(claims, matching policy, subject value)`` or an :class:`OAuthFailure`."""

        def fail(text: str) -> OAuthFailure:
            return OAuthFailure(authority.subject_error_code, text, authority.subject_error_status)

        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise fail("The subject token is not a well-formed JWT.") from None
        alg = header.get("alg")
        if alg not in SUPPORTED_ALGS:
            raise fail("The subject token must be signed with RS256 or ES256.")
        if "crit" in header:
            raise fail("The subject token uses unsupported critical header parameters.")
        issuer = unverified.get("iss")
        candidates = [p for p in policies if isinstance(issuer, str) and p.issuer == issuer]
        if not candidates:
            raise fail("The subject token issuer is not trusted by any federation policy.")
        claims = self._verified_claims(token, header, candidates, fail)
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise fail("The subject token has no expiry.")
        if exp + authority.skew <= now:
            raise fail("The subject token has expired.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - authority.skew > now:
            raise fail("The subject token is not yet valid.")
        aud = claims.get("aud")
        audiences = set([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else [])
        candidates = [p for p in candidates if audiences & set(p.audiences)]
        if not candidates:
            raise fail("The subject token audience is not accepted by the federation policy.")
        for policy in candidates:
            value = claims.get(policy.subject_claim)
            if not isinstance(value, str) or not value:
                continue
            if policy.subject is None or value == policy.subject:
                return claims, policy, value
        if all(p.subject is None for p in candidates):
            raise fail(f"The subject token has no '{candidates[0].subject_claim}' claim.")
        raise fail("The subject token's subject does not match the federation policy.")

    def _verified_claims(
        self,
        token: str,
        header: dict[str, Any],
        candidates: list[FederationPolicy],
        fail: Any,
    ) -> dict[str, Any]:
        alg = header["alg"]
        found_key = False
        for policy in candidates:
            jwk = self._jwk(policy, header.get("kid"))
            if jwk is None:
                continue
            found_key = True
            try:
                public = jwt.PyJWK(jwk)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                continue
            if public.algorithm_name != alg:
                raise fail("The subject token algorithm does not match its issuer's key.")
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    public.key,
                    algorithms=[alg],
                    options=_NO_TIME_CHECKS,  # type: ignore[arg-type]
                )
            except jwt.InvalidTokenError:
                continue
            return claims
        if not found_key:
            raise fail("The subject token was not signed by a key of its issuer.")
        raise fail("The subject token signature is invalid.")
