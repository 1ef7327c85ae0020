"""Mock Databricks account state: workspaces, users, federation policies, issued tokens.

Token federation follows ``vendor-fidelity.md`` §A.3-A.4: a subject JWT is accepted only when
an account federation policy names its issuer *exactly*, its signature verifies with that
issuer's keys (fetched through the sandbox and cached), it is RS256 or ES256, its ``aud``
contains one of the policy's audiences, it is within ``exp``/``nbf`` (with a small skew), and
its subject claim names a provisioned user. Facts the research marks unverified (the error
status and code of a refused subject token, the claim set of Databricks tokens) are settings
on :class:`Workspace` with documented defaults.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from mocks.core.http import OAuthFailure
from mocks.core.jose import SUPPORTED_ALGS, KeySet
from mocks.core.server import SandboxContext

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
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
JWKS_CACHE_SECONDS = 300.0


FederationError = OAuthFailure
"""A refused exchange (the description never contains the token)."""


@dataclass
class FederationPolicy:
    policy_id: str
    issuer: str
    audiences: list[str]
    subject_claim: str = "sub"
    jwks_uri: str | None = None
    subject: str | None = None
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class QueryRecord:
    """One statement in a workspace's query history, attributed to the user it ran as."""

    user: str
    statement: str
    time: float
    status: str
    token_jti: str


@dataclass
class Workspace:
    name: str
    host: str
    workspace_id: str
    keys: KeySet
    #: Upper bound on issued token lifetime; tokens never outlive their subject token either.
    token_lifetime_cap: int = 3600
    #: Tolerated clock skew for the subject token's ``exp``/``nbf`` (seconds).
    skew: int = 30
    #: RFC 8693 requires ``issued_token_type``; whether Databricks sends it is unverified.
    include_issued_token_type: bool = True
    #: Status and ``error`` for an unacceptable subject token (RFC 8693 §2.2.2 default).
    subject_error_status: int = 400
    subject_error_code: str = "invalid_request"
    query_history: list[QueryRecord] = field(default_factory=list)
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def oidc_root(self) -> str:
        return f"{self.url}/oidc"

    @property
    def issuer(self) -> str:
        return self.oidc_root

    @property
    def token_endpoint(self) -> str:
        return f"{self.oidc_root}/v1/token"

    def verify_access_token(self, token: str, now: float) -> dict[str, Any] | None:
        """Claims of a token this very workspace issued and that has not expired, else None."""
        try:
            claims = self.keys.verify_signature(token)
        except jwt.InvalidTokenError:
            return None
        if claims.get("iss") != self.issuer or claims.get("jti") not in self.issued:
            return None
        if float(claims.get("exp", 0)) <= now:
            return None
        return claims


