"""Mock Okta org state: users, OIDC clients, authorization codes, tokens (moto-style models).

Claims and lifetimes follow ``vendor-fidelity.md`` §C: the ID token's ``sub`` is the Okta user
id (``00u…``) while the access token's ``sub`` is the login, with ``uid``, ``cid`` and ``scp``
(an array); refresh tokens rotate with a 30 s leeway and reuse after the leeway revokes the
whole family (§C.4). All times come from the sandbox clock.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mocks.core.http import OAuthFailure
from mocks.core.jose import KeySet, fixture_key
from mocks.core.server import SandboxContext

ACCESS_TOKEN_LIFETIME = 3600
ID_TOKEN_LIFETIME = 3600
AUTH_CODE_LIFETIME = 300
REFRESH_IDLE_WINDOW = 7 * 24 * 3600
REFRESH_ROTATION_LEEWAY = 30
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


OktaError = OAuthFailure
"""Okta's OAuth errors (statuses and texts from its catalogue, ``vendor-fidelity.md`` §C.6)."""


@dataclass
class OktaUser:
    id: str
    login: str
    password: str = field(repr=False)
    email: str
    given_name: str = ""
    family_name: str = ""
    groups: tuple[str, ...] = ()
    active: bool = True

    def profile_claims(self) -> dict[str, Any]:
        name = " ".join(p for p in (self.given_name, self.family_name) if p) or self.login
        return {
            "name": name,
            "preferred_username": self.login,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "locale": "en_US",
            "zoneinfo": "America/Los_Angeles",
        }


@dataclass
class OktaClient:
    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uris: list[str]
    token_endpoint_auth_method: str = "client_secret_basic"
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    response_types: list[str] = field(default_factory=lambda: ["code"])

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Exact match, except that loopback URIs match with any port (RFC 8252 §7.3)."""
        if uri in self.redirect_uris:
            return True
        parts = urlsplit(uri)
        if parts.scheme != "http" or parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            return False
        portless = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]).geturl()
        return portless in self.redirect_uris


@dataclass
class AuthRequest:
    """A pending ``/v1/authorize`` request waiting for the user to sign in."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    server_id: str
    expires_at: float


@dataclass
class AuthCode:
    request: AuthRequest
    user_id: str
    auth_time: float
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    family: str
    client_id: str
    user_id: str
    scopes: list[str]
    server_id: str
    auth_time: float
    expires_at: float
    """Idle expiry, pushed forward on every use."""
    rotated_at: float | None = None
    revoked: bool = False


