"""Known-bad broker variants, used to test the tester (DESIGN §7, ``--broker reference:<d>``).

Each defect is one small subclass overriding exactly one hook of :class:`broker.app.Broker`,
so the real code stays free of ``if defect`` branches and each defect is easy to review.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from broker.app import Broker
from broker.audit import AuditLog
from broker.config import BrokerConfig
from broker.errors import OAuthError
from broker.policy import Decision
from broker.resources import Target
from broker.storage import AuthCode, Client, Session, UpstreamToken
from broker.upstreams import Upstream


class SharedCacheBroker(Broker):
    """One cache key for every workspace: a token of workspace A is served for workspace B."""

    def cache_key(self, target: Target) -> str:
        return "databricks-sql"


class NoSegmentCheckBroker(Broker):
    """Any non-empty segment names a workspace (``evil``, ``dbc-a.evil.com``, …)."""

    def is_valid_segment(self, segment: str, upstream: Upstream) -> bool:
        if upstream.provider != "databricks":
            return super().is_valid_segment(segment, upstream)
        return bool(segment)


class StaleTokensBroker(Broker):
    """Stored workspace tokens are served even after they expired."""

    def token_is_reusable(self, token: UpstreamToken, now: float) -> bool:
        return True


class LeakIdTokenBroker(Broker):
    """Returns the user's Okta ID token as ``access_token`` instead of the workspace token."""

    def access_token_for_client(self, token: UpstreamToken) -> str:
        session = self.storage.get_session(token.user_id)
        return session.id_token if session is not None else token.access_token


class NoReuseBroker(Broker):
    """Never reuses a stored token: every request costs a new exchange."""

    def token_is_reusable(self, token: UpstreamToken, now: float) -> bool:
        return False


class NoIdpRefreshBroker(Broker):
    """Never refreshes the Okta ID token, so exchanges go out with an expired subject token."""

    def id_token_needs_refresh(self, id_token_expires_at: float, now: float) -> bool:
        return False


class OverScopedBroker(Broker):
    """Asks the workspace for ``all-apis`` instead of the ``sql`` scope the resource needs."""

    def exchange_scope(self, target: Target) -> str:
        return "all-apis"


class NoPkceBroker(Broker):
    """PKCE is not enforced: no code_challenge is required and no code_verifier is checked."""

    def pkce_required(self) -> bool:
        return False


class CodeReuseBroker(Broker):
    """Authorization codes can be redeemed again, and a replay revokes nothing."""

    def code_already_used(self, code: AuthCode) -> bool:
        return False


class NoConsentBroker(Broker):
    """Forwards every authorization request to Okta without asking the user (confused deputy)."""

    def consent_required(self, client: Client, redirect_uri: str, browser_hash: str) -> bool:
        return False


class NoIssBroker(Broker):
    """Omits ``iss`` from authorization responses although its metadata advertises it."""

    def authorization_response_iss(self, issuer: str) -> str | None:
        return None


class NoPkceMetadataBroker(Broker):
    """Metadata without ``code_challenge_methods_supported`` (MCP clients must refuse it)."""

    def authorization_server_metadata(self, base: str) -> dict[str, Any]:
        document = super().authorization_server_metadata(base)
        document.pop("code_challenge_methods_supported", None)
        return document


class SsrfClientMetadataBroker(Broker):
    """Fetches any ``client_id`` URL, loopback, private and link-local addresses included."""

    def client_metadata_refusal(self, url: str, addresses: list[str]) -> str | None:
        return None


class CimdIdMismatchBroker(Broker):
    """Accepts a client metadata document whose ``client_id`` is not the URL it came from."""

    def client_metadata_id_matches(self, document_client_id: object, url: str) -> bool:
        return True


class NoCimdBroker(Broker):
    """No client ID metadata documents: not advertised, a URL ``client_id`` is unknown."""

    def client_metadata_documents_supported(self) -> bool:
        return False


class NoResourceMetadataBroker(Broker):
    """Serves no RFC 9728 metadata: 401s at a resource name no ``resource_metadata``."""

    def resource_metadata_url(self, resource: str, base: str) -> str | None:
        return None


class NoRotationBroker(Broker):
    """Refresh tokens are not rotated: a used refresh token keeps working."""

    def refresh_token_state_after_use(self) -> str:
        return "active"


class LooseRedirectsBroker(Broker):
    """Redirect URIs match by prefix (``…/cb`` also accepts ``…/cb/evil`` and ``…/cb.evil``)."""

    def redirect_uri_matches(self, registered: str, requested: str) -> bool:
        return requested.startswith(registered)


class OpenRegistrationBroker(Broker):
    """Registers any redirect URI (``http://evil.example/cb``, custom schemes)."""

    def check_redirect_uri(self, uri: object) -> str:
        if not isinstance(uri, str) or not uri:
            raise OAuthError("invalid_redirect_uri", "redirect_uris must be non-empty strings")
        return uri


class StrictDcrBroker(Broker):
    """Refuses registrations carrying unknown metadata (the common RFC 7591 interop failure)."""

    def unknown_client_metadata(self, names: set[str]) -> None:
        if names:
            raise OAuthError(
                "invalid_client_metadata", f"unknown metadata: {', '.join(sorted(names))}"
            )


class NoActClaimBroker(Broker):
    """Federated assertions carry no ``act`` claim (the platform cannot see the MCP client)."""

    def assertion_actor(self, client_id: str) -> dict[str, str] | None:
        return None


