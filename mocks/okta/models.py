"""Mock Okta org state: users, OIDC clients, authorization codes, tokens (moto-style models).

Claims and lifetimes follow ``vendor-fidelity.md`` §C: the ID token's ``sub`` is the Okta user
id (``00u…``) while the access token's ``sub`` is the login, with ``uid``, ``cid`` and ``scp``
(an array); refresh tokens rotate with a 30 s leeway and reuse after the leeway revokes the
whole family, access tokens included (§C.4). All times come from the sandbox clock, so a
scenario can advance past an expiry instead of sleeping.

Only hashes of codes and refresh tokens are kept (a journal dump of the model never shows a
usable credential), and expired records are swept as new ones arrive, so memory stays flat
under load. Every mutation happens under one lock: the sandbox server is threaded.

The org has two kinds of authorization server (§C.1): the **org AS** (issuer
``https://{domain}``, endpoints under ``/oauth2/v1/``; stored under the id :data:`ORG_AS`, the
empty string, which no URL segment can spell) and **custom ASes** (issuer
``https://{domain}/oauth2/{id}``, ``default`` built in). As in Okta, every authorization
server signs with its own keys, so a token of one never verifies against another's JWKS.

Behaviour the research could not pin down is a plain attribute with the documented default
(see :meth:`OktaOrg.reset` for the list), so a scenario can flip it without a code change.
"""

from __future__ import annotations

import base64
import hashlib
import re
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

ORG_AS = ""
"""Key of the org authorization server in :attr:`OktaOrg.servers` (no path segment is empty)."""
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
OIDC_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access", "device_sso")
"""Okta's reserved OIDC scopes: every authorization server has them."""
CUSTOM_AS_GRANTS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    TOKEN_EXCHANGE,
    JWT_BEARER,
)
"""What a custom AS's access policy allows unless configured otherwise (all we implement)."""
ORG_AS_GRANTS = ("authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE)
"""The org AS: token exchange only for ID-JAG (§C.8); no jwt-bearer redemption."""
ORG_AS_SCOPES = (
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
    "groups",
    "okta.users.read",
    "okta.groups.read",
)
CLIENT_AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
)

RotationType = Literal["ROTATE", "STATIC"]

OktaError = OAuthFailure
"""Okta's OAuth errors (statuses and texts from its catalogue, ``vendor-fidelity.md`` §C.6)."""

INVALID_CODE = "The authorization code is invalid or has expired."
INVALID_REFRESH = "The refresh token is invalid or expired."
INVALID_SCOPE = (
    "The requested scope is invalid, unknown, malformed, or exceeds the scope granted by the "
    "resource owner."
)
NO_DEFAULT_SCOPES = (
    "The authorization server resource does not have any configured default scopes, 'scope' "
    "must be provided."
)


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
    locale: str = "en_US"
    zoneinfo: str = "America/Los_Angeles"
    attributes: dict[str, Any] = field(default_factory=dict)
    """Custom profile attributes (``department``, ``employeeNumber``…) that claim rules map."""

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name) if p) or self.login

    def attribute(self, name: str) -> Any:
        """A profile attribute as Okta's expression ``user.<name>`` reads it (``None`` if unset)."""
        builtin = {
            "login": self.login,
            "email": self.email,
            "firstName": self.given_name,
            "lastName": self.family_name,
            "id": self.id,
            "locale": self.locale,
            "zoneinfo": self.zoneinfo,
        }
        return self.attributes[name] if name in self.attributes else builtin.get(name)

    def public(self) -> dict[str, Any]:
        """The user as the admin API shows it: everything but the password."""
        return {
            "id": self.id,
            "login": self.login,
            "email": self.email,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "groups": list(self.groups),
            "active": self.active,
            "locale": self.locale,
            "zoneinfo": self.zoneinfo,
            "attributes": dict(self.attributes),
        }

    def profile_claims(self) -> dict[str, Any]:
        """The ``profile`` scope's claims as userinfo returns them (the full set)."""
        return {
            "name": self.name,
            "preferred_username": self.login,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "locale": self.locale,
            "zoneinfo": self.zoneinfo,
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
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    jwks: dict[str, Any] | None = None
    """``private_key_jwt``: the client's public keys (a JWK Set); or they live at ``jwks_uri``."""
    jwks_uri: str | None = None

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def public(self) -> dict[str, Any]:
        """The app as the admin API shows it: never the secret."""
        return {
            "client_id": self.client_id,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": list(self.response_types),
            "jwks": self.jwks,
            "jwks_uri": self.jwks_uri,
        }

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
    issued_at: float = 0.0


@dataclass
class ClaimRule:
    """A claim an authorization server adds to its tokens, as Okta's claim configuration does.

    ``value`` is ``"groups"`` (the user's groups whose name fully matches ``group_filter``,
    Okta's "Groups" value type with a regex filter) or ``"user.<attribute>"`` (a profile
    attribute). ``tokens`` says which tokens carry it (``id_token``, ``access_token``);
    ``scopes`` restricts it to requests with one of those scopes (empty: always). Claims of
    ID tokens are also returned by userinfo.
    """

    name: str
    value: str
    tokens: tuple[str, ...] = ("id_token",)
    scopes: tuple[str, ...] = ()
    group_filter: str = ".*"

    def evaluate(self, user: OktaUser) -> Any:
        if self.value == "groups":
            pattern = re.compile(self.group_filter)
            return [g for g in user.groups if pattern.fullmatch(g)]
        return user.attribute(self.value.removeprefix("user."))

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "tokens": list(self.tokens),
            "scopes": list(self.scopes),
            "group_filter": self.group_filter,
        }


