"""The broker: a WSGI application wiring storage, Okta, the exchange service and the endpoints.

:class:`Broker` owns every decision that a known-bad variant may override, as small, named
hook methods (:meth:`Broker.is_valid_segment`, :meth:`Broker.cache_key`,
:meth:`Broker.token_is_reusable`, :meth:`Broker.access_token_for_client`); the main code never
asks "which variant am I". Time is read only from the injected ``clock`` so an in-process
harness can move it.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from broker import authorize, consent, issuer, metadata, registration, token
from broker.audit import AuditLog
from broker.config import BrokerConfig
from broker.errors import ConfigError, OAuthError, PolicyDenied, invalid_target
from broker.exchange import WorkspaceTokens
from broker.http_util import error_response, json_response
from broker.issuer import BrokerIssuer
from broker.okta import OKTA_SCOPES, OktaClient
from broker.passthrough import SessionPassthrough
from broker.policy import Decision, PolicyEngine, PolicyError
from broker.resources import Target, is_valid_segment, split_resource, workspace_for
from broker.storage import AuthCode, Client, Session, Storage, UpstreamToken
from broker.upstreams import Upstream

log = logging.getLogger("broker")


def _policy_engine(config: BrokerConfig) -> PolicyEngine:
    """The configured policies compiled (a broken policy stops the start, naming file:line)."""
    try:
        if config.policy_inbound_rego is None and config.policy_outbound_rego is None:
            return PolicyEngine.from_files(config.policy_inbound, config.policy_outbound)
        return PolicyEngine(
            config.policy_inbound_rego or _policy_source(config.policy_inbound, "inbound.rego"),
            config.policy_outbound_rego or _policy_source(config.policy_outbound, "outbound.rego"),
        )
    except PolicyError as exc:
        raise ConfigError(f"policy: {exc}") from None


def _policy_source(path: str | None, default_name: str) -> str:
    """The Rego source at ``path``, or the shipped default policy ``default_name``."""
    if path is None:
        path = os.path.join(os.path.dirname(__file__), "policies", default_name)
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def session_groups(session: Session | None) -> list[str]:
    """The user's groups from the ID token of the session (Okta's ``groups`` claim), read
    without verification: the broker verified the token when Okta issued it."""
    if session is None:
        return []
    try:
        claims = jwt.decode(session.id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    groups = claims.get("groups")
    return [str(g) for g in groups] if isinstance(groups, list) else []


Handler = Callable[["Broker", Request], Response]

if TYPE_CHECKING:
    from broker.client_metadata import ClientMetadataFetcher


class Broker:
    """The reference broker as a WSGI callable (see the module docstring)."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        base_url: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        #: The bound server URL; ``config.public_base_url`` wins, the request host is the last
        #: resort (when the app is mounted by another WSGI server).
        self.base_url = base_url.rstrip("/") if base_url else None
        self.storage = Storage(config.storage)
        #: One client for every upstream call; ``http`` lets tests inject a mock transport.
        self.http = http or httpx.Client(
            # No cookies between upstream calls: the gateway relays answers of many users.
            cookies=httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))),
            proxy=config.upstream_proxy,
            verify=(
                ssl.create_default_context(cafile=config.upstream_ca_bundle)
                if config.upstream_ca_bundle
                else True
            ),
            trust_env=False,
            timeout=config.upstream_timeout,
            follow_redirects=False,
        )
        self.okta = OktaClient(
            self.http,
            issuer=config.okta_issuer,
            client_id=config.okta_client_id,
            client_secret=config.okta_client_secret,
            clock=clock,
            scopes=OKTA_SCOPES + (" groups" if config.okta_groups_scope else ""),
        )
        self.audit = self.make_audit_log(config)
        #: The Rego policy gate (:mod:`broker.policy`), compiled once at start-up.
        self.policy = _policy_engine(config)
        #: The broker's own signing keys (federated exchange flow, :mod:`broker.issuer`).
        self.issuer = BrokerIssuer(
            self.storage,
            clock,
            # Retired keys stay published as long as any token they signed can live.
            assertion_lifetime=max(
                config.federated_assertion_lifetime, config.gateway_token_lifetime
            ),
            rotation_interval=config.federated_key_rotation,
            publish_lead=config.federated_key_publish_lead,
        )
        self.tokens = WorkspaceTokens(
            storage=self.storage,
            okta=self.okta,
            http=self.http,
            audit=self.audit,
            hooks=self,
            clock=clock,
            id_token_margin=config.id_token_margin,
            issuer=self.issuer,
            issuer_url=lambda: self.config.public_base_url or self.base_url,
        )
        self.passthrough = SessionPassthrough(
            storage=self.storage,
            tokens=self.tokens,
            audit=self.audit,
            hooks=self,
            clock=clock,
            okta=self.okta,
        )
        #: Every enabled upstream (resource family) by name, in configuration order.
        self.upstreams: dict[str, Upstream] = config.upstream_map
        self._segment_regexes = {n: u.segment_regex for n, u in self.upstreams.items()}
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/.well-known/oauth-authorization-server"): metadata.authorization_server,
            ("POST", "/register"): registration.register,
            ("GET", "/authorize"): authorize.authorize,
            ("POST", "/consent"): consent.submit,
            ("GET", "/callback"): authorize.callback,
            ("POST", "/token"): token.token,
            ("GET", "/health"): lambda _b, _r: json_response({"status": "ok"}, no_store=False),
        }
        # The issuer documents (federated flow); 404 while the broker is no issuer.
        self._routes[("GET", "/.well-known/openid-configuration")] = issuer.discovery_endpoint
        self._routes[("GET", "/jwks")] = issuer.jwks_endpoint

    # -- hooks (overridden by broker.variants) -------------------------------------------
    def is_valid_segment(self, segment: str, upstream: Upstream) -> bool:
        """Whether a resource path segment may name a host of ``upstream`` (security-critical:
        it becomes the first label of the upstream host name; a workspace or an account)."""
        return is_valid_segment(segment, self._segment_regexes[upstream.name])

    def passthrough_token(self, session: Session, okta_access_token: str) -> str:
        """What a Snowflake resource gets: the user's Okta access token (aud the Okta
        authorization server, what External OAuth trusts), never the ID token (aud the broker)."""
        return okta_access_token

    def cache_key(self, target: Target) -> str:
        """Storage key of a user's upstream token: one per family and host,
        ``<upstream>-<host>`` (BR-03)."""
        return target.upstream.isolation_key(target.workspace_host)

    def token_is_reusable(self, token: UpstreamToken, now: float) -> bool:
        """A stored token is served while it has more than ``reuse_margin`` seconds left."""
        return token.expires_at - now > self.config.reuse_margin

    def id_token_needs_refresh(self, id_token_expires_at: float, now: float) -> bool:
        """Refresh the Okta ID token before an exchange when it has too little life left,
        because Databricks ties the workspace token's lifetime to it (BR-05)."""
        return id_token_expires_at - now <= self.config.id_token_margin

    def exchange_scope(self, target: Target) -> str:
        """The scope asked of the workspace: only what the MCP resource needs (BR-01)."""
        return target.upstream.scope

    def federated_exchange(self, target: Target | None = None) -> bool:
        """Whether the subject token for ``target`` is the broker's own assertion rather than
        the user's Okta ID token; without a target, whether any upstream is federated (then
        the broker publishes issuer discovery and keys)."""
        if target is not None:
            return target.upstream.flow == "federated"
        return any(u.flow == "federated" for u in self.upstreams.values())

    def assertion_actor(self, client_id: str) -> dict[str, str] | None:
        """The federated assertion's ``act`` claim: the MCP client acting for the user
        (RFC 8693 §4.1), so the platform's audit shows which agent ran a query."""
        return {"sub": client_id}

    def assertion_lifetime(self) -> float:
        """Seconds a federated assertion is valid: short, it is a bearer credential."""
        return self.config.federated_assertion_lifetime

    def access_token_for_client(self, token: UpstreamToken) -> str:
        """What the MCP client receives as ``access_token``: the workspace token."""
        return token.access_token

    def gateway_token_audience(self, resource: str, issuer: str) -> str:
        """The ``aud`` of a gateway access token: exactly the resource (RFC 8707)."""
        return resource

    def gateway_token_checks(self) -> frozenset[str]:
        """What the gateway verifies beyond the signature and issuer: the audience is this
        resource, the token has not expired (MC-02)."""
        return frozenset({"aud", "exp"})

    def required_scopes(self, target: Target, tool: str | None) -> tuple[str, ...]:
        """The broker scopes a gateway call needs: the resource's and the tool's (MC-06)."""
        return target.upstream.required_scopes(tool)

    def gateway_upstream_credential(self, token: UpstreamToken, client_token: str) -> str:
        """What the gateway sends upstream: the upstream token, never the client's own token
        (MCP "Token Passthrough", MC-03)."""
        return token.access_token

    # -- hooks of the MCP authorization rules (MC-10, PK-02..PK-08, DC-03/04, MD-05) -------
    def authorization_server_metadata(self, base: str) -> dict[str, Any]:
        """The RFC 8414 document (MD-05/MC-07: ``code_challenge_methods_supported``)."""
        return metadata.authorization_server_document(self, base)

    def consent_required(self, client: Client, redirect_uri: str, browser_hash: str) -> bool:
        """Ask the user before Okta unless this browser already approved this client and
        redirect URI (MCP "Confused Deputy"; see :mod:`broker.consent`)."""
        return not self.storage.has_consent(browser_hash, client.client_id, redirect_uri)

    def pkce_required(self) -> bool:
        """Every authorization request needs an S256 challenge and every code redemption the
        matching verifier (OAuth 2.1 §4.1.1, §4.1.3; PK-02..PK-04). Every client here is
        dynamically registered, most are public, so there is no exemption."""
        return True

    def authorization_response_iss(self, issuer: str) -> str | None:
        """The ``iss`` of every authorization response, code and error alike (RFC 9207)."""
        return issuer

    def code_already_used(self, code: AuthCode) -> bool:
        """Whether a presented code was redeemed before (single use, OAuth 2.1 §4.1.3)."""
        return code.used

    def refresh_token_state_after_use(self) -> str:
        """A used refresh token is ``rotated``: presenting it again is reuse (PK-07)."""
        return "rotated"

    def redirect_uri_matches(self, registered: str, requested: str) -> bool:
        """Exact string comparison; loopback may vary the port (PK-06, RFC 8252 §7.3)."""
        return authorize.redirect_uri_matches(registered, requested)

    def check_redirect_uri(self, uri: object) -> str:
        """Registration rule for one redirect URI: https, or http on loopback (DC-04)."""
        return registration.check_redirect_uri(uri)

    def unknown_client_metadata(self, names: set[str]) -> None:
        """Unknown registration metadata is ignored, not an error (RFC 7591 §2, DC-03)."""

    # -- hooks of client ID metadata documents and resource metadata (MC-09, PR-04) -------
    @functools.cached_property
    def client_metadata(self) -> ClientMetadataFetcher:
        """The guarded fetcher and cache of URL-shaped client ids (:mod:`broker.client_metadata`),
        made on first use."""
        from broker import client_metadata

        return client_metadata.ClientMetadataFetcher(
            proxied=self.http,
            sandbox_proxy=self.config.upstream_proxy is not None,
            ca_bundle=self.config.upstream_ca_bundle,
            clock=self.clock,
        )

    def client_metadata_documents_supported(self) -> bool:
        """URL-shaped client ids are accepted and advertised in the AS metadata
        (``client_id_metadata_document_supported``: MCP clients use them only then)."""
        return True

    def client_metadata_refusal(self, url: str, addresses: list[str]) -> str | None:
        """Why a ``client_id`` URL, connecting to ``addresses``, must not be fetched (scheme,
        host, non-public address: the SSRF guard of MC-09), or None."""
        return self.client_metadata.refusal(url, addresses)

    def client_metadata_id_matches(self, document_client_id: object, url: str) -> bool:
        """A metadata document describes the client only if its ``client_id`` is exactly the
        URL it was fetched from (MC-09; no normalisation)."""
        return document_client_id == url

    def resource_metadata_url(self, resource: str, base: str) -> str | None:
        """The RFC 9728 metadata URL of a resource (the path-inserted form, §3.1), named in
        every 401 challenge at the resource (PR-04) and served by :mod:`broker.metadata`."""
        return metadata.resource_metadata_url(resource, base)

    # -- policy gate (Rego, :mod:`broker.policy`) -----------------------------------------
    def snowflake_role(self, target: Target, decision: Decision) -> str:
        """The role a Snowflake token carries: the outbound policy's choice among the
        resource's roles, else the resource's own role."""
        return decision.role or target.upstream.role or ""

    def make_audit_log(self, config: BrokerConfig) -> AuditLog:
        """The audit log: SQLite table plus the optional JSON-lines file."""
        return AuditLog(self.storage, self.clock, config.audit_log)

    def evaluate_policy(self, side: str, document: dict[str, Any]) -> Decision:
        """One policy (``inbound`` or ``outbound``) on one input document."""
        if side == "inbound":
            return self.policy.evaluate_inbound(document)
        return self.policy.evaluate_outbound(document)

    def policy_allows(self, decision: Decision) -> bool:
        """Whether a decision lets the request through: only an explicit allow; a policy
        that could not be evaluated denies (fail closed)."""
        return decision.allow and not decision.error

    def policy_input(
        self,
        phase: str,
        *,
        user_id: str,
        client_id: str,
        target: Target,
        tool: str | None = None,
        arguments: object = None,
    ) -> dict[str, Any]:
        """The input document of both policies (the contract in :mod:`broker.policy`)."""
        session = self.storage.get_session(user_id)
        client = self.storage.get_client(client_id)
        upstream = target.upstream
        scope = self.exchange_scope(target) if upstream.provider == "databricks" else ""
        return {
            "phase": phase,
            "user": {
                "id": user_id,
                "email": session.email if session else None,
                "groups": session_groups(session),
            },
            "client": {
                "id": client_id,
                "name": (client.metadata.get("client_name") if client else None),
            },
            "tool": None if tool is None else {"name": tool, "arguments": arguments},
            "upstream": {
                "name": upstream.name,
                "provider": upstream.provider,
                "host": target.workspace_host,
                "resource": target.resource,
                "flow": upstream.flow,
                "roles": list(upstream.roles),
                "gateway": upstream.gateway,
            },
            "requested": {
                "scope": scope.split(),
                "audience": target.workspace_url,
                "lifetime": self.assertion_lifetime(),
            },
            "time": self.clock(),
        }

    def inbound_gate(self, phase: str, **subject: Any) -> Decision:
        """Evaluate the inbound policy; raise :class:`PolicyDenied` unless it allows."""
        decision = self.evaluate_policy("inbound", self.policy_input(phase, **subject))
        if not self.policy_allows(decision):
            raise PolicyDenied(f"denied by policy: {decision.summary()}", decision.summary())
        return decision

    def exchange_policy(self, user_id: str, client_id: str, target: Target) -> Decision:
        """The gate before every exchange or passthrough: inbound, then outbound (the
        narrowing of scope, audience, lifetime and role); raises :class:`PolicyDenied`."""
        subject: dict[str, Any] = {"user_id": user_id, "client_id": client_id, "target": target}
        self.inbound_gate("exchange", **subject)
        decision = self.evaluate_policy("outbound", self.policy_input("exchange", **subject))
        if not self.policy_allows(decision):
            raise PolicyDenied(f"denied by policy: {decision.summary()}", decision.summary())
        return decision

    def audit_token(
        self,
        user_id: str,
        client_id: str,
        target: Target,
        detail: str,
        *,
        outcome: str = "ok",
        policy: str | None = None,
    ) -> None:
        """An audit record of the token endpoint: a broker token issued (gateway mode), or a
        token request the policy denied."""
        from broker.exchange import audit_fields

        self.audit.record(
            outcome=outcome,
            detail=detail,
            policy=policy,
            **audit_fields(self.storage, user_id, client_id, target, "token"),
        )

    # -- shared helpers ------------------------------------------------------------------
    def base(self, request: Request) -> str:
        """The broker's issuer / base URL for this request."""
        return self.config.public_base_url or self.base_url or request.host_url.rstrip("/")

    def target(self, resource: str, base: str) -> Target:
        """Validate a resource indicator and map it to its upstream host; else
        ``invalid_target`` (before any upstream request)."""
        for upstream in self.upstreams.values():
            segment = split_resource(resource, base, upstream.path_prefix)
            if segment is None:
                continue
            valid = self.is_valid_segment(segment, upstream)
            if not valid:
                what = "Snowflake account" if upstream.provider == "snowflake" else "workspace"
                raise invalid_target(f"the resource does not name an acceptable {what}")
            url, host = workspace_for(segment, upstream.host_template)
            return Target(
                resource=resource,
                segment=segment.lower(),
                workspace_url=url,
                workspace_host=host,
                upstream=upstream,
            )
        names = ", ".join(f"{base}/v1/{name}/<segment>/mcp" for name in self.upstreams)
        raise invalid_target(f"resource must be one of {names}, without query or fragment")

    def audit_records(self) -> list[dict[str, Any]]:
        """Every audit record, oldest first (in-process API for the harness)."""
        return self.audit.records()

    def reset(self) -> None:
        """Forget everything: storage rows and cached Okta discovery/keys (between scenarios)."""
        self.storage.wipe()
        self.okta.forget()
        self.issuer.forget()

    def close(self) -> None:
        self.http.close()
        self.storage.close()

    # -- WSGI ----------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        path = request.path
        if metadata.is_resource_path(self, path):
            return metadata.resource(self, request)
        if path.startswith(metadata.PRM_PREFIX + "/") and request.method in ("GET", "HEAD"):
            raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or path
            return metadata.protected_resource(self, request, raw.split("?", 1)[0])
        handler = self._routes.get((request.method, path))
        if handler is None:
            if any(p == path for _, p in self._routes):
                return json_response({"error": "method_not_allowed"}, 405)
            return json_response({"error": "not_found"}, 404)
        try:
            return handler(self, request)
        except OAuthError as exc:
            return error_response(exc)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as exc:
            response = json_response(
                {"error": "invalid_request", "error_description": exc.description or exc.name},
                exc.code or 400,
            )
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            response = json_response({"error": "server_error"}, 500)
        return response(environ, start_response)
