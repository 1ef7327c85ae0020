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

Every generated id and opaque secret (codes, ``jti``s, refresh tokens, transaction ids, user
and client ids, client secrets, ``errorId``s) comes from ``SandboxContext.ids``: a seeded
sandbox replays them (``POST /_harness/seed``), an unseeded one draws them from
:mod:`secrets`.

This module is the façade: :class:`OktaOrg` combines the behaviour that lives in
:mod:`~mocks.okta.state` (stores, settings, sweep), :mod:`~mocks.okta.servers`,
:mod:`~mocks.okta.directory`, :mod:`~mocks.okta.tokens`, :mod:`~mocks.okta.grants` and
:mod:`~mocks.okta.introspection`; the records are in :mod:`~mocks.okta.records` and the
vocabulary in :mod:`~mocks.okta.constants`. Both are re-exported here, so
``from mocks.okta.models import OktaOrg, OktaClient, ORG_AS`` keeps working.
"""

from __future__ import annotations

from mocks.okta.constants import (
    ACCESS_TOKEN_LIFETIME,
    ACCESS_TOKEN_TYPE,
    AUTH_CODE_LIFETIME,
    CLIENT_AUTH_METHODS,
    CUSTOM_AS_GRANTS,
    ID_JAG_TYPE,
    ID_TOKEN_LIFETIME,
    ID_TOKEN_TYPE,
    INVALID_CODE,
    INVALID_REFRESH,
    INVALID_SCOPE,
    JWT_BEARER,
    LOOPBACK_HOSTS,
    NO_DEFAULT_SCOPES,
    OIDC_SCOPES,
    ORG_AS,
    ORG_AS_GRANTS,
    ORG_AS_SCOPES,
    REFRESH_IDLE_WINDOW,
    REFRESH_ROTATION_LEEWAY,
    SWEEP_INTERVAL,
    TOKEN_EXCHANGE,
    TRANSACTION_LIFETIME,
    OktaError,
    RotationType,
)
from mocks.okta.grants import CodeAndRefreshGrants
from mocks.okta.introspection import Introspection
from mocks.okta.records import (
    AuthCode,
    AuthorizationServer,
    AuthRequest,
    ClaimRule,
    OktaClient,
    OktaUser,
    RefreshToken,
    at_hash,
    default_claim_rules,
)

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "ACCESS_TOKEN_TYPE",
    "AUTH_CODE_LIFETIME",
    "CLIENT_AUTH_METHODS",
    "CUSTOM_AS_GRANTS",
    "ID_JAG_TYPE",
    "ID_TOKEN_LIFETIME",
    "ID_TOKEN_TYPE",
    "INVALID_CODE",
    "INVALID_REFRESH",
    "INVALID_SCOPE",
    "JWT_BEARER",
    "LOOPBACK_HOSTS",
    "NO_DEFAULT_SCOPES",
    "OIDC_SCOPES",
    "ORG_AS",
    "ORG_AS_GRANTS",
    "ORG_AS_SCOPES",
    "REFRESH_IDLE_WINDOW",
    "REFRESH_ROTATION_LEEWAY",
    "SWEEP_INTERVAL",
    "TOKEN_EXCHANGE",
    "TRANSACTION_LIFETIME",
    "AuthCode",
    "AuthRequest",
    "AuthorizationServer",
    "ClaimRule",
    "OktaClient",
    "OktaError",
    "OktaOrg",
    "OktaUser",
    "RefreshToken",
    "RotationType",
    "at_hash",
    "default_claim_rules",
]


class OktaOrg(CodeAndRefreshGrants, Introspection):
    """One Okta org (``acme.okta.test``) with its custom authorization servers.

    The public methods are what :mod:`mocks.sandbox`, the harness and other mocks' tests use;
    the HTTP layer in :mod:`mocks.okta.responses` only translates requests into these calls.
    """
