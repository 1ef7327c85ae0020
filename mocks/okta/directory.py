"""The org's directory: users (sign-in, deprovisioning) and app integrations (OIDC clients).

Deprovisioning a user revokes their refresh-token families here, because that is what makes
every token of the user stop working at once (``vendor-fidelity.md`` §C.4).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

import jwt

from mocks.okta.constants import CLIENT_AUTH_METHODS, TOKEN_EXCHANGE
from mocks.okta.records import OktaClient, OktaUser
from mocks.okta.state import OrgState


class Directory(OrgState):
    """Users and clients of the org, looked up the way Okta does (logins case-insensitively)."""

    def add_user(
        self,
        login: str,
        password: str,
        *,
        user_id: str | None = None,
        given_name: str = "",
        family_name: str = "",
        email: str | None = None,
        groups: Iterable[str] = (),
        locale: str = "en_US",
        zoneinfo: str = "America/Los_Angeles",
        attributes: dict[str, Any] | None = None,
    ) -> OktaUser:
        """Create (or replace, by login) a user; ids look like Okta's: ``00u`` + 17 chars."""
        user = OktaUser(
            id=user_id or "00u" + self.context.ids.token_hex(9)[:17],
            login=login,
            password=password,
            email=email or login,
            given_name=given_name,
            family_name=family_name,
            groups=tuple(groups),
            locale=locale,
            zoneinfo=zoneinfo,
            attributes=dict(attributes or {}),
        )
        with self._lock:
            existing = self.user_by_login(login)
            if existing is not None:
                del self.users[existing.id]
            self.users[user.id] = user
        return user

    def user_by_login(self, login: str) -> OktaUser | None:
        """Okta logins are case-insensitive."""
        with self._lock:
            return next((u for u in self.users.values() if u.login.lower() == login.lower()), None)

    def user_by_id(self, user_id: str) -> OktaUser | None:
        with self._lock:
            return self.users.get(user_id)

    def deactivate_user(self, login: str) -> bool:
        """Deprovision: the user can no longer sign in, refresh, exchange or use any token.

        Refresh-token families are revoked; every access token names an inactive user, which
        userinfo, introspection and token exchange all check.
        """
        with self._lock:
            user = self.user_by_login(login)
            if user is None:
                return False
            user.active = False
            self.revoke_refresh_tokens(login)
            if self.auto_approve and self.auto_approve.lower() == login.lower():
                self.auto_approve = None
            return True

    def activate_user(self, login: str) -> bool:
        """Reactivate a deprovisioned user (revoked tokens stay revoked)."""
        with self._lock:
            user = self.user_by_login(login)
            if user is not None:
                user.active = True
            return user is not None

    def delete_user(self, login: str) -> bool:
        """Remove a user: as deactivation, and the id no longer resolves at all."""
        with self._lock:
            user = self.user_by_login(login)
            if user is None:
                return False
            self.deactivate_user(login)
            del self.users[user.id]
            return True

    def add_client(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        redirect_uris: Iterable[str],
        token_endpoint_auth_method: str = "client_secret_basic",
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        response_types: Iterable[str] = ("code",),
        post_logout_redirect_uris: Iterable[str] = (),
        jwks: dict[str, Any] | None = None,
        jwks_uri: str | None = None,
    ) -> OktaClient:
        """Register an app. ``none`` makes a public client (PKCE required, no secret).

        ``client_secret_jwt`` signs assertions with the secret (HS256/384/512);
        ``private_key_jwt`` with a key from ``jwks`` or ``jwks_uri`` and needs no secret.
        """
        method = token_endpoint_auth_method
        if method not in CLIENT_AUTH_METHODS:
            raise ValueError(
                f"token_endpoint_auth_method must be one of {', '.join(CLIENT_AUTH_METHODS)}"
            )
        if method in ("client_secret_basic", "client_secret_post", "client_secret_jwt") and (
            not client_secret
        ):
            raise ValueError(f"a {method} client needs a client_secret")
        if method == "private_key_jwt":
            if (jwks is None) == (jwks_uri is None):
                raise ValueError("a private_key_jwt client needs exactly one of jwks, jwks_uri")
            if jwks is not None:
                try:
                    jwt.PyJWKSet.from_dict(jwks)
                except (jwt.PyJWKError, jwt.PyJWKSetError, TypeError, AttributeError) as exc:
                    raise ValueError(f"jwks is not a usable JWK Set: {exc}") from None
        grants = list(grant_types)
        if method == "none" and {"client_credentials", TOKEN_EXCHANGE} & set(grants):
            raise ValueError("a public client cannot use client_credentials or token exchange")
        client = OktaClient(
            client_id=client_id,
            client_secret=client_secret if method not in ("none", "private_key_jwt") else None,
            redirect_uris=list(redirect_uris),
            token_endpoint_auth_method=method,
            grant_types=grants,
            response_types=list(response_types),
            post_logout_redirect_uris=list(post_logout_redirect_uris),
            jwks=jwks,
            jwks_uri=jwks_uri,
        )
        with self._lock:
            self.clients[client_id] = client
        return client

    def client(self, client_id: str) -> OktaClient | None:
        with self._lock:
            return self.clients.get(client_id)

    def remove_client(self, client_id: str) -> bool:
        with self._lock:
            return self.clients.pop(client_id, None) is not None

    def revoke_refresh_tokens(self, login: str) -> int:
        """Revoke every token family of a user; returns how many families were revoked.

        Their refresh tokens and the access tokens issued with them stop working, which is
        how a scenario makes a broker's refresh fail.
        """
        with self._lock:
            user = self.user_by_login(login)
            if user is None:
                return 0
            families = {t.family for t in self.refresh_tokens.values() if t.user_id == user.id}
            new = families - self.revoked_families
            self.revoked_families |= families
            return len(new)

    def authenticate(self, login: str, password: str) -> OktaUser | None:
        user = self.user_by_login(login)
        if user is None or not user.active:
            return None
        if not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        return user

    def _user(self, login: str) -> OktaUser:
        user = self.user_by_login(login)
        if user is None:
            raise KeyError(f"no Okta user {login!r}")
        return user
