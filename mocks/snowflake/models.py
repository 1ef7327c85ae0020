"""Mock Snowflake account state: users, roles, security integrations, sessions, issued tokens.

An account lives at ``<org>-<account>.snowflakecomputing.test`` (``vendor-fidelity.md`` §B).
This module is the directory and the stores; :mod:`mocks.snowflake.tokens` holds the rules that
turn a presented token into a user and a role. Facts the research marks unverified are
settings on :class:`AccountSettings`, each with its default documented there.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mocks.core.jose import KeySet
from mocks.core.server import SandboxContext

PUBLIC = "PUBLIC"
#: Roles a security integration refuses unless its blocked list is changed [DOC].
BLOCKED_BY_DEFAULT = ("ACCOUNTADMIN", "ORGADMIN", "SECURITYADMIN")
TokenKind = Literal["oauth_access", "oauth_refresh", "exchange", "session", "master"]
ANY_ROLE_MODES = ("DISABLE", "ENABLE", "ENABLE_FOR_PRIVILEGE")
MAPPING_ATTRIBUTES = ("LOGIN_NAME", "EMAIL_ADDRESS")


def ident(name: str) -> str:
    """An unquoted Snowflake identifier as the catalog stores it: upper case."""
    return name.strip().upper()


class GsError(Exception):
    """A Snowflake GS error: the string ``code`` and ``message`` clients see.

    Login answers it as HTTP 200 with ``success: false`` (§B.3); OAuth endpoints translate it
    to an RFC 6749 error with :attr:`oauth_error`. Messages never contain a token.
    """

    def __init__(self, code: str, message: str, *, oauth_error: str = "invalid_request") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.oauth_error = oauth_error


@dataclass
class AccountSettings:
    """Per-account behaviour switches; defaults in the field comments say where they come from.

    * ``token_exchange_path``: the RFC 8693 endpoint. Snowflake's real path is undocumented
      (§B.5, §F); ``/oauth/token-exchange`` is this mock's choice. Set it to
      ``/oauth/token-request`` to serve the grant on the Snowflake OAuth token endpoint.
    * ``role_mismatch_code``: GS code when the role is not in the token (§F: unconfirmed).
    * ``accept_account_url_audience``: the audience list is *additional* to the account URL
      [DOC wording]; §B.1 marks it unverified.
    """

    session_validity: int = 3600  # validityInSeconds of Snowflake's login fixture
    master_validity: int = 14400  # masterValidityInSeconds of the same fixture
    oauth_access_token_lifetime: int = 600  # expires_in of the token-request fixture
    auth_code_lifetime: int = 600
    exchange_token_lifetime: int = 600  # "short-lived" [DOC]; the number is unverified
    skew: int = 30  # tolerated clock skew on external tokens' exp/nbf/iat
    token_exchange_path: str = "/oauth/token-exchange"
    exchange_requires_client_auth: bool = False
    role_mismatch_code: str = "390186"
    accept_account_url_audience: bool = True
    mcp_require_token_type_header: bool = False
    mcp_transport: str = "json"  # MCP answers: "json", or "sse" (one event); unverified
    auto_approve: str | None = None  # a LOGIN_NAME /oauth/authorize signs in without the form


@dataclass
class SnowflakeUser:
    name: str
    login_name: str
    email: str | None = None
    default_role: str | None = None
    roles: set[str] = field(default_factory=set)
    password: str | None = field(default=None, repr=False)
    disabled: bool = False

    def has_role(self, role: str) -> bool:
        return role == PUBLIC or role in self.roles

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "login_name": self.login_name,
            "email": self.email,
            "default_role": self.default_role,
            "roles": sorted(self.roles | {PUBLIC}),
            "disabled": self.disabled,
        }


@dataclass
class ExternalOAuthIntegration:
    """``CREATE SECURITY INTEGRATION … TYPE = EXTERNAL_OAUTH`` (§B.1), one field per clause."""

    name: str
    issuer: str
    jws_keys_urls: list[str]
    token_user_mapping_claims: list[str]
    snowflake_user_mapping_attribute: str = "LOGIN_NAME"
    audience_list: list[str] = field(default_factory=list)
    any_role_mode: str = "DISABLE"
    allowed_roles_list: list[str] = field(default_factory=list)
    blocked_roles_list: list[str] = field(default_factory=lambda: list(BLOCKED_BY_DEFAULT))
    scope_delimiter: str = ","
    scope_mapping_attribute: str | None = None  # None: ``scp`` if present, else ``scope``
    external_oauth_type: str = "CUSTOM"
    enabled: bool = True

    def role_allowed(self, role: str) -> bool:
        if role in self.blocked_roles_list:
            return False
        return not self.allowed_roles_list or role in self.allowed_roles_list

    def public(self) -> dict[str, Any]:
        return {"type": "EXTERNAL_OAUTH", **asdict(self)}


@dataclass
class OAuthClientIntegration:
    """``CREATE SECURITY INTEGRATION … TYPE = OAUTH OAUTH_CLIENT = CUSTOM`` (Snowflake OAuth)."""

    name: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    issue_refresh_tokens: bool = True
    refresh_token_validity: int = 7776000  # OAUTH_REFRESH_TOKEN_VALIDITY default (90 days)
    enforce_pkce: bool = False
    blocked_roles_list: list[str] = field(default_factory=lambda: list(BLOCKED_BY_DEFAULT))
    enabled: bool = True

    def public(self) -> dict[str, Any]:
        """Everything but the secret (Snowflake shows it only via SHOW_OAUTH_CLIENT_SECRETS)."""
        data = asdict(self)
        data.pop("client_secret")
        return {"type": "OAUTH", **data}


@dataclass
class IssuedToken:
    """A token this account signed, by ``jti``: what it is, whose, which role, until when."""

    jti: str
    kind: TokenKind
    user: str
    role: str
    exp: float
    client_id: str | None = None
    scopes: list[str] = field(default_factory=list)
    source: str = ""
    session_id: int | None = None


@dataclass
class Session:
    session_id: int
    user: str
    role: str
    token_jti: str
    master_jti: str
    source: str
    database: str | None = None
    schema: str | None = None
    warehouse: str | None = None


@dataclass
class QueryRecord:
    """One statement in the account's query history, with the user and role it ran as."""

    query_id: str
    user: str
    role: str
    statement: str
    status: str
    time: float
    client: str
    session_id: int | None = None
    error_code: str | None = None


