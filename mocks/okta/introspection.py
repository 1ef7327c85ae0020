"""Introspection and revocation (RFC 7662, RFC 7009) as Okta answers them (§C.5)."""

from __future__ import annotations

from typing import Any

from mocks.okta.records import OktaClient, hash_secret
from mocks.okta.tokens import TokenIssuer


class Introspection(TokenIssuer):
    """What a token is (for resource servers) and how a client gives one back."""

    def introspect(
        self, token: str, hint: str | None, client: OktaClient, server_id: str
    ) -> dict[str, Any]:
        """RFC 7662 as Okta answers (§C.5): the token's facts, or ``{"active": false}``.

        Access tokens are reported to any authenticated client of the org (a resource server
        introspects tokens issued to others); refresh tokens only to the client holding them.
        The hint decides which kind is tried first, as RFC 7662 §2.1 allows.
        """
        kinds = ["access_token", "refresh_token", "id_token"]
        if hint in kinds:
            kinds.remove(hint)
            kinds.insert(0, hint)
        for kind in kinds:
            if kind == "access_token":
                claims = self.verify_access_token(token, server_id, user_required=False)
                if claims is not None:
                    return self._introspect_access(claims)
            elif kind == "refresh_token":
                facts = self._introspect_refresh(token, client, server_id)
                if facts is not None:
                    return facts
            else:
                id_claims = self.verify_id_token(token, server_id)
                if id_claims is not None:
                    user = self.user_by_id(str(id_claims.get("sub")))
                    if user is not None and user.active:
                        return {"active": True, **id_claims}
        return {"active": False}

    def _introspect_access(self, claims: dict[str, Any]) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "scope": " ".join(claims.get("scp", [])),
            "client_id": claims["cid"],
        }
        if "uid" in claims:
            facts["username"] = claims["sub"]
        facts.update({k: claims[k] for k in ("exp", "iat", "sub", "aud", "iss", "jti")})
        if "uid" in claims:
            facts["uid"] = claims["uid"]
        return facts

    def _introspect_refresh(
        self, token: str, client: OktaClient, server_id: str
    ) -> dict[str, Any] | None:
        with self._lock:
            record = self.refresh_tokens.get(hash_secret(token))
            if record is None or record.client_id != client.client_id:
                return None
            if record.server_id != server_id or record.family in self.revoked_families:
                return None
            now = self.now()
            if record.expires_at <= now:
                return None
            if record.rotated_at is not None and now - record.rotated_at > self.refresh_leeway:
                return None
            user = self.users.get(record.user_id)
            if user is None or not user.active:
                return None
            return {
                "active": True,
                "token_type": "Bearer",
                "scope": " ".join(record.scopes),
                "client_id": record.client_id,
                "username": user.login,
                "exp": int(record.expires_at),
                "iat": int(record.issued_at),
                "sub": user.login,
                "aud": self.audience(server_id),
                "iss": self.issuer(server_id),
                "uid": user.id,
            }

    def revoke(self, token: str, client: OktaClient, server_id: str) -> None:
        """RFC 7009: revoke one of the client's tokens; anything else is silently ignored.

        A refresh token takes its family with it (the access tokens issued from the same
        login); an access token only itself. Okta answers 200 either way (§C.5).
        """
        with self._lock:
            record = self.refresh_tokens.get(hash_secret(token))
            if record is not None:
                if record.client_id == client.client_id and record.server_id == server_id:
                    self.revoked_families.add(record.family)
                return
            claims = self.verify_access_token(token, server_id, user_required=False)
            if claims is not None and claims.get("cid") == client.client_id:
                self.access_tokens.pop(str(claims["jti"]), None)
