"""Verification of an external subject token against federation policies (§A.3-A.4).

A subject JWT is accepted only when a policy names its issuer *exactly*, its signature verifies
with that policy's keys (``jwks_json``, ``jwks_uri``, or the issuer's discovery document,
fetched through the sandbox and cached on the sandbox clock by
:class:`mocks.core.jwks.JwksCache`), it is RS256 or ES256 with no ``crit`` header, it is
within ``exp``/``nbf`` (with the authority's skew), its ``aud`` contains one of the policy's
audiences, and its subject claim is present (account policies) or equals the policy's
``subject`` exactly (service-principal policies). Refusals never quote the token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jwt

from mocks.core import sts_variants as bad
from mocks.core.http import OAuthFailure
from mocks.core.jose import SUPPORTED_ALGS
from mocks.core.jwks import (
    DiscoveryUnavailable,
    JwksCache,
    JwksUnavailable,
    keys_by_kid,
    verify_with_jwk,
)
from mocks.core.server import SandboxContext
from mocks.databricks.models import Authority, FederationPolicy


def _unavailable(text: str) -> OAuthFailure:
    return OAuthFailure("temporarily_unavailable", text, 503)


class SubjectVerifier:
    """Checks subject tokens for one account; holds the JWKS cache of trusted issuers."""

    def __init__(self, context: SandboxContext) -> None:
        self._context = context
        self._jwks = JwksCache(context)

    def clear(self) -> None:
        self._jwks.clear()

    def _jwk(self, policy: FederationPolicy, kid: str | None) -> dict[str, Any] | None:
        """The policy's key ``kid``: from its inline ``jwks_json``, its ``jwks_uri``, or the
        issuer's discovery document; an unreachable issuer is a 503, not a refused token."""
        if policy.jwks_json is not None:
            return keys_by_kid(json.loads(policy.jwks_json).get("keys", [])).get(kid or "")
        try:
            uri = policy.jwks_uri or self._jwks.discover(policy.issuer)
            return self._jwks.key(uri, kid)
        except DiscoveryUnavailable:
            raise _unavailable("The issuer's discovery document could not be read.") from None
        except JwksUnavailable:
            raise _unavailable("The issuer's signing keys could not be retrieved.") from None

    def verify(
        self, authority: Authority, token: str, policies: list[FederationPolicy], now: float
    ) -> tuple[dict[str, Any], FederationPolicy, str]:
        """``(claims, matching policy, subject value)`` or an :class:`OAuthFailure`."""

        def fail(text: str) -> OAuthFailure:
            return OAuthFailure(authority.subject_error_code, text, authority.subject_error_status)

        variant = bad.variant(self._context, authority.host)  # known-bad mock (selftest)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.InvalidTokenError, ValueError, TypeError):
            if variant == "500-on-malformed":
                raise bad.MalformedTokenCrash() from None
            raise fail("The subject token is not a well-formed JWT.") from None
        alg = header.get("alg")
        unsecured = variant == "accepts-alg-none" and bad.is_unsecured(alg)
        confused = variant == "accepts-hs256-public-key" and alg == "HS256"
        if alg not in SUPPORTED_ALGS and not (unsecured or confused):
            raise fail("The subject token must be signed with RS256 or ES256.")
        if "crit" in header:
            raise fail("The subject token uses unsupported critical header parameters.")
        issuer = unverified.get("iss")
        candidates = [p for p in policies if isinstance(issuer, str) and p.issuer == issuer]
        if not candidates and variant == "ignores-issuer":
            candidates = list(policies)  # any trusted key will do, whoever the token names
        if not candidates:
            raise fail("The subject token issuer is not trusted by any federation policy.")
        if unsecured:
            claims = bad.unverified_claims(token)
        else:
            claims = self._verified_claims(token, header, candidates, fail, confused=confused)
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise fail("The subject token has no expiry.")
        if exp + authority.skew <= now and variant != "accepts-expired":
            raise fail("The subject token has expired.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - authority.skew > now:
            raise fail("The subject token is not yet valid.")
        aud = claims.get("aud")
        audiences = set([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else [])
        if variant != "accepts-foreign-audience":
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
        fail: Callable[[str], OAuthFailure],
        *,
        confused: bool = False,
    ) -> dict[str, Any]:
        found_key = False
        for policy in candidates:
            jwk = self._jwk(policy, header.get("kid"))
            if jwk is None:
                continue
            found_key = True
            if confused:  # the ``accepts-hs256-public-key`` variant's RS->HS confusion
                claims = bad.hs256_with_public_pem(token, jwk)
                if claims is not None:
                    return claims
                continue
            try:
                return verify_with_jwk(token, jwk)
            except jwt.InvalidKeyError:  # an unusable key: another policy's may verify
                continue
            except jwt.InvalidAlgorithmError:
                raise fail("The subject token algorithm does not match its issuer's key.") from None
            except jwt.InvalidTokenError:
                continue
        if not found_key:
            raise fail("The subject token was not signed by a key of its issuer.")
        raise fail("The subject token signature is invalid.")