class IgnoresFederatedFlowBroker(Broker):
    """Configured federated, still forwards the Okta ID token and publishes no issuer keys."""

    def federated_exchange(self, target: Target | None = None) -> bool:
        return False


class LongLivedAssertionBroker(Broker):
    """Federated assertions are valid for a day instead of minutes."""

    def assertion_lifetime(self) -> float:
        return 24 * 3600.0


class NoAccountCheckBroker(Broker):
    """Any non-empty segment names a Snowflake account (``myorg-acct1.evil.com``, ``evil``)."""

    def is_valid_segment(self, segment: str, upstream: Upstream) -> bool:
        if upstream.provider != "snowflake":
            return super().is_valid_segment(segment, upstream)
        return bool(segment)


class PassthroughIdTokenBroker(Broker):
    """Session passthrough hands Snowflake the user's Okta ID token, not the access token."""

    def passthrough_token(self, session: Session, okta_access_token: str) -> str:
        return session.id_token


class PassthroughClientTokenBroker(Broker):
    """The gateway forwards the MCP client's own token upstream (MCP "Token Passthrough")."""

    def gateway_upstream_credential(self, token: UpstreamToken, client_token: str) -> str:
        return client_token


class PolicyFailOpenBroker(Broker):
    """A policy that cannot be evaluated lets the request through (fail open)."""

    def policy_allows(self, decision: Decision) -> bool:
        return decision.allow or decision.error


class LaxGatewayTokensBroker(Broker):
    """Gateway tokens name the whole broker as audience and are accepted at any resource and
    after they expired."""

    def gateway_token_audience(self, resource: str, issuer: str) -> str:
        return issuer

    def gateway_token_checks(self) -> frozenset[str]:
        return frozenset()


class NoScopeChallengeBroker(Broker):
    """The gateway checks only the resource's base scopes: any tool runs with them."""

    def required_scopes(self, target: Target, tool: str | None) -> tuple[str, ...]:
        return target.upstream.scopes


class NoPolicyBroker(Broker):
    """The policies are never evaluated: everything is allowed, nothing narrowed."""

    def evaluate_policy(self, side: str, document: dict[str, Any]) -> Decision:
        return Decision(allow=True)


class _NullAuditLog(AuditLog):
    def record(self, **fields: Any) -> dict[str, Any]:
        return {}


class NoAuditBroker(Broker):
    """Keeps no audit records: nobody can follow a request from the user to the query."""

    def make_audit_log(self, config: BrokerConfig) -> AuditLog:
        return _NullAuditLog(self.storage, self.clock)


class OneRoleForAllBroker(Broker):
    """Every Snowflake token carries the broker-wide default role, whatever the resource or
    the policy chose."""

    def snowflake_role(self, target: Target, decision: Decision) -> str:
        return self.config.snowflake_role


VARIANTS: dict[str, type[Broker]] = {
    "shared-cache": SharedCacheBroker,
    "no-segment-check": NoSegmentCheckBroker,
    "stale-tokens": StaleTokensBroker,
    "leak-id-token": LeakIdTokenBroker,
    "no-reuse": NoReuseBroker,
    "no-idp-refresh": NoIdpRefreshBroker,
    "over-scoped": OverScopedBroker,
    "no-pkce": NoPkceBroker,
    "ssrf-client-metadata": SsrfClientMetadataBroker,
    "cimd-id-mismatch": CimdIdMismatchBroker,
    "no-cimd": NoCimdBroker,
    "no-resource-metadata": NoResourceMetadataBroker,
    "passthrough-id-token": PassthroughIdTokenBroker,
    "no-account-check": NoAccountCheckBroker,
    "passthrough-client-token": PassthroughClientTokenBroker,
    "policy-fail-open": PolicyFailOpenBroker,
    "lax-gateway-tokens": LaxGatewayTokensBroker,
    "no-scope-challenge": NoScopeChallengeBroker,
    "no-policy": NoPolicyBroker,
    "no-audit": NoAuditBroker,
    "one-role-for-all": OneRoleForAllBroker,
    "code-reuse": CodeReuseBroker,
    "no-consent": NoConsentBroker,
    "no-iss": NoIssBroker,
    "no-pkce-metadata": NoPkceMetadataBroker,
    "no-rotation": NoRotationBroker,
    "loose-redirects": LooseRedirectsBroker,
    "open-registration": OpenRegistrationBroker,
    "strict-dcr": StrictDcrBroker,
    "no-act-claim": NoActClaimBroker,
    "long-lived-assertion": LongLivedAssertionBroker,
    "ignores-federated-flow": IgnoresFederatedFlowBroker,
}

DEFECTS: dict[str, str] = {
    name: (cls.__doc__ or name).strip().splitlines()[0] for name, cls in VARIANTS.items()
}


def broker_class(defect: str | None) -> type[Broker]:
    """The class implementing ``defect`` (None: the correct broker)."""
    if defect is None:
        return Broker
    try:
        return VARIANTS[defect]
    except KeyError:
        raise ValueError(
            f"unknown broker defect {defect!r}; valid defects: {', '.join(sorted(VARIANTS))}"
        ) from None


def create_broker(
    config: BrokerConfig,
    *,
    clock: Callable[[], float] = time.time,
    defect: str | None = None,
    base_url: str | None = None,
) -> Broker:
    """Build the reference broker, or one of its known-bad variants, as a WSGI app."""
    return broker_class(defect)(config, clock=clock, base_url=base_url)
