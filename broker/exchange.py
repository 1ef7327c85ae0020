"""Workspace tokens: reuse a stored one, or exchange the user's Okta ID token at the workspace.

Flow for (user, workspace): serve the stored token while it has more than ``reuse_margin``
seconds left; otherwise make sure the Okta ID token has more than ``id_token_margin`` left
(refreshing it with the stored, rotating Okta refresh token — Databricks ties the workspace
token's lifetime to the subject token, BR-05), then RFC 8693-exchange it at
``{workspace}/oidc/v1/token`` without client authentication (vendor-fidelity §A.3) and store
the answer. One lock per user serialises this, because Okta refresh tokens rotate: two
concurrent refreshes with one token would look like token theft to Okta.

With ``exchange_flow = "federated"`` the subject token is not the Okta ID token but the broker's
own assertion (:mod:`broker.issuer`): ``sub`` the user's email (the Databricks user name, what
the policy trusting the broker maps with ``subject_claim: sub``), ``act.sub`` the MCP client,
``aud`` the workspace URL. The Okta session is still kept fresh first: the broker vouches for a
user only while Okta still does, so deprovisioning at Okta stops access as before. Cache keys,
reuse and the per-user lock are the same in both flows. The workspace token lives no longer
than the assertion (BR-05), so federated tokens are re-exchanged every few minutes; the
exchange is one local signature and one upstream call.

The cache-key and reuse decisions are hook methods of the broker (:class:`ExchangeHooks`) so
that known-bad variants can override exactly one decision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from broker.audit import AuditLog
from broker.errors import OAuthError, PolicyDenied
from broker.issuer import BrokerIssuer
from broker.okta import IdTokenError, OktaClient
from broker.passthrough import remember_access_token
from broker.policy import Decision
from broker.resources import Target
from broker.storage import Session, Storage, UpstreamToken, fingerprint
from broker.upstream import UpstreamError, post_form, request_id_of, scrub

log = logging.getLogger("broker.exchange")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


class ExchangeHooks(Protocol):
    """Decisions a broker variant may override (see :mod:`broker.variants`)."""

    def cache_key(self, target: Target) -> str: ...

    def token_is_reusable(self, token: UpstreamToken, now: float) -> bool: ...

    def id_token_needs_refresh(self, id_token_expires_at: float, now: float) -> bool: ...

    def exchange_scope(self, target: Target) -> str: ...

    def federated_exchange(self, target: Target | None = None) -> bool: ...

    def assertion_actor(self, client_id: str) -> dict[str, str] | None: ...

    def assertion_lifetime(self) -> float: ...

    def exchange_policy(self, user_id: str, client_id: str, target: Target) -> Decision: ...


class WorkspaceTokens:
    """Obtains workspace tokens for users; see the module docstring."""

    def __init__(
        self,
        *,
        storage: Storage,
        okta: OktaClient,
        http: httpx.Client,
        audit: AuditLog,
        hooks: ExchangeHooks,
        clock: Callable[[], float],
        id_token_margin: float,
        issuer: BrokerIssuer | None = None,
        issuer_url: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._storage = storage
        self._okta = okta
        self._http = http
        self._audit = audit
        self._hooks = hooks
        self._clock = clock
        self._id_token_margin = id_token_margin
        self._issuer = issuer
        self._issuer_url = issuer_url
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def user_lock(self, user_id: str) -> threading.Lock:
        """The per-user lock (Okta refresh tokens rotate; also taken by session passthrough)."""
        return self._user_lock(user_id)

    def check_session(self, user_id: str) -> Session:
        """The user's session, refreshed at Okta when its ID token is near expiry: the broker
        issues its own tokens only while the identity provider still vouches for the user."""
        with self._user_lock(user_id):
            return self._fresh_session(user_id)

    def fresh_session(self, user_id: str, *, force: bool = False) -> Session:
        """:meth:`_fresh_session` for callers holding :meth:`user_lock`."""
        return self._fresh_session(user_id, force=force)

    def _user_lock(self, user_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(user_id, threading.Lock())

    def token_for(self, user_id: str, client_id: str, target: Target) -> UpstreamToken:
        """The workspace token for ``user_id`` at ``target``; raises :class:`OAuthError`."""
        with self._user_lock(user_id):
            return self._token_for(user_id, client_id, target)

    def _token_for(self, user_id: str, client_id: str, target: Target) -> UpstreamToken:
        key = self._hooks.cache_key(target)
        stored = self._storage.get_upstream_token(user_id, key)
        now = self._clock()
        audit = audit_fields(self._storage, user_id, client_id, target, "exchange")
        if stored is not None and self._hooks.token_is_reusable(stored, now):
            self._audit.record(
                outcome="cached",
                detail=f"stored token {fingerprint(stored.access_token)} has "
                f"{int(stored.expires_at - now)}s left",
                **audit,
            )
            return stored
        decision: Decision | None = None
        try:
            # The policy gate runs before anything leaves the broker (fail closed).
            decision = self._hooks.exchange_policy(user_id, client_id, target)
            session = self._fresh_session(user_id)
            subject_token, subject_expires_at = self._subject_token(
                session, client_id, target, decision
            )
            token, request_id = self._exchange(
                session.user_id, subject_token, subject_expires_at, target, key, decision
            )
        except OAuthError as exc:
            self._audit.record(
                outcome="denied" if isinstance(exc, PolicyDenied) else "error",
                detail=exc.description,
                request_id=exc.request_id,
                policy=exc.policy if isinstance(exc, PolicyDenied) else _summary(decision),
                **audit,
            )
            raise
        self._audit.record(
            outcome="ok",
            detail=f"exchanged for {fingerprint(token.access_token)}, "
            f"expires in {int(token.expires_at - now)}s",
            request_id=request_id,
            policy=_summary(decision),
            **audit,
        )
        return token

    # -- Okta side -----------------------------------------------------------------------
    def _fresh_session(self, user_id: str, *, force: bool = False) -> Session:
        """The user's session with an ID token that has more than the margin left (``force``:
        refresh at Okta anyway, for a fresh access token)."""
        session = self._storage.get_session(user_id)
        if session is None:
            raise OAuthError("invalid_grant", "no identity provider session; sign in again")
        now = self._clock()
        if not force and not self._hooks.id_token_needs_refresh(session.id_token_expires_at, now):
            return session
        if not session.okta_refresh_token:
            raise OAuthError(
                "invalid_grant",
                "the identity provider session has expired; sign in again "
                "(no usable identity provider refresh token)",
            )
        try:
            tokens = self._okta.refresh(session.okta_refresh_token, expected_user=user_id)
        except UpstreamError as exc:
            if exc.temporary:
                raise _unavailable(exc) from None
            self._storage.drop_okta_refresh_token(user_id)
            raise OAuthError(
                "invalid_grant",
                f"the identity provider session has expired; sign in again ({exc.summary()})",
                request_id=exc.request_id,
            ) from None
        except IdTokenError as exc:
            raise OAuthError(
                "invalid_grant",
                f"the identity provider session has expired; sign in again ({exc})",
            ) from None
        log.info("refreshed Okta ID token for %s: %s", user_id, fingerprint(tokens.id_token))
        fresh = Session(
            user_id=user_id,
            email=str(tokens.claims.get("email") or session.email or "") or None,
            id_token=tokens.id_token,
            id_token_expires_at=tokens.expires_at,
            okta_refresh_token=tokens.refresh_token or session.okta_refresh_token,
            updated_at=now,
        )
        self._storage.upsert_session(fresh)
        remember_access_token(self._storage, user_id, tokens, self._okta.issuer)
        if fresh.id_token_expires_at - now <= self._id_token_margin:
            raise OAuthError(
                "invalid_grant",
                "the identity provider issued an ID token that is about to expire; sign in again",
            )
        return fresh

    # -- the subject token ------------------------------------------------------------------
    def _subject_token(
        self, session: Session, client_id: str, target: Target, decision: Decision
    ) -> tuple[str, float]:
        """(token, its expiry): the Okta ID token (brokered) or the broker's assertion, whose
        audience and lifetime the outbound policy may narrow."""
        if not self._hooks.federated_exchange(target):
            return session.id_token, session.id_token_expires_at
        issuer_url = self._issuer_url()
        if self._issuer is None or not issuer_url:
            raise OAuthError("server_error", "the broker's issuer URL is unknown", status=500)
        if not session.email:
            raise OAuthError(
                "invalid_grant",
                "the identity provider named no email for this user, so the workspace user "
                "cannot be named; sign in again",
            )
        assertion, claims = self._issuer.mint(
            issuer=issuer_url,
            subject=session.email,
            audience=decision.audience or target.workspace_url,
            actor=self._hooks.assertion_actor(client_id),
            lifetime=min(self._hooks.assertion_lifetime(), decision.lifetime or float("inf")),
        )
        log.info(
            "minted assertion %s for %s at %s (jti %s, %ss)",
            fingerprint(assertion),
            session.user_id,
            target.workspace_host,
            claims["jti"],
            claims["exp"] - claims["iat"],
        )
        return assertion, float(claims["exp"])

    # -- Databricks side -------------------------------------------------------------------
    def _exchange(
        self,
        user_id: str,
        subject_token: str,
        subject_expires_at: float,
        target: Target,
        key: str,
        decision: Decision,
    ) -> tuple[UpstreamToken, str | None]:
        scope = self._hooks.exchange_scope(target)
        if decision.scope is not None:
            scope = " ".join(decision.scope)  # the outbound policy narrowed it
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": JWT_TOKEN_TYPE,
            "scope": scope,
        }
        try:
            body, response = post_form(self._http, target.token_url, form)
        except UpstreamError as exc:
            if exc.temporary:
                raise _unavailable(exc) from None
            raise OAuthError("invalid_grant", exc.summary(), request_id=exc.request_id) from None
        request_id = request_id_of(response)
        host = target.workspace_host
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise OAuthError(
                "server_error",
                f"upstream {host} answered without an access_token",
                status=502,
                request_id=request_id,
            )
        token_type = body.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise OAuthError(
                "server_error",
                f"upstream {host} answered token_type {scrub(str(token_type), 40)!r}, "
                "expected Bearer",
                status=502,
                request_id=request_id,
            )
        expires_in = _seconds(body.get("expires_in"))
        if expires_in is None:
            # Databricks tokens last as long as the subject token at most (§A.3); without
            # expires_in assume exactly that rather than guessing a longer life.
            log.warning("upstream %s answered without expires_in; using the subject token's", host)
            expires_at = subject_expires_at
        else:
            expires_at = self._clock() + expires_in
        if decision.lifetime is not None:
            # Outbound policy: the broker serves the token no longer than the policy allows.
            expires_at = min(expires_at, self._clock() + decision.lifetime)
        if "issued_token_type" not in body:
            log.info("upstream %s answered without issued_token_type (tolerated)", host)
        token = UpstreamToken(
            user_id=user_id,
            cache_key=key,
            access_token=access_token,
            token_type="Bearer",
            expires_at=expires_at,
            workspace_host=host,
        )
        self._storage.put_upstream_token(token)
        return token, request_id


def audit_fields(
    storage: Storage, user_id: str, client_id: str, target: Target, event: str
) -> dict[str, Any]:
    """The who/what of an audit record about ``target``."""
    session = storage.get_session(user_id)
    return {
        "user_id": user_id,
        "user_email": session.email if session is not None else None,
        "client_id": client_id,
        "resource": target.resource,
        "workspace_host": target.workspace_host,
        "upstream": target.upstream.name,
        "event": event,
    }


def _summary(decision: Decision | None) -> str | None:
    return decision.summary() if decision is not None else None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number > 0 else None
    return None


def _unavailable(exc: UpstreamError) -> OAuthError:
    """Upstream down or 5xx: 502 ``temporarily_unavailable`` (the client may retry)."""
    return OAuthError(
        "temporarily_unavailable", exc.summary(), status=502, request_id=exc.request_id
    )
