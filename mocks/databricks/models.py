"""Mock Databricks account state: workspaces, the account host, users, service principals,
federation policies, OAuth apps, issued tokens.

This module only holds state and answers directory questions; the grant logic (token
federation, M2M, U2M) is in :mod:`mocks.databricks.grants`, subject-token verification in
:mod:`mocks.databricks.federation`, policy validation in :mod:`mocks.databricks.policies`.
Facts that ``vendor-fidelity.md`` marks unverified (error status of a refused subject token,
token and code lifetimes, refresh rotation) are settings on :class:`Authority` with
documented defaults, so a scenario can switch them when the real service turns out otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import jwt

from mocks.core.jose import KeySet
from mocks.core.server import SandboxContext

if TYPE_CHECKING:
    from mocks.databricks.federation import SubjectVerifier

ALLOWED_SCOPES = frozenset(
    {
        "all-apis",
        "sql",
        "offline_access",
        "genie",
        "vector-search",
        "ai-search",
        "unity-catalog",
        "dashboards",
        "authentication",
    }
)
#: The built-in public U2M client of the Databricks CLI and SDKs (``vendor-fidelity.md`` §A.5).
CLI_CLIENT_ID = "databricks-cli"
CLI_REDIRECT_URL = "http://localhost:8020"


def sha256_hex(secret: str) -> str:
    """What the account keeps of a secret, code or refresh token; also seeds stable ids."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, digests: list[str]) -> bool:
    """Constant-time comparison against stored SHA-256 digests (secrets are never stored)."""
    candidate = sha256_hex(secret)
    return any(hmac.compare_digest(candidate, d) for d in digests)


@dataclass(frozen=True)
class Principal:
    """Who a Databricks token speaks for: a user (by user name) or an SP (by application id)."""

    kind: Literal["user", "service_principal"]
    name: str


@dataclass
class User:
    user_name: str
    id: str
    active: bool = True
    account_admin: bool = False


@dataclass
class ServicePrincipal:
    """An account service principal: a numeric SCIM ``id`` and a UUID ``application_id``.

    The ``application_id`` is the OAuth ``client_id`` (M2M and workload identity federation);
    the numeric id appears in the SP federation-policy REST paths.
    """

    id: int
    application_id: str
    display_name: str
    secret_digests: list[str] = field(default_factory=list, repr=False)
    active: bool = True
    account_admin: bool = False


@dataclass
class FederationPolicy:
    """An account policy (``service_principal_id`` None) or a service-principal policy."""

    policy_id: str
    issuer: str
    audiences: list[str]
    subject_claim: str = "sub"
    jwks_uri: str | None = None
    jwks_json: str | None = None
    subject: str | None = None
    description: str | None = None
    service_principal_id: int | None = None
    uid: str = ""
    """The policy's UUID in REST answers; :func:`mocks.databricks.policies.create_policy` draws
    it from the sandbox's id source, so seeded sandboxes replay it."""
    create_time: float = 0.0
    update_time: float = 0.0


@dataclass
class OAuthApp:
    """A U2M client: the built-in public ``databricks-cli`` or a custom app integration."""

    client_id: str
    redirect_urls: list[str]
    confidential: bool = False
    secret_digests: list[str] = field(default_factory=list, repr=False)
    scopes: list[str] | None = None
    """Scopes the app may request; ``None`` admits every scope the account knows."""


@dataclass
class QueryRecord:
    """One MCP tool call in a workspace's history, attributed to the principal it ran as.

    ``server`` is the MCP server path below ``/api/2.0/mcp/`` (``sql``, ``genie/<space>``...);
    for ``sql`` the statement is the SQL text, for the others the tool name and arguments.
    """

    user: str
    statement: str
    time: float
    status: str
    token_jti: str
    server: str = "sql"
    #: The journal request id of the MCP call that ran it (the ``X-Request-Id`` answered).
    request_id: str | None = None


@dataclass
class PendingCode:
    client_id: str
    redirect_uri: str
    scopes: list[str]
    code_challenge: str
    principal: Principal
    expires_at: float


