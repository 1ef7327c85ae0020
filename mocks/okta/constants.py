"""Mock Okta's fixed vocabulary: lifetimes, grant and token-type URNs, scopes, error texts.

Kept apart from the records and the behaviour so that every model module, the HTTP layer and
the admin API name the same values from one place (``vendor-fidelity.md`` §C).
"""

from __future__ import annotations

from typing import Literal

from mocks.core.http import OAuthFailure

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
