"""Mock Okta org state: users, OIDC clients, authorization codes, tokens (moto-style models).

Claims and lifetimes follow ``vendor-fidelity.md`` §C: the ID token's ``sub`` is the Okta user
id (``00u…``) while the access token's ``sub`` is the login, with ``uid``, ``cid`` and ``scp``
(an array); refresh tokens rotate with a 30 s leeway and reuse after the leeway revokes the
whole family, access tokens included (§C.4). All times come from the sandbox clock, so a
scenario can advance past an expiry instead of sleeping.

Only hashes of codes and refresh tokens are kept (a journal dump of the model never shows a
usable credential), and expired records are swept as new ones arrive, so memory stays flat
under load. Every mutation happens under one lock: the sandbox server is threaded.

Behaviour the research could not pin down is a plain attribute with the documented default
(see :meth:`OktaOrg.reset` for the list), so a scenario can flip it without a code change.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt

from mocks.core.http import OAuthFailure
from mocks.core.jose import KeySet
from mocks.core.server import SandboxContext

ACCESS_TOKEN_LIFETIME = 3600
"""Custom AS default access-token policy: 1 h (§C.3)."""
ID_TOKEN_LIFETIME = 3600
"""Fixed at 60 min by Okta (§C.3)."""
AUTH_CODE_LIFETIME = 300
"""Authorization codes live 300 s (§C.2)."""
REFRESH_IDLE_WINDOW = 7 * 24 * 3600
"""Our default idle window; Okta lets a policy choose anything from 10 min up (§C.3)."""
REFRESH_ROTATION_LEEWAY = 30
"""Okta's default grace period for a rotated refresh token (§C.4)."""
TRANSACTION_LIFETIME = 600
"""How long a login form may sit open before the sign-in transaction is forgotten."""
SWEEP_INTERVAL = 60.0
"""Clock seconds between sweeps of expired records."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

RotationType = Literal["ROTATE", "STATIC"]

OktaError = OAuthFailure
"""Okta's OAuth errors (statuses and texts from its catalogue, ``vendor-fidelity.md`` §C.6)."""

INVALID_CODE = "The authorization code is invalid or has expired."
INVALID_REFRESH = "The refresh token is invalid or expired."


@dataclass
class OktaUser:
    """A directory user; ``id`` is Okta's ``00u…`` id, ``login`` usually the e-mail."""

    id: str
    login: str
    password: str = field(repr=False)
    email: str
    given_name: str = ""
    family_name: str = ""
    groups: tuple[str, ...] = ()
    active: bool = True

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name) if p) or self.login

    def profile_claims(self) -> dict[str, Any]:
        """The ``profile`` scope's claims as userinfo returns them (the full set)."""
        return {
            "name": self.name,
            "preferred_username": self.login,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "locale": "en_US",
            "zoneinfo": "America/Los_Angeles",
        }


@dataclass
class OktaClient:
    """An OIDC app integration: its id, secret, redirect URIs and allowed grants."""

    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uris: list[str]
    token_endpoint_auth_method: str = "client_secret_basic"
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    response_types: list[str] = field(default_factory=lambda: ["code"])
    loopback_any_port: bool = True

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Exact string match, except that loopback URIs match with any port (RFC 8252 §7.3).

        Native apps listen on an ephemeral port, so registering ``http://127.0.0.1/callback``
        must admit ``http://127.0.0.1:53127/callback``; scheme, host, path and query still
        have to match exactly.
        """
        if uri in self.redirect_uris:
            return True
        if not self.loopback_any_port:
            return False
        wanted = _loopback_key(uri)
        return wanted is not None and any(_loopback_key(r) == wanted for r in self.redirect_uris)


def _loopback_key(uri: str) -> tuple[str, str, str, str] | None:
    """(scheme, host, path, query) of an ``http`` loopback URI, ignoring its port."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.username:
        return None
    return parts.scheme, parts.hostname or "", parts.path, parts.query