@dataclass
class RefreshGrant:
    client_id: str
    scopes: list[str]
    principal: Principal
    expires_at: float


@dataclass(kw_only=True)
class Authority:
    """A Databricks OAuth issuer: a workspace (``/oidc``) or the account (``/oidc/accounts/<id>``).

    Both issue JWT access tokens signed with their own keys; a token is accepted only where it
    was issued. The settings below model facts the research could not pin down.
    """

    host: str
    keys: KeySet
    context: SandboxContext = field(repr=False)
    oidc_path: str = "/oidc"
    #: Upper bound on issued token lifetime (U2M/M2M tokens last one hour [DOC]); a federated
    #: token never outlives its subject token either [UNVERIFIED rule].
    token_lifetime_cap: int = 3600
    #: Tolerated clock skew for the subject token's ``exp``/``nbf`` (seconds).
    skew: int = 30
    #: RFC 8693 requires ``issued_token_type``; whether Databricks sends it is unverified.
    include_issued_token_type: bool = True
    #: Status and ``error`` for an unacceptable subject token (RFC 8693 §2.2.2 default).
    subject_error_status: int = 400
    subject_error_code: str = "invalid_request"
    #: Authorization-code lifetime [UNVERIFIED]; codes are single use.
    code_lifetime: int = 300
    #: Refresh-token lifetime and rotation [UNVERIFIED]; rotation invalidates the old token.
    refresh_token_lifetime: int = 90 * 86400
    rotate_refresh_tokens: bool = True
    #: A user name to sign in without the login form (U2M ``/v1/authorize`` auto-approve).
    auto_login: str | None = None
    issued: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    codes: dict[str, PendingCode] = field(default_factory=dict, repr=False)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict, repr=False)

    SETTINGS: ClassVar[tuple[str, ...]] = (
        "token_lifetime_cap",
        "skew",
        "include_issued_token_type",
        "subject_error_status",
        "subject_error_code",
        "code_lifetime",
        "refresh_token_lifetime",
        "rotate_refresh_tokens",
        "auto_login",
    )

    @property
    def url(self) -> str:
        return self.context.url_for(self.host)

    @property
    def oidc_root(self) -> str:
        return f"{self.url}{self.oidc_path}"

    @property
    def issuer(self) -> str:
        return self.oidc_root

    @property
    def token_endpoint(self) -> str:
        return f"{self.oidc_root}/v1/token"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.oidc_root}/v1/authorize"

    @property
    def jwks_uri(self) -> str:
        return f"{self.oidc_root}/v1/keys"

    @property
    def audience(self) -> str:
        """``aud`` of issued tokens [UNVERIFIED]: the workspace URL, or the account id."""
        return self.url

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.SETTINGS}

    def verify_access_token(self, token: str, now: float) -> dict[str, Any] | None:
        """Claims of a token this very authority issued and that has not expired, else None."""
        try:
            claims = self.keys.verify_signature(token)
        except jwt.InvalidTokenError:
            return None
        if claims.get("iss") != self.issuer or claims.get("jti") not in self.issued:
            return None
        if float(claims.get("exp", 0)) <= now:
            return None
        return claims


@dataclass(kw_only=True)
class Workspace(Authority):
    name: str
    workspace_id: str
    query_history: list[QueryRecord] = field(default_factory=list)
    #: How the managed MCP servers frame a JSON-RPC answer: ``json`` or ``sse`` (one event).
    #: Which one real Databricks servers send is unverified; clients must accept both.
    mcp_transport: str = "json"

    SETTINGS: ClassVar[tuple[str, ...]] = (*Authority.SETTINGS, "mcp_transport")


@dataclass(kw_only=True)
class AccountAuthority(Authority):
    account_id: str

    @property
    def audience(self) -> str:
        return self.account_id


