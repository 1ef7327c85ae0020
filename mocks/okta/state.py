"""The state every part of a mock Okta org shares: its stores, settings, lock and clock.

:class:`OrgState` is the base of the org's behaviour classes (servers, directory, tokens,
grants, introspection), each in its own module; :class:`~mocks.okta.models.OktaOrg` combines
them. All stores are reset together, so a reset can never leave a token of a deleted user.
"""

from __future__ import annotations

import threading

from mocks.core.jose import KeySet
from mocks.core.server import SandboxContext
from mocks.okta.constants import (
    ACCESS_TOKEN_LIFETIME,
    AUTH_CODE_LIFETIME,
    ID_TOKEN_LIFETIME,
    ORG_AS,
    ORG_AS_GRANTS,
    ORG_AS_SCOPES,
    REFRESH_IDLE_WINDOW,
    REFRESH_ROTATION_LEEWAY,
    SWEEP_INTERVAL,
    RotationType,
)
from mocks.okta.records import (
    AuthCode,
    AuthorizationServer,
    AuthRequest,
    OktaClient,
    OktaUser,
    RefreshToken,
)


class OrgState:
    """Stores and settings of one org, the lock that guards them and the sweep that bounds them."""

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

    # -- single-use ids ---------------------------------------------------------------
    def use_jti(self, jti: str, until: float) -> bool:
        """Record a single-use ``jti``; ``False`` if it was seen before (a replay)."""
        with self._lock:
            self._sweep()
            if jti in self.used_jtis:
                return False
            self.used_jtis[jti] = until
            return True

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