@dataclass
class AuthRequest:
    """A validated ``/v1/authorize`` request waiting for the user to sign in."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    server_id: str
    expires_at: float
    login_hint: str | None = None


@dataclass
class AuthCode:
    request: AuthRequest
    user_id: str
    auth_time: float
    expires_at: float
    used: bool = False
    family: str | None = None
    """The token family issued for this code (revoked if the code is replayed)."""


@dataclass
class RefreshToken:
    family: str
    client_id: str
    user_id: str
    scopes: list[str]
    server_id: str
    auth_time: float
    expires_at: float
    """Idle expiry: each rotation starts a new window, capped by ``family_expires_at``."""
    family_expires_at: float | None = None
    rotated_at: float | None = None


@dataclass
class AuthorizationServer:
    """A custom authorization server: its id, ``aud`` for access tokens and its scopes."""

    id: str
    audience: str
    scopes: list[str] = field(
        default_factory=lambda: ["openid", "profile", "email", "groups", "offline_access"]
    )


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: left half of SHA-256 of the access token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


class OktaOrg:
    """One Okta org (``acme.okta.test``) with its custom authorization servers.

    The public methods are what :mod:`mocks.sandbox`, the harness and other mocks' tests use;
    the HTTP layer in :mod:`mocks.okta.responses` only translates requests into these calls.
    """

    def __init__(self, context: SandboxContext, domain: str) -> None:
        self.context = context
        self.domain = domain.lower()
        self._lock = threading.RLock()
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------
    def reset(self) -> None:
        """Everything back to empty and every setting to its default.

        The sandbox applies its default data afterwards. Settings (defaults in brackets):

        * lifetimes: ``access_token_lifetime`` [3600], ``id_token_lifetime`` [3600],
          ``auth_code_lifetime`` [300], ``refresh_idle_window`` [7 days],
          ``refresh_max_lifetime`` [None = unlimited];
        * ``refresh_rotation`` ["ROTATE"] or "STATIC", ``refresh_leeway`` [30 s];
        * ``revoke_tokens_on_code_reuse`` [True]: RFC 6749 §4.1.2's SHOULD; not verified
          against Okta;
        * ``multiple_credentials_status`` [401]: status of "Cannot supply multiple client
          credentials." (§C.2 says 401; third-party reports only show ``invalid_request``);
        * ``require_state`` [False]: Okta's old reference marked ``state`` required, the
          current one optional;
        * ``auto_approve`` [None]: a login that ``/v1/authorize`` signs in without the form.
        """
        with self._lock:
            self.keys = KeySet([self.context.key(f"okta:{self.domain}")])
            self.servers: dict[str, AuthorizationServer] = {
                "default": AuthorizationServer("default", "api://default")
            }
            self.users: dict[str, OktaUser] = {}
            self.clients: dict[str, OktaClient] = {}
            self.requests: dict[str, AuthRequest] = {}
            self.codes: dict[str, AuthCode] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.revoked_families: set[str] = set()
            self.access_tokens: dict[str, tuple[str | None, float]] = {}
            """Access-token ``jti`` -> (family, exp): lets a family revocation kill them."""
            self.auto_approve: str | None = None
            self.access_token_lifetime = ACCESS_TOKEN_LIFETIME
            self.id_token_lifetime = ID_TOKEN_LIFETIME
            self.auth_code_lifetime = AUTH_CODE_LIFETIME
            self.refresh_idle_window: float = REFRESH_IDLE_WINDOW
            self.refresh_max_lifetime: float | None = None
            self.refresh_rotation: RotationType = "ROTATE"
            self.refresh_leeway: float = REFRESH_ROTATION_LEEWAY
            self.revoke_tokens_on_code_reuse = True
            self.multiple_credentials_status = 401
            self.require_state = False
            self._last_sweep = self.now()

    def now(self) -> float:
        return self.context.clock.now()

    # -- directory ---------------------------------------------------------------------
    def issuer(self, server_id: str = "default") -> str:
        return f"{self.context.url_for(self.domain)}/oauth2/{server_id}"

    def server(self, server_id: str) -> AuthorizationServer | None:
        with self._lock:
            return self.servers.get(server_id)

    def add_server(
        self, server_id: str, *, audience: str, scopes: Iterable[str] | None = None
    ) -> AuthorizationServer:
        """Another custom authorization server (its own issuer, same org keys)."""
        server = AuthorizationServer(server_id, audience)
        if scopes is not None:
            server.scopes = list(dict.fromkeys(["openid", *scopes]))
        with self._lock:
            self.servers[server_id] = server
        return server

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
    ) -> OktaUser:
        """Create (or replace, by login) a user; ids look like Okta's: ``00u`` + 17 chars."""
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

    def deactivate_user(self, login: str) -> None:
        """Deprovision: the user can no longer sign in, refresh, or use userinfo."""
        with self._lock:
            user = self.user_by_login(login)
            if user is not None:
                user.active = False
                self.revoke_refresh_tokens(login)

    def add_client(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        redirect_uris: Iterable[str],
        token_endpoint_auth_method: str = "client_secret_basic",
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        response_types: Iterable[str] = ("code",),
    ) -> OktaClient:
        """Register an app. ``none`` makes a public client (PKCE required, no secret)."""
        if token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post", "none"):
            raise ValueError(f"unsupported token_endpoint_auth_method {token_endpoint_auth_method}")
        if token_endpoint_auth_method != "none" and not client_secret:
            raise ValueError("a confidential client needs a client_secret")
        client = OktaClient(
            client_id=client_id,
            client_secret=client_secret if token_endpoint_auth_method != "none" else None,
            redirect_uris=list(redirect_uris),
            token_endpoint_auth_method=token_endpoint_auth_method,
            grant_types=list(grant_types),
            response_types=list(response_types),
        )
        with self._lock:
            self.clients[client_id] = client
        return client

    def client(self, client_id: str) -> OktaClient | None:
        with self._lock:
            return self.clients.get(client_id)

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

    # -- authorization -----------------------------------------------------------------
    def start_authorization(self, request: AuthRequest) -> str:
        """Store a validated authorize request; the opaque id rides in the login form."""
        txn = secrets.token_urlsafe(18)
        with self._lock:
            self._sweep()
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
        if user is None or not user.active:
            return None
        if not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        return user

    def issue_code(self, txn: str, user: OktaUser) -> tuple[str, AuthRequest] | None:
        """Consume the transaction and mint a code; ``None`` if it was already used."""
        with self._lock:
            request = self.requests.pop(txn, None)
            if request is None:
                return None
            code = secrets.token_urlsafe(32)
            now = self.now()
            self.codes[_hash(code)] = AuthCode(request, user.id, now, now + self.auth_code_lifetime)
        return code, request

    def redeem_code(
        self,
        code: str,
        *,
        client_id: str,
        server_id: str,
        redirect_uri: str,
        code_verifier: str | None,
    ) -> AuthCode:
        """Validate and burn a code (single use: any redemption attempt consumes it).

        A replay revokes the tokens the first redemption produced when
        ``revoke_tokens_on_code_reuse`` is on (RFC 6749 §4.1.2).
        """
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        with self._lock:
            record = self.codes.get(_hash(code))
            if record is None or record.expires_at <= self.now():
                raise OktaError("invalid_grant", INVALID_CODE)
            if record.used:
                if self.revoke_tokens_on_code_reuse and record.family is not None:
                    self.revoked_families.add(record.family)
                raise OktaError("invalid_grant", INVALID_CODE)
            record.used = True
            auth = record.request
            if auth.client_id != client_id or auth.server_id != server_id:
                raise OktaError("invalid_grant", INVALID_CODE)
            if auth.redirect_uri != redirect_uri:
                raise OktaError(
                    "invalid_grant",
                    "The 'redirect_uri' does not match the redirection URI used in the "
                    "authorization request.",
                )
            if auth.code_challenge:
                if not code_verifier or not secrets.compare_digest(
                    create_s256_code_challenge(code_verifier), auth.code_challenge
                ):
                    raise OktaError("invalid_grant", "PKCE verification failed.")
            elif code_verifier:
                raise OktaError(
                    "invalid_request",
                    "The 'code_verifier' parameter was provided but the authorization request "
                    "had no 'code_challenge'.",
                )
            user = self.users.get(record.user_id)
            if user is None or not user.active:
                raise OktaError("invalid_grant", INVALID_CODE)
            record.family = secrets.token_hex(8)
            return record

    # -- tokens ------------------------------------------------------------------------
    def tokens_for_code(self, record: AuthCode) -> dict[str, Any]:
        """The token response of an ``authorization_code`` grant (after :meth:`redeem_code`)."""
        auth = record.request
        assert record.family is not None
        with self._lock:
            user = self.users[record.user_id]
            return self._issue(
                client_id=auth.client_id,
                user=user,
                scopes=auth.scopes,
                server_id=auth.server_id,
                auth_time=record.auth_time,
                nonce=auth.nonce,
                family=record.family,
                previous=None,
            )

    def refresh(
        self, value: str, *, client_id: str, server_id: str, scope: str | None
    ) -> dict[str, Any]:
        """The token response of a ``refresh_token`` grant, rotating per the app's settings.

        All checks run before anything changes, so a rejected request (say, a widened
        scope) never burns the client's only refresh token. Reuse of a rotated token after
        the leeway revokes the family (§C.4).
        """
        now = self.now()
        with self._lock:
            record = self.refresh_tokens.get(_hash(value))
            if record is None or record.client_id != client_id or record.server_id != server_id:
                raise OktaError("invalid_grant", INVALID_REFRESH)
            if record.family in self.revoked_families or record.expires_at <= now:
                raise OktaError("invalid_grant", INVALID_REFRESH)
            user = self.users.get(record.user_id)
            if user is None or not user.active:
                raise OktaError("invalid_grant", INVALID_REFRESH)
            if record.rotated_at is not None and now - record.rotated_at > self.refresh_leeway:
                self.revoked_families.add(record.family)  # reuse detected: kill the family
                raise OktaError("invalid_grant", INVALID_REFRESH)
            scopes = list(record.scopes)
            if scope is not None and scope.strip():
                requested = list(dict.fromkeys(scope.split()))
                if not set(requested) <= set(record.scopes):
                    raise OktaError(
                        "access_denied",
                        "The requested scopes exceed the scopes granted to the refresh token.",
                    )
                # The grant stays offline: a narrowed request still gets a refresh token.
                scopes = requested
                if "offline_access" not in scopes:
                    scopes.append("offline_access")
            return self._issue(
                client_id=client_id,
                user=user,
                scopes=scopes,
                server_id=server_id,
                auth_time=record.auth_time,
                nonce=None,
                family=record.family,
                previous=(value, record),
            )

    def _issue(
        self,
        *,
        client_id: str,
        user: OktaUser,
        scopes: list[str],
        server_id: str,
        auth_time: float,
        nonce: str | None,
        family: str,
        previous: tuple[str, RefreshToken] | None,
    ) -> dict[str, Any]:
        """Mint the tokens of one grant; caller holds the lock."""
        access = self.mint_access_token(
            user.login,
            client_id,
            scopes=scopes,
            server_id=server_id,
            auth_time=auth_time,
            _family=family,
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
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
                extra_claims={"at_hash": at_hash(access)},
            )
        if "offline_access" in scopes:
            body["refresh_token"] = self._next_refresh_token(
                family, client_id, user.id, scopes, server_id, auth_time, previous
            )
        return body

    def _next_refresh_token(
        self,
        family: str,
        client_id: str,
        user_id: str,
        scopes: list[str],
        server_id: str,
        auth_time: float,
        previous: tuple[str, RefreshToken] | None,
    ) -> str:
        now = self.now()
        cap: float | None
        if previous is not None:
            cap = previous[1].family_expires_at
        elif self.refresh_max_lifetime is not None:
            cap = now + self.refresh_max_lifetime
        else:
            cap = None
        expires_at = now + self.refresh_idle_window
        if cap is not None:
            expires_at = min(expires_at, cap)
        if previous is not None and self.refresh_rotation == "STATIC":
            value, record = previous
            record.expires_at = expires_at
            record.scopes = list(scopes)
            return value
        if previous is not None and previous[1].rotated_at is None:
            previous[1].rotated_at = now
        self._sweep()
        value = secrets.token_urlsafe(32)
        self.refresh_tokens[_hash(value)] = RefreshToken(
            family, client_id, user_id, list(scopes), server_id, auth_time, expires_at, cap
        )
        return value

    def token_family_active(self, jti: str) -> bool:
        """Whether an access token (by ``jti``) was issued here and its family is not revoked."""
        with self._lock:
            entry = self.access_tokens.get(jti)
            return entry is not None and (entry[0] is None or entry[0] not in self.revoked_families)

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
        """An ID token as Okta's custom AS issues it: ``sub`` is the user id (``00u…``)."""
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
            # Thin profile in the ID token when an access token exists; userinfo has the rest.
            claims.update(name=user.name, preferred_username=user.login)
        if "groups" in scopes:
            claims["groups"] = list(user.groups)
        claims.update(extra_claims or {})
        return self.keys.sign(claims)

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
        refresh-token family, so only its expiry ends it.
        """
        user = self._user(login)
        now = int(self.now())
        server = self.servers[server_id]
        jti = "AT." + secrets.token_urlsafe(32)
        exp = now + (self.access_token_lifetime if lifetime is None else lifetime)
        claims = {
            "ver": 1,
            "jti": jti,
            "iss": self.issuer(server_id),
            "aud": server.audience,
            "iat": now,
            "exp": exp,
            "cid": client_id,
            "uid": user.id,
            "scp": list(scopes),
            "auth_time": int(auth_time if auth_time is not None else now),
            "sub": user.login,
        }
        with self._lock:
            self.access_tokens[jti] = (_family, float(exp))
        return self.keys.sign(claims)

    def _user(self, login: str) -> OktaUser:
        user = self.user_by_login(login)
        if user is None:
            raise KeyError(f"no Okta user {login!r}")
        return user

    def verify_access_token(self, token: str, server_id: str) -> dict[str, Any] | None:
        """Claims of a live access token of this server (signature, iss, aud, exp by the clock)."""
        try:
            claims = self.keys.verify_signature(token)
        except jwt.InvalidTokenError:
            return None
        server = self.server(server_id)
        if server is None or claims.get("iss") != self.issuer(server_id):
            return None
        if claims.get("aud") != server.audience or "uid" not in claims:
            return None
        if float(claims.get("exp", 0)) <= self.now():
            return None
        if not self.token_family_active(str(claims.get("jti", ""))):
            return None
        return claims

    # -- housekeeping ------------------------------------------------------------------
    def _sweep(self) -> None:
        """Drop expired transactions, codes, refresh and access tokens; caller holds the lock.

        Runs at most once per :data:`SWEEP_INTERVAL` of clock time (or whenever the clock was
        moved backwards), so the cost stays O(1) amortised per request.
        """
        now = self.now()
        if 0 <= now - self._last_sweep < SWEEP_INTERVAL:
            return
        self._last_sweep = now
        self.requests = {k: v for k, v in self.requests.items() if v.expires_at > now}
        self.codes = {k: v for k, v in self.codes.items() if v.expires_at > now}
        self.refresh_tokens = {k: v for k, v in self.refresh_tokens.items() if v.expires_at > now}
        self.access_tokens = {k: v for k, v in self.access_tokens.items() if v[1] > now}
        live = {t.family for t in self.refresh_tokens.values()}
        live |= {family for family, _ in self.access_tokens.values() if family is not None}
        self.revoked_families &= live