class _JwksCache:
    """Issuer keys fetched through the sandbox, cached per URL, refetched on an unknown kid."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self._entries: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def key(self, jwks_uri: str, kid: str | None) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(jwks_uri)
        if cached is not None and now - cached[0] < JWKS_CACHE_SECONDS and kid in cached[1]:
            return cached[1][kid]
        keys = self._fetch(jwks_uri)
        with self._lock:
            self._entries[jwks_uri] = (now, keys)
        return keys.get(kid) if kid is not None else None

    def _fetch(self, jwks_uri: str) -> dict[str, dict[str, Any]]:
        try:
            response = self.context.http().get(jwks_uri)
            data = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            raise FederationError(
                "temporarily_unavailable", "The issuer's signing keys could not be retrieved.", 503
            ) from None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, list):
            raise FederationError(
                "temporarily_unavailable", "The issuer's signing keys could not be retrieved.", 503
            )
        return {k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}

    def discover(self, issuer: str) -> str:
        try:
            response = self.context.http().get(f"{issuer}/.well-known/openid-configuration")
            uri = response.json().get("jwks_uri") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            uri = None
        if not isinstance(uri, str):
            raise FederationError(
                "temporarily_unavailable", "The issuer's discovery document could not be read.", 503
            )
        return uri


class DatabricksAccount:
    """One Databricks account with its workspaces, users and account federation policies."""

    def __init__(self, context: SandboxContext, account_id: str, domain: str) -> None:
        self.context = context
        self.account_id = account_id
        self.domain = domain.lower()
        self._lock = threading.RLock()
        self._jwks = _JwksCache(context)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.workspaces: dict[str, Workspace] = {}
            self.users: dict[str, str] = {}
            self.policies: dict[str, FederationPolicy] = {}
            self._discovered: dict[str, str] = {}
            self._jwks.clear()

    def now(self) -> float:
        return self.context.clock.now()

    # -- directory ---------------------------------------------------------------------
    def add_workspace(self, name: str, *, workspace_id: str) -> Workspace:
        host = f"{name.lower()}.{self.domain}"
        workspace = Workspace(
            name=name,
            host=host,
            workspace_id=workspace_id,
            keys=KeySet([self.context.key(f"databricks:{host}")]),
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

    def hosts(self) -> list[str]:
        with self._lock:
            return [w.host for w in self.workspaces.values()]

    def add_user(self, username: str) -> str:
        """Provision a user (SCIM); returns its numeric id."""
        with self._lock:
            digest = int(hashlib.sha256(username.encode()).hexdigest(), 16)
            user_id = self.users.get(username) or str(digest % 10**15).rjust(15, "7")
            self.users[username] = user_id
            return user_id

    def remove_user(self, username: str) -> None:
        with self._lock:
            self.users.pop(username, None)

    def add_federation_policy(
        self,
        policy_id: str,
        *,
        issuer: str,
        audiences: list[str] | None = None,
        subject_claim: str = "sub",
        jwks_uri: str | None = None,
        subject: str | None = None,
    ) -> FederationPolicy:
        if subject is not None:
            raise ValueError("account federation policies must not set 'subject' (SP policies do)")
        policy = FederationPolicy(
            policy_id=policy_id,
            issuer=issuer,
            audiences=list(audiences or [self.account_id]),
            subject_claim=subject_claim,
            jwks_uri=jwks_uri,
        )
        with self._lock:
            self.policies[policy_id] = policy
        return policy

    # -- token federation --------------------------------------------------------------
    def exchange(self, workspace: Workspace, form: dict[str, str]) -> dict[str, Any]:
        """Validate an RFC 8693 request (already shape-checked) and issue a workspace token."""
        scopes = (form.get("scope") or "all-apis").split()
        unknown = [s for s in scopes if s not in ALLOWED_SCOPES]
        if unknown:
            raise FederationError(
                "invalid_scope", f"Requested scope(s) not allowed: {' '.join(unknown)}."
            )
        claims = self._validate_subject(workspace, form["subject_token"])
        now = self.now()
        lifetime = min(workspace.token_lifetime_cap, int(float(claims["exp"]) - now))
        if lifetime <= 0:
            raise self._subject_error(workspace, "The subject token has expired.")
        username = claims["__subject"]
        jti = str(uuid.uuid4())
        issued_at = int(now)
        token = workspace.keys.sign(
            {
                "iss": workspace.issuer,
                "sub": username,
                "aud": workspace.url,
                "client_id": claims["__policy"],
                "scope": " ".join(scopes),
                "iat": issued_at,
                "nbf": issued_at,
                "exp": issued_at + lifetime,
                "jti": jti,
            },
            {"typ": "at+jwt"},
        )
        with self._lock:
            workspace.issued[jti] = {"user": username, "scope": scopes, "exp": issued_at + lifetime}
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(scopes),
        }
        if workspace.include_issued_token_type:
            body["issued_token_type"] = ACCESS_TOKEN_TYPE
        return body

    def _subject_error(self, workspace: Workspace, description: str) -> FederationError:
        return FederationError(
            workspace.subject_error_code, description, workspace.subject_error_status
        )

    def _validate_subject(self, workspace: Workspace, token: str) -> dict[str, Any]:
        fail = lambda text: self._subject_error(workspace, text)  # noqa: E731
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise fail("The subject token is not a well-formed JWT.") from None
        alg = header.get("alg")
        if alg not in SUPPORTED_ALGS:
            raise fail("The subject token must be signed with RS256 or ES256.")
        if "crit" in header:
            raise fail("The subject token uses unsupported critical header parameters.")
        issuer = unverified.get("iss")
        policy = next(
            (p for p in self.policies.values() if isinstance(issuer, str) and p.issuer == issuer),
            None,
        )
        if policy is None:
            raise fail("The subject token issuer is not trusted by any federation policy.")
        jwk = self._jwks.key(self._jwks_uri(policy), header.get("kid"))
        if jwk is None:
            raise fail("The subject token was not signed by a key of its issuer.")
        try:
            public = jwt.PyJWK(jwk)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            raise fail("The subject token was not signed by a key of its issuer.") from None
        if public.algorithm_name != alg:
            raise fail("The subject token algorithm does not match its issuer's key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public.key,
                algorithms=[alg],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.InvalidTokenError:
            raise fail("The subject token signature is invalid.") from None
        now = self.now()
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise fail("The subject token has no expiry.")
        if exp + workspace.skew <= now:
            raise fail("The subject token has expired.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - workspace.skew > now:
            raise fail("The subject token is not yet valid.")
        audiences = claims.get("aud")
        audience_list = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audience_list, list) or not set(audience_list) & set(policy.audiences):
            raise fail("The subject token audience is not accepted by the federation policy.")
        subject = claims.get(policy.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise fail(f"The subject token has no '{policy.subject_claim}' claim.")
        if subject not in self.users:
            raise fail("The subject token's subject is not a user of this account.")
        claims["__subject"] = subject
        claims["__policy"] = policy.policy_id
        return claims

    def _jwks_uri(self, policy: FederationPolicy) -> str:
        if policy.jwks_uri:
            return policy.jwks_uri
        with self._lock:
            cached = self._discovered.get(policy.issuer)
        if cached is None:
            cached = self._jwks.discover(policy.issuer)
            with self._lock:
                self._discovered[policy.issuer] = cached
        return cached

    # -- query history -----------------------------------------------------------------
    def record_query(
        self, workspace: Workspace, user: str, statement: str, status: str, jti: str
    ) -> None:
        with self._lock:
            workspace.query_history.append(QueryRecord(user, statement, self.now(), status, jti))