@dataclass
class McpTool:
    name: str
    type: str
    description: str = ""
    roles: set[str] | None = None  # None: every role that may use the server


@dataclass
class McpServer:
    """``CREATE MCP SERVER <db>.<schema>.<name>`` with its tools and the roles granted USAGE."""

    database: str
    schema: str
    name: str
    tools: list[McpTool]
    roles: set[str] | None = None

    @property
    def path(self) -> str:
        return f"/api/v2/databases/{self.database}/schemas/{self.schema}/mcp-servers/{self.name}"

    def visible_tools(self, role: str) -> list[McpTool]:
        return [t for t in self.tools if t.roles is None or role in t.roles]

    def public(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "schema": self.schema,
            "name": self.name,
            "path": self.path,
            "roles": sorted(self.roles) if self.roles is not None else None,
            "tools": [
                {
                    "name": t.name,
                    "type": t.type,
                    "roles": sorted(t.roles) if t.roles is not None else None,
                }
                for t in self.tools
            ],
        }


@dataclass
class AuthCode:
    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    user: str
    role: str
    scopes: list[str]
    code_challenge: str | None
    expires_at: float


@dataclass
class PendingAuthorization:
    """An ``/oauth/authorize`` request waiting for the login form."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    role: str | None
    state: str | None
    code_challenge: str | None
    expires_at: float


class Account:
    """One Snowflake account: its own host, signing keys, directory and stores."""

    def __init__(self, context: SandboxContext, name: str, host: str) -> None:
        self.context = context
        self.name = name.lower()
        self.host = host.lower()
        self.keys = KeySet([context.key(f"snowflake:{self.host}")])
        self.lock = threading.RLock()
        self.settings = AccountSettings()
        self.users: dict[str, SnowflakeUser] = {}
        self.roles: set[str] = {PUBLIC}
        self.external_integrations: dict[str, ExternalOAuthIntegration] = {}
        self.oauth_clients: dict[str, OAuthClientIntegration] = {}
        self.mcp_servers: dict[tuple[str, str, str], McpServer] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.sessions: dict[int, Session] = {}
        self.codes: dict[str, AuthCode] = {}
        self.pending: dict[str, PendingAuthorization] = {}
        self.query_history: list[QueryRecord] = []
        self._next_session = 1_000_000 + int(context.ids.token_hex(3), 16)

    @property
    def url(self) -> str:
        return self.context.url_for(self.host)

    def now(self) -> float:
        return self.context.clock.now()

    # -- roles ---------------------------------------------------------------------------
    def add_role(self, role: str) -> str:
        with self.lock:
            self.roles.add(ident(role))
        return ident(role)

    def drop_role(self, role: str) -> None:
        role = ident(role)
        if role == PUBLIC:
            raise ValueError("the PUBLIC role cannot be dropped")
        with self.lock:
            if role not in self.roles:
                raise KeyError(role)
            self.roles.discard(role)
            for user in self.users.values():
                user.roles.discard(role)

    def grant(self, user_name: str, role: str) -> None:
        role = ident(role)
        with self.lock:
            user = self.users[ident(user_name)]
            if role not in self.roles:
                raise ValueError(f"Role '{role}' does not exist or not authorized.")
            user.roles.add(role)

    def revoke(self, user_name: str, role: str) -> None:
        role = ident(role)
        with self.lock:
            user = self.users[ident(user_name)]
            if role == PUBLIC or role not in user.roles:
                raise ValueError(f"Role '{role}' is not granted to user '{user.name}'.")
            user.roles.discard(role)

    # -- users ---------------------------------------------------------------------------
    def add_user(
        self,
        name: str,
        *,
        login_name: str | None = None,
        email: str | None = None,
        default_role: str | None = None,
        roles: list[str] | tuple[str, ...] = (),
        password: str | None = None,
    ) -> SnowflakeUser:
        """``CREATE USER``; LOGIN_NAME defaults to the name and is stored upper-cased."""
        user = SnowflakeUser(
            name=ident(name),
            login_name=ident(login_name or name),
            email=email,
            default_role=ident(default_role) if default_role else None,
            password=password,
        )
        with self.lock:
            unknown = [r for r in map(ident, roles) if r not in self.roles]
            if unknown:
                raise ValueError(f"Role '{unknown[0]}' does not exist or not authorized.")
            user.roles = {ident(r) for r in roles} - {PUBLIC}
            self.users[user.name] = user
        return user

    def drop_user(self, name: str) -> None:
        """``DROP USER``: its sessions and every token issued to it stop working at once."""
        with self.lock:
            user = self.users.pop(ident(name))
            self.sessions = {k: s for k, s in self.sessions.items() if s.user != user.name}
            self.tokens = {k: t for k, t in self.tokens.items() if t.user != user.name}

    def user(self, name: str) -> SnowflakeUser | None:
        with self.lock:
            return self.users.get(ident(name))

    def find_user(self, attribute: str, value: str) -> SnowflakeUser | None:
        """The user whose LOGIN_NAME or EMAIL_ADDRESS equals ``value`` (case-insensitively)."""
        wanted = value.casefold()
        with self.lock:
            for user in self.users.values():
                actual = user.login_name if attribute == "LOGIN_NAME" else user.email
                if actual is not None and actual.casefold() == wanted:
                    return user
        return None

    # -- integrations --------------------------------------------------------------------
    def add_external_oauth(self, integration: ExternalOAuthIntegration) -> None:
        with self.lock:
            self.external_integrations[integration.name] = integration

    def add_oauth_client(self, integration: OAuthClientIntegration) -> None:
        with self.lock:
            self.oauth_clients[integration.name] = integration

    def drop_integration(self, name: str) -> None:
        with self.lock:
            if self.external_integrations.pop(ident(name), None) is None:
                del self.oauth_clients[ident(name)]

    def oauth_client(self, client_id: str) -> OAuthClientIntegration | None:
        with self.lock:
            return next(
                (c for c in self.oauth_clients.values() if c.client_id == client_id and c.enabled),
                None,
            )

    def integration_for_issuer(self, issuer: str) -> ExternalOAuthIntegration | None:
        with self.lock:
            return next(
                (
                    i
                    for i in self.external_integrations.values()
                    if i.enabled and i.issuer == issuer
                ),
                None,
            )

    # -- MCP servers ---------------------------------------------------------------------
    def add_mcp_server(self, server: McpServer) -> None:
        with self.lock:
            self.mcp_servers[(ident(server.database), ident(server.schema), ident(server.name))] = (
                server
            )

    def mcp_server(self, database: str, schema: str, name: str) -> McpServer | None:
        with self.lock:
            return self.mcp_servers.get((ident(database), ident(schema), ident(name)))

    # -- issued tokens -------------------------------------------------------------------
    def issue(
        self,
        kind: TokenKind,
        user: str,
        role: str,
        lifetime: int,
        *,
        client_id: str | None = None,
        scopes: list[str] | None = None,
        source: str = "",
        session_id: int | None = None,
    ) -> tuple[str, IssuedToken]:
        """Sign and register a token of this account.

        Snowflake's tokens are opaque to clients (§B.2: format unverified). The mock signs
        them as JWTs with the account key so that the sandbox journal, which redacts anything
        JWT-shaped, never shows one whole; the ``jti`` registry makes them revocable.
        """
        now = int(self.now())
        jti = self.context.ids.token_hex(16)
        record = IssuedToken(
            jti=jti,
            kind=kind,
            user=user,
            role=role,
            exp=now + lifetime,
            client_id=client_id,
            scopes=list(scopes or []),
            source=source,
            session_id=session_id,
        )
        token = self.keys.sign(
            {
                "iss": self.url,
                "sub": user,
                "iat": now,
                "exp": now + lifetime,
                "jti": jti,
                "snowflake_token_kind": kind,
            }
        )
        with self.lock:
            self._sweep(now)
            self.tokens[jti] = record
        return token, record

    def _sweep(self, now: float) -> None:
        """Forget tokens dead for a day (caller holds the lock), so memory stays flat."""
        if len(self.tokens) > 512:
            self.tokens = {k: t for k, t in self.tokens.items() if t.exp > now - 86400}

    def new_session_id(self) -> int:
        with self.lock:
            self._next_session += 1
            return self._next_session

    def record_query(self, record: QueryRecord) -> None:
        with self.lock:
            self.query_history.append(record)
            del self.query_history[:-1000]

    # -- admin view ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "name": self.name,
                "host": self.host,
                "url": self.url,
                "users": [u.public() for u in self.users.values()],
                "roles": sorted(self.roles),
                "integrations": [i.public() for i in self.external_integrations.values()]
                + [c.public() for c in self.oauth_clients.values()],
                "mcp_servers": [s.public() for s in self.mcp_servers.values()],
                "settings": asdict(self.settings),
                "sessions": len(self.sessions),
                "queries": len(self.query_history),
            }


class SnowflakeCloud:
    """Every mock Snowflake account, keyed by account name (``myorg-acct1``)."""

    def __init__(self, context: SandboxContext, domain: str) -> None:
        self.context = context
        self.domain = domain.lower()
        self._lock = threading.Lock()
        self.accounts: dict[str, Account] = {}

    def reset(self) -> None:
        with self._lock:
            self.accounts = {}

    def add_account(self, name: str) -> Account:
        """An account at ``<name>.<domain>``; names use hyphens, never underscores (§B.6)."""
        name = name.lower()
        if not name or "_" in name or "." in name:
            raise ValueError("account names look like 'myorg-acct1' (no '_' or '.')")
        account = Account(self.context, name, f"{name}.{self.domain}")
        with self._lock:
            self.accounts[name] = account
        return account

    def account(self, name_or_host: str) -> Account:
        key = name_or_host.lower().removesuffix(f".{self.domain}")
        with self._lock:
            return self.accounts[key]

    def by_host(self, host: str) -> Account | None:
        with self._lock:
            return next((a for a in self.accounts.values() if a.host == host.lower()), None)

    def hosts(self) -> list[str]:
        with self._lock:
            return [a.host for a in self.accounts.values()]
