"""Databricks REST conventions outside the OAuth endpoints: error bodies and bearer auth.

REST and MCP errors use Databricks' body ``{"error_code": "<CODE>", "message": "..."}``
(string codes such as ``PERMISSION_DENIED``, ``RESOURCE_DOES_NOT_EXIST``) with a JSON content
type; authentication failures are 401 ``UNAUTHENTICATED`` with a ``WWW-Authenticate: Bearer
realm="DatabricksRealm"`` challenge (``vendor-fidelity.md`` §A.3, third-party capture; the
``error="invalid_token"`` parameter follows RFC 6750 §3.1 for a token that was sent but
refused).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core import sts_variants as bad
from mocks.core.http import json_response
from mocks.core.redact import bearer_token
from mocks.databricks.models import Authority, DatabricksAccount, Principal

REALM = 'Bearer realm="DatabricksRealm"'


def rest_error(
    code: str, message: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error_code": code, "message": message}, status, headers)


def unauthenticated(message: str, *, invalid: bool = False) -> Response:
    challenge = REALM + (', error="invalid_token"' if invalid else "")
    return rest_error("UNAUTHENTICATED", message, 401, {"WWW-Authenticate": challenge})


def insufficient_scope(scope: str) -> Response:
    return rest_error(
        "PERMISSION_DENIED",
        f"The access token does not have the required scope '{scope}'.",
        403,
        {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'},
    )


def authenticate(
    request: Request, authority: Authority, account: DatabricksAccount
) -> tuple[dict[str, Any], Principal] | Response:
    """Claims and principal of the request's bearer token, or the 401 to answer with.

    Only tokens this authority issued are accepted, and only while their principal is still
    provisioned and active: deprovisioning takes effect on the next call, not at expiry.
    """
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return unauthenticated(
            "Credential was not sent or was of an unsupported type for this API."
        )
    variant = bad.variant(account.context, authority.host)  # a known-bad platform (selftest)
    issuer = authority
    claims = authority.verify_access_token(token, account.now())
    if claims is None and variant == "workspace-accepts-foreign-token":
        for other in (account.authority_by_host(h) for h in account.hosts()):
            if other is not None and other is not authority:
                claims = other.verify_access_token(token, account.now())
                if claims is not None:
                    issuer = other
                    break
    if claims is None:
        return unauthenticated("Invalid access token.", invalid=True)
    record = issuer.issued.get(claims["jti"], {})
    principal = Principal(record.get("kind", "user"), str(claims["sub"]))
    if not account.principal_active(principal) and variant != "accepts-deprovisioned-user":
        return unauthenticated("The user of this token is not active.", invalid=True)
    return claims, principal


def token_scopes(claims: dict[str, Any]) -> set[str]:
    return set(str(claims.get("scope", "")).split())
