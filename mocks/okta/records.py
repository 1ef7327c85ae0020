"""The plain records of a mock Okta org: users, apps, claim rules, authorization servers, and
the transient state of a login (authorize requests, codes, refresh tokens).

They hold data and answer questions about themselves (a redirect URI match, a claim's value,
the admin view without secrets); every rule that spans several records lives on
:class:`~mocks.okta.models.OktaOrg`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mocks.core.jose import KeySet
from mocks.okta.constants import CUSTOM_AS_GRANTS, LOOPBACK_HOSTS, ORG_AS


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


def hash_secret(value: str) -> str:
    """SHA-256 hex of a code or refresh token: the org stores only this, never the value."""
    return hashlib.sha256(value.encode()).hexdigest()


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: left half of SHA-256 of the access token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
