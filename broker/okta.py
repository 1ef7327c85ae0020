"""The broker as a confidential OIDC client of an Okta custom authorization server.

Discovery and JWKS are fetched lazily and cached; the JWKS is fetched again when an ID token
names an unknown ``kid`` (Okta rotates keys). ID tokens are verified by signature, issuer,
audience, expiry against the injected clock (pyjwt's own time checks are disabled because they
read the real clock) and, at login, nonce.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt

from broker.upstream import UpstreamError, get_json, post_form

OKTA_SCOPES = "openid email profile offline_access"
ID_TOKEN_ALGORITHMS = ["RS256", "ES256"]


class IdTokenError(Exception):
    """The ID token failed verification; the message says which check (no token content)."""


@dataclass(frozen=True)
class OktaTokens:
    """What an Okta token response gave us (refresh token may be absent)."""

    id_token: str
    claims: dict[str, Any]
    refresh_token: str | None
    #: The access token for the authorization server's audience (``api://default``) and when
    #: it expires (from ``expires_in``): what session passthrough hands to Snowflake.
    access_token: str | None = None
    access_expires_at: float | None = None

    @property
    def user_id(self) -> str:
        return str(self.claims["sub"])

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])


def s256(verifier: str) -> str:
    """PKCE S256 code challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OktaClient:
    """Authorize URL, code exchange, refresh and ID token verification against one issuer."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        clock: Callable[[], float],
        scopes: str = OKTA_SCOPES,
    ) -> None:
        self._http = http
        #: What a login asks for (plus the resource's extra scopes, e.g. Snowflake roles).
        self.scopes = scopes
        self.issuer = issuer
        self.client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKSet | None = None

    def forget(self) -> None:
        """Drop cached discovery and keys (sandbox reset may have replaced them)."""
        with self._lock:
            self._discovery = None
            self._jwks = None

    # -- discovery and keys ------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        with self._lock:
            if self._discovery is not None:
                return self._discovery
        doc = get_json(self._http, f"{self.issuer}/.well-known/openid-configuration")
        if doc.get("issuer") != self.issuer:
            raise UpstreamError(
                self.issuer, 200, "invalid_discovery", "discovery issuer does not match"
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(name), str):
                raise UpstreamError(self.issuer, 200, "invalid_discovery", f"{name} missing")
        with self._lock:
            self._discovery = doc
        return doc

    def _keys(self, *, refresh: bool) -> jwt.PyJWKSet:
        with self._lock:
            if self._jwks is not None and not refresh:
                return self._jwks
        doc = get_json(self._http, self.discovery()["jwks_uri"])
        try:
            keys = jwt.PyJWKSet.from_dict(doc)
        except jwt.PyJWTError as exc:
            raise UpstreamError(self.issuer, 200, "invalid_jwks", str(exc)) from None
        with self._lock:
            self._jwks = keys
        return keys

    def _key_for(self, kid: str | None) -> Any:
        for refresh in (False, True):
            keys = self._keys(refresh=refresh)
            for key in keys.keys:
                if kid is None or key.key_id == kid:
                    return key.key
        raise IdTokenError(f"unknown signing key {kid!r}")

    # -- protocol steps ----------------------------------------------------------------
    def authorize_url(
        self,
        *,
        state: str,
        nonce: str,
        code_challenge: str,
        redirect_uri: str,
        extra_scopes: str = "",
    ) -> str:
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": f"{self.scopes} {extra_scopes}".strip(),
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        endpoint = self.discovery()["authorization_endpoint"]
        sep = "&" if "?" in endpoint else "?"
        return f"{endpoint}{sep}{urlencode(params)}"

    def _basic(self) -> tuple[str, str]:
        # RFC 6749 §2.3.1: form-urlencode id and secret before Basic encoding.
        return quote(self.client_id, safe=""), quote(self._client_secret, safe="")

    def exchange_code(
        self, *, code: str, verifier: str, redirect_uri: str, nonce: str
    ) -> OktaTokens:
        body, _ = post_form(
            self._http,
            self.discovery()["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=self._basic(),
        )
        return self._tokens(body, nonce=nonce)

    def refresh(
        self, refresh_token: str, *, expected_user: str, scope: str | None = None
    ) -> OktaTokens:
        """Refresh at Okta. Without ``scope`` Okta grants what the login granted (a Snowflake
        role scope included; naming OKTA_SCOPES would narrow it away); with one, a narrower
        access token (RFC 6749 §6: a subset of the original grant), as session passthrough
        needs for a one-role Snowflake token out of a login that granted several roles."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope:
            form["scope"] = scope
        body, _ = post_form(
            self._http, self.discovery()["token_endpoint"], form, auth=self._basic()
        )
        tokens = self._tokens(body, nonce=None)
        if tokens.user_id != expected_user:
            raise IdTokenError("refreshed ID token is for a different user")
        return tokens

    def _tokens(self, body: dict[str, Any], *, nonce: str | None) -> OktaTokens:
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise IdTokenError("Okta answered without an id_token")
        claims = self.verify_id_token(id_token, nonce=nonce)
        refresh = body.get("refresh_token")
        access = body.get("access_token")
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else None
        )
        return OktaTokens(
            id_token,
            claims,
            refresh if isinstance(refresh, str) and refresh else None,
            access if isinstance(access, str) and access else None,
            self._clock() + lifetime if lifetime and lifetime > 0 else None,
        )

    def verify_id_token(self, token: str, *, nonce: str | None) -> dict[str, Any]:
        """Verify an Okta ID token; ``nonce`` is checked when given (at login)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise IdTokenError(f"malformed ID token: {exc}") from None
        if header.get("alg") not in ID_TOKEN_ALGORITHMS:
            raise IdTokenError(f"ID token algorithm {header.get('alg')!r} not accepted")
        key = self._key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=self.client_id,
                issuer=self.issuer,
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "iat", "sub", "iss", "aud"],
                },
            )
        except jwt.PyJWTError as exc:
            raise IdTokenError(f"ID token rejected: {exc}") from None
        now = self._clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= now:
            raise IdTokenError("ID token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + 60:
            raise IdTokenError("ID token is not valid yet")
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise IdTokenError("ID token nonce does not match")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise IdTokenError("ID token has no subject")
        return claims
