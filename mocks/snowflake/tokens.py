"""Who a presented token is, and which role it may use (``vendor-fidelity.md`` §B.1, §B.5).

Three kinds of token reach a Snowflake account: an **External OAuth** JWT from a trusted IdP
(validated strictly against the security integration naming its issuer: signature via the
integration's JWKS URL fetched through the sandbox, ``aud``, ``exp``/``nbf``/``iat`` with a small
skew, the user mapping claim), a **Snowflake OAuth** access token this account issued, and a
token from this account's **token exchange**. All end in an :class:`Identity`: a user and one
role, chosen by the ``session:role:<ROLE>`` / ``session:role-any`` rules below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt

from mocks.core import sts_variants as bad
from mocks.core.jwks import JwksCache, JwksUnavailable, verify_with_jwk
from mocks.core.server import SandboxContext
from mocks.snowflake.models import (
    PUBLIC,
    Account,
    ExternalOAuthIntegration,
    GsError,
    IssuedToken,
    SnowflakeUser,
    TokenKind,
    ident,
)

INVALID_TOKEN = "390303"
EXPIRED_TOKEN = "390318"
ROLE_NOT_AUTHORIZED = "390189"
ROLE_SCOPE = "session:role:"
ANY_ROLE_SCOPE = "session:role-any"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SUBJECT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)


def invalid_token(detail: str = "") -> GsError:
    """390303 as Snowflake words it; ``detail`` (never a token) helps whoever reads the test."""
    return GsError(INVALID_TOKEN, "Invalid OAuth access token." + (f" {detail}" if detail else ""))


def expired_token() -> GsError:
    return GsError(EXPIRED_TOKEN, "OAuth access token expired.")


def role_mismatch(account: Account, role: str) -> GsError:
    return GsError(
        account.settings.role_mismatch_code,
        "The role requested in the connection or the default role if none was requested in "
        f"the connection ('{role}') is not listed in the Access Token or was filtered. Please "
        "specify another role, or contact your OAuth Authorization server administrator.",
        oauth_error="invalid_scope",
    )


def role_not_authorized(role: str) -> GsError:
    return GsError(
        ROLE_NOT_AUTHORIZED,
        f"Role '{role}' specified in the connect string does not exist or not authorized. "
        "Contact your local system administrator, or attempt to login with another role, "
        "e.g. PUBLIC.",
        oauth_error="invalid_scope",
    )


@dataclass
class Identity:
    """The outcome of authentication: user, role, where it came from and when it ends."""

    user: SnowflakeUser
    role: str
    source: str
    exp: float
    scopes: list[str] = field(default_factory=list)
    issued: IssuedToken | None = None


def role_scopes(scopes: list[str]) -> list[str]:
    return [ident(s[len(ROLE_SCOPE) :]) for s in scopes if s.startswith(ROLE_SCOPE)]


def check_self_issued(account: Account, token: str, kinds: tuple[TokenKind, ...]) -> IssuedToken:
    """A live token this account signed and still has on record, of one of ``kinds``."""
    try:
        claims = account.keys.verify_signature(token)
    except (jwt.InvalidTokenError, ValueError):
        raise invalid_token() from None
    with account.lock:
        record = account.tokens.get(str(claims.get("jti")))
    if record is None or record.kind not in kinds:
        raise invalid_token()
    if record.exp <= account.now():
        raise expired_token()
    return record


class TokenAuthority:
    """Validates tokens for every account; owns the cache of external issuers' keys."""

    def __init__(self, context: SandboxContext) -> None:
        self.jwks = JwksCache(context)

    def reset(self) -> None:
        self.jwks.clear()

    # -- any bearer ----------------------------------------------------------------------
    def identify(
        self,
        account: Account,
        token: str,
        *,
        requested_role: str | None = None,
        kinds: tuple[TokenKind, ...] = ("oauth_access", "exchange"),
    ) -> Identity:
        """The identity of a Snowflake-issued token of ``kinds`` or an External OAuth JWT."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise invalid_token() from None
        if unverified.get("iss") == account.url:
            issued = check_self_issued(account, token, kinds)
            user = account.user(issued.user)
            if user is None or user.disabled:
                raise invalid_token()
            role = issued.role
            if requested_role and ident(requested_role) != role:
                raise role_mismatch(account, ident(requested_role))
            if not user.has_role(role):
                raise role_not_authorized(role)
            return Identity(user, role, issued.source, issued.exp, issued.scopes, issued)
        integration, user, claims, scopes = self.external(account, token)
        role = self.choose_role(account, integration, user, scopes, requested_role)
        return Identity(
            user, role, f"EXTERNAL_OAUTH:{integration.name}", float(claims["exp"]), scopes
        )

    # -- External OAuth ------------------------------------------------------------------
    def external(
        self, account: Account, token: str
    ) -> tuple[ExternalOAuthIntegration, SnowflakeUser, dict[str, Any], list[str]]:
        """Strict External OAuth validation (§B.1): integration, user, claims, scopes."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise invalid_token() from None
        variant = bad.variant(account.context, account.host)  # a known-bad mock (selftest)
        issuer = unverified.get("iss")
        integration = account.integration_for_issuer(issuer) if isinstance(issuer, str) else None
        if integration is None and variant == "ignores-issuer":
            integration = self._integration_with_kid(account, header.get("kid"))
        if integration is None:
            raise invalid_token("No security integration trusts the token's issuer.")
        if variant == "accepts-alg-none" and bad.is_unsecured(header.get("alg")):
            claims = bad.unverified_claims(token)
        elif variant == "accepts-hs256-public-key" and header.get("alg") == "HS256":
            claims = self._hs256_confused(integration, token, header.get("kid"))
        else:
            claims = self._verify_signature(integration, token, header.get("kid"))
        now = account.now()
        skew = account.settings.skew
        for name in ("exp", "iat"):
            if not isinstance(claims.get(name), int | float):
                raise invalid_token(f"The token has no '{name}' claim.")
        if float(claims["exp"]) + skew <= now and variant != "accepts-expired":
            raise expired_token()
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - skew > now:
            raise invalid_token("The token is not valid yet.")
        if float(claims["iat"]) - skew > now:
            raise invalid_token("The token was issued in the future.")
        audience_ok = self._audience_ok(account, integration, claims.get("aud"))
        if not audience_ok and variant != "accepts-foreign-audience":
            raise invalid_token("The token's audience is not accepted by the integration.")
        user = self._map_user(account, integration, claims)
        return integration, user, claims, self._scopes(integration, claims)

    def _verify_signature(
        self, integration: ExternalOAuthIntegration, token: str, kid: Any
    ) -> dict[str, Any]:
        for url in integration.jws_keys_urls:
            try:
                jwk = self.jwks.key(url, kid if isinstance(kid, str) else None)
            except JwksUnavailable:
                continue
            if jwk is None:
                continue
            try:
                return verify_with_jwk(token, jwk)
            except jwt.InvalidTokenError:
                raise invalid_token("The token signature is invalid.") from None
        raise invalid_token("The token was not signed by a key of the integration.")

    def _integration_with_kid(self, account: Account, kid: Any) -> ExternalOAuthIntegration | None:
        """``ignores-issuer``: the first integration publishing ``kid``, whatever ``iss`` says."""
        for candidate in list(account.external_integrations.values()):
            for url in candidate.jws_keys_urls:
                try:
                    if self.jwks.key(url, kid if isinstance(kid, str) else None) is not None:
                        return candidate
                except JwksUnavailable:
                    continue
        return None

    def _hs256_confused(
        self, integration: ExternalOAuthIntegration, token: str, kid: Any
    ) -> dict[str, Any]:
        """``accepts-hs256-public-key``: HS256 "verified" with the integration's public PEM."""
        for url in integration.jws_keys_urls:
            try:
                jwk = self.jwks.key(url, kid if isinstance(kid, str) else None)
            except JwksUnavailable:
                continue
            claims = bad.hs256_with_public_pem(token, jwk) if jwk is not None else None
            if claims is not None:
                return claims
        raise invalid_token("The token signature is invalid.")

    @staticmethod
    def _audience_ok(account: Account, integration: ExternalOAuthIntegration, aud: Any) -> bool:
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or not audiences:
            return False
        accepted = set(integration.audience_list)
        if account.settings.accept_account_url_audience:
            accepted |= {f"https://{account.host}", f"http://{account.host}", account.url}
        return bool(accepted & {a for a in audiences if isinstance(a, str)})

    @staticmethod
    def _map_user(
        account: Account, integration: ExternalOAuthIntegration, claims: dict[str, Any]
    ) -> SnowflakeUser:
        for claim in integration.token_user_mapping_claims:
            value = claims.get(claim)
            if isinstance(value, str) and value:
                user = account.find_user(integration.snowflake_user_mapping_attribute, value)
                if user is None or user.disabled:
                    raise invalid_token("The token's user does not exist or is disabled.")
                return user
        raise invalid_token("The token has no user mapping claim.")

    @staticmethod
    def _scopes(integration: ExternalOAuthIntegration, claims: dict[str, Any]) -> list[str]:
        """``scp`` (a list) or ``scope`` (a string split on the integration's delimiter)."""
        names = (
            [integration.scope_mapping_attribute]
            if integration.scope_mapping_attribute
            else ["scp", "scope"]
        )
        for name in names:
            value = claims.get(name)
            if isinstance(value, list):
                return [s for s in value if isinstance(s, str)]
            if isinstance(value, str):
                return [s.strip() for s in value.split(integration.scope_delimiter) if s.strip()]
        return []

    @staticmethod
    def choose_role(
        account: Account,
        integration: ExternalOAuthIntegration,
        user: SnowflakeUser,
        scopes: list[str],
        requested: str | None,
    ) -> str:
        """The session role an External OAuth token grants.

        ``session:role-any`` (honoured only with ``EXTERNAL_OAUTH_ANY_ROLE_MODE = ENABLE``)
        allows the requested role or the user's default role. Otherwise the requested role —
        or, if none was requested, the token's only role, else the default role — must be
        listed as ``session:role:<ROLE>`` (the rule the 390186 message states). The role must
        pass the integration's allowed/blocked lists and be granted to the user.
        """
        listed = role_scopes(scopes)
        wanted = ident(requested) if requested else None
        if ANY_ROLE_SCOPE in scopes and integration.any_role_mode == "ENABLE":
            role = wanted or user.default_role or PUBLIC
        else:
            if wanted is None:
                wanted = listed[0] if len(listed) == 1 else (user.default_role or PUBLIC)
            if wanted not in listed:
                raise role_mismatch(account, wanted)
            role = wanted
        if not integration.role_allowed(role):
            raise role_mismatch(account, role)
        if role not in account.roles or not user.has_role(role):
            raise role_not_authorized(role)
        return role

    # -- RFC 8693 ------------------------------------------------------------------------
    def exchange(self, account: Account, form: dict[str, str]) -> dict[str, Any]:
        """Issue a short-lived token acting as the subject's user with one role (§B.5).

        The subject is an External OAuth JWT or a Snowflake OAuth access token of this
        account; a token from this very exchange is refused (not re-exchangeable), and no
        refresh token is ever issued.
        """
        scopes = form.get("scope", "").split()
        others = [s for s in scopes if not s.startswith(ROLE_SCOPE)]
        if others:
            raise GsError(
                "invalid_scope",
                f"Unsupported scope(s) for token exchange: {' '.join(others)}.",
                oauth_error="invalid_scope",
            )
        roles = role_scopes(scopes)
        if len(roles) > 1:
            raise GsError(
                "invalid_scope",
                "Request one role: a single session:role:<ROLE> scope.",
                oauth_error="invalid_scope",
            )
        subject = form["subject_token"]
        try:
            issuer = jwt.decode(subject, options={"verify_signature": False}).get("iss")
        except (jwt.InvalidTokenError, ValueError, TypeError):
            if bad.variant(account.context, account.host) == "500-on-malformed":
                raise bad.MalformedTokenCrash() from None
            raise invalid_token("The subject token is not a well-formed JWT.") from None
        if issuer == account.url:
            record = check_self_issued(account, subject, ("oauth_access", "exchange"))
            if record.kind == "exchange":
                raise invalid_token("A token from a token exchange cannot be exchanged again.")
        identity = self.identify(
            account, subject, requested_role=roles[0] if roles else None, kinds=("oauth_access",)
        )
        lifetime = min(
            account.settings.exchange_token_lifetime, int(identity.exp) - int(account.now())
        )
        if lifetime <= 0 and bad.variant(account.context, account.host) == "accepts-expired":
            lifetime = account.settings.exchange_token_lifetime  # the known-bad mock
        if lifetime <= 0:
            raise expired_token()
        scope = f"{ROLE_SCOPE}{identity.role}"
        token, _ = account.issue(
            "exchange",
            identity.user.name,
            identity.role,
            lifetime,
            client_id=form.get("client_id"),
            scopes=[scope],
            source="TOKEN_EXCHANGE",
        )
        return {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
            "username": identity.user.login_name,
        }