class DatabricksAccount:
    """One Databricks account: its workspaces, account host, identities and policies."""

    def __init__(self, context: SandboxContext, account_id: str, domain: str) -> None:
        from mocks.databricks.federation import SubjectVerifier

        self.context = context
        self.account_id = account_id
        self.domain = domain.lower()
        self.account_host = f"accounts.{self.domain}"
        self._lock = threading.RLock()
        self.verifier: SubjectVerifier = SubjectVerifier(context)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.workspaces: dict[str, Workspace] = {}
            self.users: dict[str, User] = {}
            self.service_principals: dict[int, ServicePrincipal] = {}
            self.policies: dict[tuple[int | None, str], FederationPolicy] = {}
            self.apps: dict[str, OAuthApp] = {
                CLI_CLIENT_ID: OAuthApp(CLI_CLIENT_ID, [CLI_REDIRECT_URL])
            }
            self.authority = AccountAuthority(
                host=self.account_host,
                keys=KeySet([self.context.key(f"databricks:{self.account_host}")]),
                context=self.context,
                oidc_path=f"/oidc/accounts/{self.account_id}",
                account_id=self.account_id,
            )
            self.verifier.clear()

    def now(self) -> float:
        return self.context.clock.now()

    # -- workspaces --------------------------------------------------------------------
    def add_workspace(self, name: str, *, workspace_id: str) -> Workspace:
        host = f"{name.lower()}.{self.domain}"
        workspace = Workspace(
            name=name,
            host=host,
            workspace_id=workspace_id,
            keys=KeySet([self.context.key(f"databricks:{host}")]),
            context=self.context,
        )
        with self._lock:
            self.workspaces[name.lower()] = workspace
        return workspace

    def workspace(self, name_or_host: str) -> Workspace:
        key = name_or_host.lower().removesuffix(f".{self.domain}")
        with self._lock:
            return self.workspaces[key]

    def workspace_by_host(self, host: str) -> Workspace | None:
        with self._lock:
            return next((w for w in self.workspaces.values() if w.host == host.lower()), None)

    def authority_by_host(self, host: str) -> Authority | None:
        if host.lower() == self.account_host:
            return self.authority
        return self.workspace_by_host(host)

    def hosts(self) -> list[str]:
        with self._lock:
            return [self.account_host, *(w.host for w in self.workspaces.values())]

    # -- identities --------------------------------------------------------------------
    def add_user(self, username: str, *, account_admin: bool = False) -> str:
        """Provision a user (SCIM); returns its numeric id (stable for a user name)."""
        with self._lock:
            existing = self.users.get(username)
            if existing is not None:
                existing.active = True
                existing.account_admin = existing.account_admin or account_admin
                return existing.id
            digest = int(sha256_hex(username), 16)
            user_id = str(digest % 10**15).rjust(15, "7")
            self.users[username] = User(username, user_id, account_admin=account_admin)
            return user_id

    def remove_user(self, username: str) -> bool:
        """Deprovision a user: its next exchange and its issued tokens are refused."""
        with self._lock:
            return self.users.pop(username, None) is not None

    def add_service_principal(
        self,
        *,
        application_id: str | None = None,
        display_name: str | None = None,
        secret: str | None = None,
        account_admin: bool = False,
        generate_secret: bool = False,
    ) -> tuple[ServicePrincipal, str | None]:
        """Create an SP; returns it and its OAuth secret in clear (only ever shown here)."""
        app_id = application_id or str(self.context.ids.uuid4())
        with self._lock:
            if self.service_principal(app_id) is not None:
                raise ValueError(f"a service principal with application id {app_id} exists")
            sp_id = int(sha256_hex(app_id), 16) % (9 * 10**15) + 10**15
            while sp_id in self.service_principals:
                sp_id += 1
            sp = ServicePrincipal(
                sp_id, app_id, display_name or app_id, account_admin=account_admin
            )
            if secret is None and generate_secret:
                secret = "dose" + self.context.ids.token_hex(16)
            if secret is not None:
                sp.secret_digests.append(sha256_hex(secret))
            self.service_principals[sp_id] = sp
        return sp, secret

    def service_principal(self, application_id: str) -> ServicePrincipal | None:
        with self._lock:
            return next(
                (s for s in self.service_principals.values() if s.application_id == application_id),
                None,
            )

    def remove_service_principal(self, application_id: str) -> bool:
        """Delete an SP with its federation policies."""
        with self._lock:
            sp = self.service_principal(application_id)
            if sp is None:
                return False
            del self.service_principals[sp.id]
            for key in [k for k in self.policies if k[0] == sp.id]:
                del self.policies[key]
            return True

    def principal_active(self, principal: Principal) -> bool:
        with self._lock:
            if principal.kind == "user":
                user = self.users.get(principal.name)
                return user is not None and user.active
            sp = self.service_principal(principal.name)
            return sp is not None and sp.active

    def is_account_admin(self, principal: Principal) -> bool:
        with self._lock:
            if principal.kind == "user":
                user = self.users.get(principal.name)
                return user is not None and user.active and user.account_admin
            sp = self.service_principal(principal.name)
            return sp is not None and sp.active and sp.account_admin

    def add_app(
        self,
        client_id: str,
        *,
        redirect_urls: list[str],
        confidential: bool = False,
        secret: str | None = None,
        scopes: list[str] | None = None,
    ) -> OAuthApp:
        app = OAuthApp(client_id, list(redirect_urls), confidential, scopes=scopes)
        if secret is not None:
            app.secret_digests.append(sha256_hex(secret))
        with self._lock:
            self.apps[client_id] = app
        return app

    # -- federation policies -------------------------------------------------------------
    def add_federation_policy(
        self,
        policy_id: str,
        *,
        issuer: str,
        audiences: list[str] | None = None,
        subject_claim: str = "sub",
        jwks_uri: str | None = None,
        subject: str | None = None,
        service_principal_id: int | None = None,
    ) -> FederationPolicy:
        """Create a policy with the REST API's validation (raises :class:`PolicyError`)."""
        from mocks.databricks.policies import create_policy

        oidc: dict[str, Any] = {"issuer": issuer, "subject_claim": subject_claim}
        if audiences:
            oidc["audiences"] = list(audiences)
        if jwks_uri is not None:
            oidc["jwks_uri"] = jwks_uri
        if subject is not None:
            oidc["subject"] = subject
        return create_policy(
            self, {"oidc_policy": oidc}, policy_id=policy_id, sp_id=service_principal_id
        )

    def account_policies(self) -> list[FederationPolicy]:
        with self._lock:
            return [p for (sp, _), p in self.policies.items() if sp is None]

    def sp_policies(self, sp_id: int) -> list[FederationPolicy]:
        with self._lock:
            return [p for (sp, _), p in self.policies.items() if sp == sp_id]

    # -- query history -----------------------------------------------------------------
    def record_query(
        self,
        workspace: Workspace,
        user: str,
        statement: str,
        status: str,
        jti: str,
        server: str = "sql",
        request_id: str | None = None,
    ) -> None:
        with self._lock:
            workspace.query_history.append(
                QueryRecord(user, statement, self.now(), status, jti, server, request_id)
            )

    def describe(self) -> dict[str, Any]:
        """The account as ``GET /_harness/tenants`` shows it (no secrets)."""
        with self._lock:
            return {
                "account_id": self.account_id,
                "account_host": self.authority.url,
                "workspaces": {
                    w.name: {"url": w.url, "workspace_id": w.workspace_id}
                    for w in self.workspaces.values()
                },
                "users": [
                    {"user_name": u.user_name, "id": u.id, "account_admin": u.account_admin}
                    for u in self.users.values()
                ],
                "service_principals": [
                    {
                        "id": s.id,
                        "application_id": s.application_id,
                        "display_name": s.display_name,
                        "account_admin": s.account_admin,
                    }
                    for s in self.service_principals.values()
                ],
                "federation_policies": [
                    {
                        "policy_id": p.policy_id,
                        "service_principal_id": p.service_principal_id,
                        "issuer": p.issuer,
                    }
                    for p in self.policies.values()
                ],
            }