def default_claim_rules() -> list[ClaimRule]:
    """Our default groups claim: ``groups`` in the ID token when the ``groups`` scope is asked."""
    return [ClaimRule("groups", "groups", ("id_token",), ("groups",))]


@dataclass
class AuthorizationServer:
    """An authorization server: its id (:data:`ORG_AS` for the org's), ``aud``, scopes, keys.

    ``grant_types`` is what its access policy allows (a grant outside it is
    ``unsupported_grant_type``, and discovery lists only these); ``trusted_servers`` are the
    ids of the other servers of this org whose access tokens it accepts as an OBO
    ``subject_token`` (Okta's "Trusted servers", §C.7); ``default_scopes`` serve requests that
    name none (client credentials, token exchange).
    """

    id: str
    audience: str
    keys: KeySet
    scopes: list[str] = field(
        default_factory=lambda: ["openid", "profile", "email", "groups", "offline_access"]
    )
    grant_types: list[str] = field(default_factory=lambda: list(CUSTOM_AS_GRANTS))
    default_scopes: list[str] = field(default_factory=list)
    trusted_servers: list[str] = field(default_factory=list)
    claims: list[ClaimRule] = field(default_factory=default_claim_rules)

    @property
    def is_org(self) -> bool:
        return self.id == ORG_AS


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
        * ``auto_approve`` [None]: a login that ``/v1/authorize`` signs in without the form
          (the mock's stand-in for an Okta session; ``/v1/logout`` ends it);
        * ``require_assertion_jti`` [False]: Okta documents ``jti`` of a client assertion as
          optional but single use when present;
        * ``id_jag_lifetime`` [300], ``id_jag_token_type`` ["N_A"] (Okta's pages show both
          ``N_A`` and ``Bearer``), ``id_jag_client_id_claim`` [True] (implied by Okta's error
          catalogue, absent from its examples), ``id_jag_audiences`` [[]]: issuers of
          resource authorization servers outside this org that ID-JAGs may be issued for.
        """
        with self._lock:
            self.servers: dict[str, AuthorizationServer] = {
                ORG_AS: AuthorizationServer(
                    ORG_AS,
                    "",
                    KeySet([self.context.key(f"okta:{self.domain}#org")]),
                    scopes=list(ORG_AS_SCOPES),
                    grant_types=list(ORG_AS_GRANTS),
                ),
                "default": AuthorizationServer(
                    "default", "api://default", KeySet([self.context.key(f"okta:{self.domain}")])
                ),
            }
            self.users: dict[str, OktaUser] = {}
            self.clients: dict[str, OktaClient] = {}
            self.requests: dict[str, AuthRequest] = {}
            self.codes: dict[str, AuthCode] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.revoked_families: set[str] = set()
            self.access_tokens: dict[str, tuple[str | None, float]] = {}
            """Access-token ``jti`` -> (family, exp): lets a family revocation kill them."""
            self.used_jtis: dict[str, float] = {}
            """Single-use ``jti``s (client assertions, ID-JAGs) -> when they may be forgotten."""
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
            self.require_assertion_jti = False
            self.id_jag_lifetime = 300
            self.id_jag_token_type = "N_A"
            self.id_jag_client_id_claim = True
            self.id_jag_audiences: list[str] = []
            self._last_sweep = self.now()

    def now(self) -> float:
        return self.context.clock.now()

    # -- authorization servers ---------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http(s)://{domain}``: the org AS's issuer and the base of every URL."""
        return self.context.url_for(self.domain)

    @property
    def keys(self) -> KeySet:
        """The ``default`` custom AS's keys: what brokers verify and ``/_harness/keys`` rotates."""
        return self.servers["default"].keys

    def issuer(self, server_id: str = "default") -> str:
        if server_id == ORG_AS:
            return self.base_url
        return f"{self.base_url}/oauth2/{server_id}"

    def endpoint(self, server_id: str, name: str) -> str:
        """``/oauth2/v1/<name>`` for the org AS, ``/oauth2/<id>/v1/<name>`` for a custom AS."""
        if server_id == ORG_AS:
            return f"{self.base_url}/oauth2/v1/{name}"
        return f"{self.issuer(server_id)}/v1/{name}"

    def audience(self, server_id: str) -> str:
        """``aud`` of the server's access tokens; the org AS's is the org URL."""
        if server_id == ORG_AS:
            return self.base_url
        return self.servers[server_id].audience

    def server(self, server_id: str) -> AuthorizationServer | None:
        with self._lock:
            return self.servers.get(server_id)

    def server_by_issuer(self, issuer: object) -> AuthorizationServer | None:
        with self._lock:
            return next((s for s in self.servers.values() if self.issuer(s.id) == issuer), None)

    def add_server(
        self,
        server_id: str,
        *,
        audience: str,
        scopes: Iterable[str] | None = None,
        grant_types: Iterable[str] | None = None,
        default_scopes: Iterable[str] = (),
        trusted_servers: Iterable[str] = (),
        claims: Iterable[ClaimRule] | None = None,
    ) -> AuthorizationServer:
        """A custom authorization server with its own issuer and keys (or replace one by id).

        It always has Okta's reserved OIDC scopes; ``scopes`` adds custom ones.
        """
        if server_id == ORG_AS or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", server_id):
            raise ValueError("an authorization server id is 1-64 letters, digits, '-' or '_'")
        name = (
            f"okta:{self.domain}" if server_id == "default" else f"okta:{self.domain}/{server_id}"
        )
        server = AuthorizationServer(server_id, audience, KeySet([self.context.key(name)]))
        if scopes is not None:
            server.scopes = list(dict.fromkeys([*OIDC_SCOPES, *scopes]))
        if grant_types is not None:
            server.grant_types = list(dict.fromkeys(grant_types))
        server.default_scopes = list(default_scopes)
        server.trusted_servers = list(trusted_servers)
        if claims is not None:
            server.claims = list(claims)
        with self._lock:
            self.servers[server_id] = server
        return server

    def remove_server(self, server_id: str) -> bool:
        """Delete a custom AS (not ``default``, not the org AS); its tokens stop verifying."""
        if server_id in (ORG_AS, "default"):
            raise ValueError("the org and 'default' authorization servers cannot be deleted")
        with self._lock:
            return self.servers.pop(server_id, None) is not None

    # -- directory ---------------------------------------------------------------------
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
            id=user_id or "00u" + secrets.token_hex(9)[:17],
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

    def use_jti(self, jti: str, until: float) -> bool:
        """Record a single-use ``jti``; ``False`` if it was seen before (a replay)."""
        with self._lock:
            self._sweep()
            if jti in self.used_jtis:
                return False
            self.used_jtis[jti] = until
            return True

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
            family,
            client_id,
            user_id,
            list(scopes),
            server_id,
            auth_time,
            expires_at,
            cap,
            issued_at=now,
        )
        return value

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
        now = int(self.now())
        claims: dict[str, Any] = {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(32),
            "iss": self.issuer(server_id),
            "aud": self.audience(server_id),
            "iat": now,
            "exp": now + (self.access_token_lifetime if lifetime is None else lifetime),
            "cid": client_id,
            "uid": user.id,
            "scp": scopes,
            "auth_time": int(auth_time if auth_time is not None else now),
            "sub": user.login,
        }
        claims.update(self.claim_values(server_id, user, scopes, "access_token"))
        return self._register_and_sign(server_id, claims, _family)

    def mint_service_token(
        self, client_id: str, *, scopes: Iterable[str], server_id: str = "default"
    ) -> str:
        """A ``client_credentials`` access token: ``sub`` = ``cid`` = the client, no ``uid``."""
        now = int(self.now())
        claims: dict[str, Any] = {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(32),
            "iss": self.issuer(server_id),
            "aud": self.audience(server_id),
            "iat": now,
            "exp": now + self.access_token_lifetime,
            "cid": client_id,
            "scp": list(scopes),
            "sub": client_id,
        }
        return self._register_and_sign(server_id, claims, None)

    def _register_and_sign(self, server_id: str, claims: dict[str, Any], family: str | None) -> str:
        with self._lock:
            self.access_tokens[claims["jti"]] = (family, float(claims["exp"]))
        return self.servers[server_id].keys.sign(claims)

    def _user(self, login: str) -> OktaUser:
        user = self.user_by_login(login)
        if user is None:
            raise KeyError(f"no Okta user {login!r}")
        return user

    def verify_access_token(
        self, token: str, server_id: str, *, user_required: bool = True
    ) -> dict[str, Any] | None:
        """Claims of a live access token of this server, else ``None``.

        Live means: signed by the server's keys, its ``iss`` and ``aud``, unexpired by the
        sandbox clock, issued since the last reset and not revoked, and (for user tokens) a
        user who is still active.
        """
        server = self.server(server_id)
        if server is None:
            return None
        try:
            claims = server.keys.verify_signature(token)
        except jwt.InvalidTokenError:
            return None
        if claims.get("iss") != self.issuer(server_id):
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

    def verify_id_token(
        self, token: str, server_id: str, *, allow_expired: bool = False
    ) -> dict[str, Any] | None:
        """Claims of an ID token this server signed (``iss``; ``exp`` unless allowed)."""
        server = self.server(server_id)
        if server is None:
            return None
        try:
            claims = server.keys.verify_signature(token)
        except jwt.InvalidTokenError:
            return None
        if claims.get("iss") != self.issuer(server_id) or not str(claims.get("jti", "")).startswith(
            "ID."
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

    # -- introspection, revocation, logout ---------------------------------------------
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
            record = self.refresh_tokens.get(_hash(token))
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
            record = self.refresh_tokens.get(_hash(token))
            if record is not None:
                if record.client_id == client.client_id and record.server_id == server_id:
                    self.revoked_families.add(record.family)
                return
            claims = self.verify_access_token(token, server_id, user_required=False)
            if claims is not None and claims.get("cid") == client.client_id:
                self.access_tokens.pop(str(claims["jti"]), None)

    def end_session(self, login: str) -> None:
        """``/v1/logout``: the user's Okta session (our ``auto_approve``) ends; tokens live on."""
        with self._lock:
            if self.auto_approve and self.auto_approve.lower() == login.lower():
                self.auto_approve = None

    def cancel_authorization(self, txn: str) -> AuthRequest | None:
        """The login form's deny button: the transaction is consumed, no code is issued."""
        with self._lock:
            return self.requests.pop(txn, None)

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
        self.used_jtis = {k: v for k, v in self.used_jtis.items() if v > now}
        live = {t.family for t in self.refresh_tokens.values()}
        live |= {family for family, _ in self.access_tokens.values() if family is not None}
        self.revoked_families &= live