@dataclass
class AuthorizationServer:
    id: str
    audience: str


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class OktaOrg:
    """One Okta org (``acme.okta.test``) with its custom authorization servers."""

    def __init__(self, context: SandboxContext, domain: str) -> None:
        self.context = context
        self.domain = domain.lower()
        self._lock = threading.RLock()
        self.auto_approve: str | None = None
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------
    def reset(self) -> None:
        """Everything back to empty; the sandbox applies its default data afterwards."""
        with self._lock:
            self.keys = KeySet([fixture_key(f"okta:{self.domain}")])
            self.servers: dict[str, AuthorizationServer] = {
                "default": AuthorizationServer("default", "api://default")
            }
            self.users: dict[str, OktaUser] = {}
            self.clients: dict[str, OktaClient] = {}
            self.requests: dict[str, AuthRequest] = {}
            self.codes: dict[str, AuthCode] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.revoked_families: set[str] = set()
            self.access_families: dict[str, str] = {}
            self.auto_approve = None

    def now(self) -> float:
        return self.context.clock.now()

    # -- directory ---------------------------------------------------------------------
    def issuer(self, server_id: str = "default") -> str:
        return f"http://{self.domain}/oauth2/{server_id}"

    def server(self, server_id: str) -> AuthorizationServer | None:
        return self.servers.get(server_id)

    def add_user(
        self,
        login: str,
        password: str,
        *,
        user_id: str | None = None,
        given_name: str = "",
        family_name: str = "",
        email: str | None = None,
        groups: tuple[str, ...] = (),
    ) -> OktaUser:
        user = OktaUser(
            id=user_id or "00u" + secrets.token_hex(9)[:17],
            login=login,
            password=password,
            email=email or login,
            given_name=given_name,
            family_name=family_name,
            groups=tuple(groups),
        )
        with self._lock:
            self.users[user.id] = user
        return user

    def user_by_login(self, login: str) -> OktaUser | None:
        with self._lock:
            return next((u for u in self.users.values() if u.login.lower() == login.lower()), None)

    def deactivate_user(self, login: str) -> None:
        user = self.user_by_login(login)
        if user is not None:
            user.active = False
            self.revoke_refresh_tokens(login)

    def add_client(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        redirect_uris: list[str],
        token_endpoint_auth_method: str = "client_secret_basic",
        grant_types: list[str] | None = None,
        response_types: list[str] | None = None,
    ) -> OktaClient:
        client = OktaClient(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=list(redirect_uris),
            token_endpoint_auth_method=token_endpoint_auth_method,
            grant_types=list(grant_types or ["authorization_code", "refresh_token"]),
            response_types=list(response_types or ["code"]),
        )
        with self._lock:
            self.clients[client_id] = client
        return client

    def revoke_refresh_tokens(self, login: str) -> int:
        """Revoke every refresh-token family of a user (their next refresh fails)."""
        user = self.user_by_login(login)
        if user is None:
            return 0
        with self._lock:
            families = {t.family for t in self.refresh_tokens.values() if t.user_id == user.id}
            self.revoked_families |= families
            return len(families)

    # -- authorization -----------------------------------------------------------------
    def start_authorization(self, request: AuthRequest) -> str:
        txn = secrets.token_urlsafe(18)
        with self._lock:
            self.requests[txn] = request
        return txn

    def pending(self, txn: str) -> AuthRequest | None:
        with self._lock:
            request = self.requests.get(txn)
        if request is None or request.expires_at <= self.now():
            return None
        return request

    def authenticate(self, login: str, password: str) -> OktaUser | None:
        user = self.user_by_login(login)
        if user is None or not user.active or not secrets.compare_digest(user.password, password):
            return None
        return user

    def issue_code(self, txn: str, user: OktaUser) -> tuple[str, AuthRequest]:
        with self._lock:
            request = self.requests.pop(txn)
            code = secrets.token_urlsafe(32)
            now = self.now()
            self.codes[_hash(code)] = AuthCode(request, user.id, now, now + AUTH_CODE_LIFETIME)
        return code, request

    def redeem_code(self, code: str) -> AuthCode:
        with self._lock:
            record = self.codes.get(_hash(code))
            if record is None or record.used or record.expires_at <= self.now():
                raise OktaError(
                    "invalid_grant", "The authorization code is invalid or has expired."
                )
            record.used = True
            return record

    # -- tokens ------------------------------------------------------------------------
    def issue_tokens(
        self,
        *,
        client_id: str,
        user: OktaUser,
        scopes: list[str],
        server_id: str,
        auth_time: float,
        nonce: str | None = None,
        family: str | None = None,
    ) -> dict[str, Any]:
        """The token response of an authorization_code or refresh_token grant."""
        family = family or secrets.token_hex(8)
        access = self.mint_access_token(
            user.login, client_id, scopes=scopes, server_id=server_id, auth_time=auth_time
        )
        with self._lock:
            self.access_families[_hash(access)] = family
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": access,
            "scope": " ".join(scopes),
        }
        if "openid" in scopes:
            body["id_token"] = self.mint_id_token(
                user.login,
                client_id,
                scopes=scopes,
                nonce=nonce,
                server_id=server_id,
                auth_time=auth_time,
            )
        if "offline_access" in scopes:
            body["refresh_token"] = self._new_refresh_token(
                family, client_id, user.id, scopes, server_id, auth_time
            )
        return body

    def _new_refresh_token(
        self,
        family: str,
        client_id: str,
        user_id: str,
        scopes: list[str],
        server_id: str,
        auth_time: float,
    ) -> str:
        value = secrets.token_urlsafe(32)
        with self._lock:
            self.refresh_tokens[_hash(value)] = RefreshToken(
                family,
                client_id,
                user_id,
                list(scopes),
                server_id,
                auth_time,
                self.now() + REFRESH_IDLE_WINDOW,
            )
        return value

    def use_refresh_token(self, value: str, client_id: str) -> RefreshToken:
        """Validate a refresh token for a rotation; reuse after the leeway revokes the family."""
        now = self.now()
        with self._lock:
            record = self.refresh_tokens.get(_hash(value))
            invalid = OktaError("invalid_grant", "The refresh token is invalid or expired.")
            if record is None or record.client_id != client_id:
                raise invalid
            if record.family in self.revoked_families or record.expires_at <= now:
                raise invalid
            user = self.users.get(record.user_id)
            if user is None or not user.active:
                raise invalid
            if record.rotated_at is not None and now - record.rotated_at > REFRESH_ROTATION_LEEWAY:
                self.revoked_families.add(record.family)  # reuse detected: kill the family
                raise invalid
            if record.rotated_at is None:
                record.rotated_at = now
            return record

    def token_family_active(self, access_token: str) -> bool:
        with self._lock:
            family = self.access_families.get(_hash(access_token))
            return family is not None and family not in self.revoked_families

    def mint_id_token(
        self,
        login: str,
        client_id: str,
        *,
        scopes: tuple[str, ...] | list[str] = ("openid", "email"),
        nonce: str | None = None,
        lifetime: int = ID_TOKEN_LIFETIME,
        extra_claims: dict[str, Any] | None = None,
        server_id: str = "default",
        auth_time: float | None = None,
    ) -> str:
        user = self._user(login)
        now = int(self.now())
        claims: dict[str, Any] = {
            "sub": user.id,
            "ver": 1,
            "iss": self.issuer(server_id),
            "aud": client_id,
            "iat": now,
            "exp": now + lifetime,
            "jti": "ID." + secrets.token_urlsafe(32),
            "amr": ["pwd"],
            "idp": "00o" + hashlib.sha256(self.domain.encode()).hexdigest()[:17],
            "auth_time": int(auth_time if auth_time is not None else now),
        }
        if nonce:
            claims["nonce"] = nonce
        if "email" in scopes:
            claims.update(email=user.email, email_verified=True)
        if "profile" in scopes:
            claims.update(
                {
                    k: v
                    for k, v in user.profile_claims().items()
                    if k in ("name", "preferred_username")
                }
            )
        if "groups" in scopes:
            claims["groups"] = list(user.groups)
        claims.update(extra_claims or {})
        return self.keys.sign(claims)

    def mint_access_token(
        self,
        login: str,
        client_id: str,
        *,
        scopes: tuple[str, ...] | list[str] = ("openid", "email"),
        lifetime: int = ACCESS_TOKEN_LIFETIME,
        server_id: str = "default",
        auth_time: float | None = None,
    ) -> str:
        user = self._user(login)
        now = int(self.now())
        server = self.servers[server_id]
        claims = {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(32),
            "iss": self.issuer(server_id),
            "aud": server.audience,
            "iat": now,
            "exp": now + lifetime,
            "cid": client_id,
            "uid": user.id,
            "scp": list(scopes),
            "auth_time": int(auth_time if auth_time is not None else now),
            "sub": user.login,
        }
        return self.keys.sign(claims)

    def _user(self, login: str) -> OktaUser:
        user = self.user_by_login(login)
        if user is None:
            raise KeyError(f"no Okta user {login!r}")
        return user

    def verify_access_token(self, token: str, server_id: str) -> dict[str, Any] | None:
        """Claims of a valid access token of this server (signature, iss, exp per the clock)."""
        try:
            claims = self.keys.verify_signature(token)
        except Exception:
            return None
        if claims.get("iss") != self.issuer(server_id) or "uid" not in claims:
            return None
        if float(claims.get("exp", 0)) <= self.now() or not self.token_family_active(token):
            return None
        return claims
