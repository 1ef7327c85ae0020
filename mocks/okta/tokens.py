"""Minting and verifying the org's JWTs: ID tokens, user and service access tokens.

Claims follow ``vendor-fidelity.md`` §C.3: the ID token's ``sub`` is the user id, the access
token's the login (with ``uid``, ``cid`` and ``scp``). Every access token is registered by
``jti`` with its refresh-token family, so that revoking a family (or a reset) ends it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import jwt

from mocks.okta.constants import INVALID_SCOPE, NO_DEFAULT_SCOPES, OIDC_SCOPES, OktaError
from mocks.okta.directory import Directory
from mocks.okta.records import OktaClient, OktaUser
from mocks.okta.servers import AuthorizationServers


class TokenIssuer(Directory, AuthorizationServers):
    """Signs tokens with the right server's keys and decides whether a token is still live."""

    def token_family_active(self, jti: str) -> bool:
        """Whether an access token (by ``jti``) was issued here and its family is not revoked."""
        with self._lock:
            entry = self.access_tokens.get(jti)
            return entry is not None and (entry[0] is None or entry[0] not in self.revoked_families)

    def family_of(self, jti: str) -> str | None:
        """The refresh-token family an access token belongs to (``None``: none, or unknown)."""
        with self._lock:
            entry = self.access_tokens.get(jti)
            return entry[0] if entry is not None else None

    def claim_values(
        self, server_id: str, user: OktaUser, scopes: Iterable[str], token: str
    ) -> dict[str, Any]:
        """The server's configured claims (:class:`ClaimRule`) for one token kind and scopes."""
        wanted = set(scopes)
        values: dict[str, Any] = {}
        for rule in self.servers[server_id].claims:
            if token in rule.tokens and (not rule.scopes or wanted & set(rule.scopes)):
                value = rule.evaluate(user)
                if value is not None:
                    values[rule.name] = value
        return values

    def mint_id_token(
        self,
        login: str,
        client_id: str,
        *,
        scopes: Iterable[str] = ("openid", "email"),
        nonce: str | None = None,
        lifetime: int | None = None,
        extra_claims: dict[str, Any] | None = None,
        server_id: str = "default",
        auth_time: float | None = None,
    ) -> str:
        """An ID token as Okta issues it: ``sub`` is the user id (``00u…``), ``aud`` the client."""
        user = self._user(login)
        scopes = list(scopes)
        now = int(self.now())
        claims: dict[str, Any] = {
            "sub": user.id,
            "ver": 1,
            "iss": self.issuer(server_id),
            "aud": client_id,
            "iat": now,
            "exp": now + (self.id_token_lifetime if lifetime is None else lifetime),
            "jti": "ID." + self.context.ids.token_urlsafe(32),
            "amr": ["pwd"],
            "idp": "00o" + hashlib.sha256(self.domain.encode()).hexdigest()[:17],
            "auth_time": int(auth_time if auth_time is not None else now),
        }
        if nonce:
            claims["nonce"] = nonce
        if "email" in scopes:
            claims.update(email=user.email, email_verified=True)
        if "profile" in scopes:
            # Thin profile in the ID token when an access token exists; userinfo has the rest.
            claims.update(name=user.name, preferred_username=user.login)
        claims.update(self.claim_values(server_id, user, scopes, "id_token"))
        claims.update(extra_claims or {})
        return self.servers[server_id].keys.sign(claims)

    def mint_access_token(
        self,
        login: str,
        client_id: str,
        *,
        scopes: Iterable[str] = ("openid", "email"),
        lifetime: int | None = None,
        server_id: str = "default",
        auth_time: float | None = None,
        _family: str | None = None,
    ) -> str:
        """A user access token: ``sub`` is the login, ``uid`` the user id, ``scp`` an array.

        Every access token is registered by ``jti`` so that userinfo accepts only tokens
        this org issued since its last reset; one minted here directly belongs to no
        refresh-token family, so only its expiry (or deprovisioning) ends it.
        """
        user = self._user(login)
        scopes = list(scopes)
        claims = self._access_claims(
            client_id, server_id, self.access_token_lifetime if lifetime is None else lifetime
        )
        claims.update(
            uid=user.id,
            scp=scopes,
            auth_time=int(auth_time if auth_time is not None else claims["iat"]),
            sub=user.login,
        )
        claims.update(self.claim_values(server_id, user, scopes, "access_token"))
        return self._register_and_sign(server_id, claims, _family)

    def mint_service_token(
        self, client_id: str, *, scopes: Iterable[str], server_id: str = "default"
    ) -> str:
        """A ``client_credentials`` access token: ``sub`` = ``cid`` = the client, no ``uid``."""
        claims = self._access_claims(client_id, server_id, self.access_token_lifetime)
        claims.update(scp=list(scopes), sub=client_id)
        return self._register_and_sign(server_id, claims, None)

    def _access_claims(self, client_id: str, server_id: str, lifetime: int) -> dict[str, Any]:
        """The claims every access token starts with, in Okta's order (user or service)."""
        now = int(self.now())
        return {
            "ver": 1,
            "jti": "AT." + self.context.ids.token_urlsafe(32),
            "iss": self.issuer(server_id),
            "aud": self.audience(server_id),
            "iat": now,
            "exp": now + lifetime,
            "cid": client_id,
        }

    def _register_and_sign(self, server_id: str, claims: dict[str, Any], family: str | None) -> str:
        with self._lock:
            self.access_tokens[claims["jti"]] = (family, float(claims["exp"]))
        return self.servers[server_id].keys.sign(claims)

    def verify_access_token(
        self, token: str, server_id: str, *, user_required: bool = True
    ) -> dict[str, Any] | None:
        """Claims of a live access token of this server, else ``None``.

        Live means: signed by the server's keys, its ``iss`` and ``aud``, unexpired by the
        sandbox clock, issued since the last reset and not revoked, and (for user tokens) a
        user who is still active.
        """
        claims = self._signed_by(token, server_id)
        if claims is None or claims.get("iss") != self.issuer(server_id):
            return None
        if claims.get("aud") != self.audience(server_id):
            return None
        if "uid" not in claims and (user_required or "scp" not in claims):
            return None
        if float(claims.get("exp", 0)) <= self.now():
            return None
        if not self.token_family_active(str(claims.get("jti", ""))):
            return None
        if "uid" in claims:
            user = self.user_by_id(str(claims["uid"]))
            if user is None or not user.active:
                return None
        return claims

    def _signed_by(self, token: str, server_id: str) -> dict[str, Any] | None:
        """The claims of a JWT whose signature the server's keys verify; else ``None``."""
        server = self.server(server_id)
        if server is None:
            return None
        try:
            return server.keys.verify_signature(token)
        except jwt.InvalidTokenError:
            return None

    def verify_id_token(
        self, token: str, server_id: str, *, allow_expired: bool = False
    ) -> dict[str, Any] | None:
        """Claims of an ID token this server signed (``iss``; ``exp`` unless allowed)."""
        claims = self._signed_by(token, server_id)
        if (
            claims is None
            or claims.get("iss") != self.issuer(server_id)
            or not str(claims.get("jti", "")).startswith("ID.")
        ):
            return None
        if not allow_expired and float(claims.get("exp", 0)) <= self.now():
            return None
        return claims

    def client_credentials(
        self, client: OktaClient, server_id: str, scope: str | None
    ) -> dict[str, Any]:
        """The token response of a ``client_credentials`` grant (§C.2, C.3)."""
        scopes = self.requested_scopes(server_id, scope)
        if set(scopes) & set(OIDC_SCOPES):
            raise OktaError("invalid_scope", INVALID_SCOPE)
        access = self.mint_service_token(client.client_id, scopes=scopes, server_id=server_id)
        return {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "access_token": access,
            "scope": " ".join(scopes),
        }

    def requested_scopes(self, server_id: str, scope: str | None) -> list[str]:
        """A machine grant's scopes: the ``scope`` parameter, else the server's default scopes."""
        server = self.servers[server_id]
        scopes = list(dict.fromkeys((scope or "").split()))
        if not scopes:
            if not server.default_scopes:
                raise OktaError("invalid_scope", NO_DEFAULT_SCOPES)
            return list(server.default_scopes)
        if not set(scopes) <= set(server.scopes):
            raise OktaError("invalid_scope", INVALID_SCOPE)
        return scopes
