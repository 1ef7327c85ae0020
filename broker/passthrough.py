"""Session passthrough: Snowflake resources get the user's cached Okta access token.

Snowflake External OAuth accepts the IdP's access tokens directly (issuer, keys, ``aud``
``api://default``, ``sub`` mapped to LOGIN_NAME, the role from a ``session:role:<ROLE>``
scope), so there is nothing to exchange: the broker asks Okta for the configured role scope at
a Snowflake login, keeps the access token Okta issued at login or refresh (cache key
:data:`OKTA_ACCESS_KEY`), refreshes it at Okta when it is near expiry, and hands it out for
``/v1/snowflake/<account>/mcp``. The ID token is never handed out: its audience is the broker,
and it is the user's identity assertion to the broker, not a credential for a resource.

A token without the role scope (the user signed in for a Databricks resource, so Okta was not
asked for it) is ``invalid_scope`` "sign in for the Snowflake resource" instead of a token
Snowflake would refuse with 390186. Each decision is one audit record; the copy handed out is
stored per user under ``snowflake-<account host>`` (isolation like the Databricks tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import jwt

from broker.audit import AuditLog
from broker.errors import OAuthError, PolicyDenied
from broker.okta import IdTokenError, OktaClient, OktaTokens
from broker.policy import Decision
from broker.resources import Target
from broker.storage import Session, Storage, UpstreamToken, fingerprint
from broker.upstream import UpstreamError

if TYPE_CHECKING:
    from broker.exchange import WorkspaceTokens

#: Storage key of the user's latest Okta access token (one per user: one Okta session).
OKTA_ACCESS_KEY = "okta-access-token"
ROLE_SCOPE_PREFIX = "session:role:"


class PassthroughHooks(Protocol):
    """Decisions a broker variant may override (see :mod:`broker.variants`)."""

    def token_is_reusable(self, token: UpstreamToken, now: float) -> bool: ...

    def passthrough_token(self, session: Session, okta_access_token: str) -> str: ...

    def exchange_policy(self, user_id: str, client_id: str, target: Target) -> Decision: ...

    def snowflake_role(self, target: Target, decision: Decision) -> str: ...


def role_scope(role: str) -> str:
    """The Okta scope that makes Snowflake open the session with ``role``."""
    return f"{ROLE_SCOPE_PREFIX}{role}"


def remember_access_token(storage: Storage, user_id: str, tokens: OktaTokens, issuer: str) -> None:
    """Keep the access token of an Okta login or refresh (skipped when Okta sent none)."""
    if not tokens.access_token or tokens.access_expires_at is None:
        return
    storage.put_upstream_token(
        UpstreamToken(
            user_id=user_id,
            cache_key=OKTA_ACCESS_KEY,
            access_token=tokens.access_token,
            token_type="Bearer",
            expires_at=tokens.access_expires_at,
            workspace_host=issuer,
        )
    )


def token_scopes(token: str) -> set[str]:
    """The scopes of an Okta JWT access token (``scp`` list or ``scope`` string).

    Read without verification on purpose: the token came from Okta over the broker's own
    authenticated back channel; the question is only whether to hand it out, and Snowflake
    verifies it.
    """
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return set()
    scp = claims.get("scp")
    if isinstance(scp, list):
        return {str(s) for s in scp}
    scope = claims.get("scope")
    return set(scope.split()) if isinstance(scope, str) else set()


class SessionPassthrough:
    """Hands out the user's Okta access token for Snowflake resources (module docstring).

    The role: the resource's ``role``, or the one the outbound policy chose among its
    ``roles``. A login for a resource with several roles asked Okta for all of them; Snowflake
    accepts one ``session:role:`` scope per token, so the broker narrows: it refreshes at Okta
    with that one role scope (a subset of the grant, RFC 6749 §6) and keeps the one-role
    token under :func:`role_key`.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        tokens: WorkspaceTokens,
        audit: AuditLog,
        hooks: PassthroughHooks,
        clock: Callable[[], float],
        okta: OktaClient,
    ) -> None:
        self._storage = storage
        self._tokens = tokens
        self._audit = audit
        self._hooks = hooks
        self._clock = clock
        self._okta = okta

    def token_for(
        self, user_id: str, client_id: str, target: Target, role: str | None = None
    ) -> UpstreamToken:
        """The token for ``user_id`` at a Snowflake ``target`` with ``role`` (default the
        resource's); raises :class:`OAuthError`."""
        from broker.exchange import audit_fields

        audit = audit_fields(self._storage, user_id, client_id, target, "passthrough")
        decision: Decision | None = None
        with self._tokens.user_lock(user_id):
            try:
                # The policy gate runs first; it may choose the role among the resource's.
                decision = self._hooks.exchange_policy(user_id, client_id, target)
                role = role or self._hooks.snowflake_role(target, decision)
                token, refreshed = self._token_for(user_id, target, role)
            except OAuthError as exc:
                denied = isinstance(exc, PolicyDenied)
                self._audit.record(
                    outcome="denied" if denied else "error",
                    detail=exc.description,
                    policy=exc.policy
                    if isinstance(exc, PolicyDenied)
                    else (decision.summary() if decision else None),
                    **audit,
                )
                raise
        now = self._clock()
        if decision.lifetime is not None and token.expires_at > now + decision.lifetime:
            token = replace(token, expires_at=now + decision.lifetime)
        self._audit.record(
            outcome="ok" if refreshed else "cached",
            detail=f"passed through Okta access token {fingerprint(token.access_token)} "
            f"with role {role} ({'refreshed at Okta' if refreshed else 'from the session'}), "
            f"expires in {int(token.expires_at - now)}s",
            policy=decision.summary(),
            **audit,
        )
        return token

    def _token_for(self, user_id: str, target: Target, role: str) -> tuple[UpstreamToken, bool]:
        stored = self._storage.get_upstream_token(user_id, OKTA_ACCESS_KEY)
        refreshed = stored is None or not self._hooks.token_is_reusable(stored, self._clock())
        if refreshed:
            session = self._tokens.fresh_session(user_id, force=True)
            stored = self._storage.get_upstream_token(user_id, OKTA_ACCESS_KEY)
        else:
            found = self._storage.get_session(user_id)
            if found is None:
                raise OAuthError("invalid_grant", "no identity provider session; sign in again")
            session = found
        if stored is None or stored.expires_at <= self._clock():
            raise OAuthError(
                "invalid_grant", "the identity provider issued no access token; sign in again"
            )
        wanted = role_scope(role)
        scopes = token_scopes(stored.access_token)
        if wanted not in scopes:
            raise OAuthError(
                "invalid_scope",
                f"the identity provider token lacks the {wanted} scope Snowflake needs; "
                "sign in again for the Snowflake resource",
            )
        if len([s for s in scopes if s.startswith(ROLE_SCOPE_PREFIX)]) > 1:
            stored, narrowed = self._one_role_token(session, role)
            refreshed = refreshed or narrowed
        token = UpstreamToken(
            user_id=user_id,
            cache_key=target.upstream.isolation_key(target.workspace_host),
            access_token=self._hooks.passthrough_token(session, stored.access_token),
            token_type="Bearer",
            expires_at=stored.expires_at,
            workspace_host=target.workspace_host,
        )
        self._storage.put_upstream_token(token)
        return token, refreshed

    def _one_role_token(self, session: Session, role: str) -> tuple[UpstreamToken, bool]:
        """A one-role access token narrowed from the multi-role grant (stored or refreshed)."""
        key = role_key(role)
        stored = self._storage.get_upstream_token(session.user_id, key)
        if stored is not None and self._hooks.token_is_reusable(stored, self._clock()):
            return stored, False
        if not session.okta_refresh_token:
            raise OAuthError("invalid_grant", "no identity provider refresh token; sign in again")
        scope = f"{self._okta.scopes} {role_scope(role)}"
        try:
            tokens = self._okta.refresh(
                session.okta_refresh_token, expected_user=session.user_id, scope=scope
            )
        except UpstreamError as exc:
            raise OAuthError(
                "invalid_grant",
                f"the identity provider refused a {role_scope(role)} token ({exc.summary()})",
                request_id=exc.request_id,
            ) from None
        except IdTokenError as exc:
            raise OAuthError(
                "invalid_grant", f"the identity provider answered badly ({exc})"
            ) from None
        if tokens.refresh_token:
            self._storage.upsert_session(
                replace(session, okta_refresh_token=tokens.refresh_token, updated_at=self._clock())
            )
        if not tokens.access_token or tokens.access_expires_at is None:
            raise OAuthError("invalid_grant", "the identity provider issued no access token")
        token = UpstreamToken(
            user_id=session.user_id,
            cache_key=key,
            access_token=tokens.access_token,
            token_type="Bearer",
            expires_at=tokens.access_expires_at,
            workspace_host=self._okta.issuer,
        )
        self._storage.put_upstream_token(token)
        return token, True


def role_key(role: str) -> str:
    """Storage key of the user's one-role Okta access token for ``role``."""
    return f"{OKTA_ACCESS_KEY}:{role}"
