"""Federation policies as the account REST API manages them (``vendor-fidelity.md`` §A.4).

One set of rules serves the REST API (``/api/2.0/accounts/<id>/federationPolicies`` and the
service-principal variant) and the harness admin API, so a policy the sandbox accepts is one
Databricks would accept. JSON shapes are the SDK's ``FederationPolicy``/``OidcFederationPolicy``
(``databricks/sdk/service/oauth2.py``). Refusals raise :class:`PolicyError`, which handlers
render as Databricks REST errors (``{"error_code", "message"}``).

Rules: ``policy_id`` lowercase letters, digits, hyphens and slashes, 2-63 characters [SRC
docstring; length per research], assigned when omitted; ``name`` if sent must be the resource
name of the URL; ``oidc_policy.issuer`` required, an absolute ``https`` URL (plain ``http``
is admitted while the sandbox itself serves plain HTTP, and for loopback issuers — a broker
under test next to the sandbox, trusted as a federated issuer); ``audiences`` non-empty strings,
default the account id; ``subject_claim`` default ``sub``; ``subject`` forbidden on account
policies and required on SP policies; at most one of ``jwks_uri`` (a URL) and ``jwks_json`` (a
JWKS document). Unknown members are ignored, as proto-JSON servers do.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mocks.databricks.models import FederationPolicy

if TYPE_CHECKING:
    from mocks.databricks.models import DatabricksAccount

POLICY_ID_RE = re.compile(r"[a-z0-9/-]{2,63}")
OIDC_FIELDS = ("issuer", "audiences", "subject_claim", "subject", "jwks_uri", "jwks_json")
UPDATABLE = frozenset({"description", "oidc_policy", *(f"oidc_policy.{f}" for f in OIDC_FIELDS)})
MAX_PAGE_SIZE = 1000


class PolicyError(ValueError):
    """A refused policy request: Databricks ``error_code``, ``message`` and HTTP status."""

    def __init__(self, message: str, code: str = "INVALID_PARAMETER_VALUE", status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> PolicyError:
    return PolicyError(message)


def resource_name(account_id: str, policy_id: str, sp_id: int | None) -> str:
    if sp_id is None:
        return f"accounts/{account_id}/federationPolicies/{policy_id}"
    return f"accounts/{account_id}/servicePrincipals/{sp_id}/federationPolicies/{policy_id}"


def _timestamp(value: float) -> str:
    return (
        datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def policy_json(account: DatabricksAccount, policy: FederationPolicy) -> dict[str, Any]:
    """The SDK's ``FederationPolicy.as_dict`` shape."""
    oidc: dict[str, Any] = {
        "issuer": policy.issuer,
        "audiences": list(policy.audiences),
        "subject_claim": policy.subject_claim,
    }
    for name in ("subject", "jwks_uri", "jwks_json"):
        value = getattr(policy, name)
        if value is not None:
            oidc[name] = value
    body: dict[str, Any] = {
        "name": resource_name(account.account_id, policy.policy_id, policy.service_principal_id),
        "policy_id": policy.policy_id,
        "uid": policy.uid,
        "create_time": _timestamp(policy.create_time),
        "update_time": _timestamp(policy.update_time),
        "oidc_policy": oidc,
    }
    if policy.description is not None:
        body["description"] = policy.description
    if policy.service_principal_id is not None:
        body["service_principal_id"] = policy.service_principal_id
    return body


def _check_sp(account: DatabricksAccount, sp_id: int | None) -> None:
    if sp_id is not None and sp_id not in account.service_principals:
        raise PolicyError(
            f"Service principal {sp_id} does not exist.", "RESOURCE_DOES_NOT_EXIST", 404
        )


def _url(value: Any, name: str, schemes: set[str]) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"oidc_policy.{name} must be a non-empty string.")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        raise _invalid(
            f"oidc_policy.{name} must be an absolute {' or '.join(sorted(schemes))} URL."
        )
    return value


def _with_loopback_http(value: Any, schemes: set[str]) -> set[str]:
    """``schemes`` plus ``http`` when ``value`` is a loopback URL (127.0.0.1, localhost, ::1)."""
    try:
        host = urlsplit(value).hostname if isinstance(value, str) else None
    except ValueError:
        host = None
    return schemes | {"http"} if host in ("127.0.0.1", "localhost", "::1") else schemes


def _optional_string(oidc: dict[str, Any], name: str) -> str | None:
    value = oidc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"oidc_policy.{name} must be a non-empty string.")
    return value


def _validated(
    account: DatabricksAccount, body: Any, sp_id: int | None, policy_id: str
) -> dict[str, Any]:
    """The checked attributes of a policy from a full request body."""
    if not isinstance(body, dict):
        raise PolicyError("The request body must be a JSON object.", "MALFORMED_REQUEST")
    name = body.get("name")
    if name is not None and name != resource_name(account.account_id, policy_id, sp_id):
        raise _invalid("The policy name does not match the request URL.")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise _invalid("description must be a string.")
    oidc = body.get("oidc_policy")
    if oidc is None:
        raise _invalid("oidc_policy is required.")
    if not isinstance(oidc, dict):
        raise _invalid("oidc_policy must be an object.")
    schemes = {"https", account.context.scheme}
    issuer = _url(oidc.get("issuer"), "issuer", _with_loopback_http(oidc.get("issuer"), schemes))
    audiences = oidc.get("audiences")
    if audiences is None or audiences == []:
        audiences = [account.account_id]
    if not isinstance(audiences, list) or not all(
        isinstance(a, str) and a.strip() for a in audiences
    ):
        raise _invalid("oidc_policy.audiences must be a list of non-empty strings.")
    subject_claim = _optional_string(oidc, "subject_claim") or "sub"
    subject = _optional_string(oidc, "subject")
    if sp_id is None and subject is not None:
        raise _invalid(
            "oidc_policy.subject must not be set for account federation policies; "
            "use a service principal federation policy to match one subject."
        )
    if sp_id is not None and subject is None:
        raise _invalid("oidc_policy.subject is required for service principal federation policies.")
    jwks_uri = oidc.get("jwks_uri")
    jwks_json = oidc.get("jwks_json")
    if jwks_uri is not None and jwks_json is not None:
        raise _invalid("Specify at most one of oidc_policy.jwks_uri and oidc_policy.jwks_json.")
    if jwks_uri is not None:
        _url(jwks_uri, "jwks_uri", _with_loopback_http(jwks_uri, schemes))
    if jwks_json is not None:
        _check_jwks_json(jwks_json)
    return {
        "issuer": issuer,
        "audiences": list(audiences),
        "subject_claim": subject_claim,
        "subject": subject,
        "jwks_uri": jwks_uri,
        "jwks_json": jwks_json,
        "description": description,
    }


def _check_jwks_json(value: Any) -> None:
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        data = None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise _invalid('oidc_policy.jwks_json must be a JWKS document: {"keys": [...]}.')


def create_policy(
    account: DatabricksAccount, body: Any, *, policy_id: str | None, sp_id: int | None
) -> FederationPolicy:
    _check_sp(account, sp_id)
    if policy_id is None or policy_id == "":
        policy_id = str(account.context.ids.uuid4())
    elif not POLICY_ID_RE.fullmatch(policy_id):
        raise _invalid(
            "policy_id must be 2-63 characters of lowercase letters, digits, hyphens and slashes."
        )
    attrs = _validated(account, body, sp_id, policy_id)
    now = account.now()
    policy = FederationPolicy(
        policy_id=policy_id,
        service_principal_id=sp_id,
        uid=str(account.context.ids.uuid4()),
        create_time=now,
        update_time=now,
        **attrs,
    )
    with account._lock:
        if (sp_id, policy_id) in account.policies:
            raise PolicyError(
                f"Federation policy {policy_id} already exists.", "RESOURCE_ALREADY_EXISTS", 409
            )
        account.policies[(sp_id, policy_id)] = policy
    return policy


def get_policy(account: DatabricksAccount, sp_id: int | None, policy_id: str) -> FederationPolicy:
    _check_sp(account, sp_id)
    with account._lock:
        policy = account.policies.get((sp_id, policy_id))
    if policy is None:
        raise PolicyError(
            f"Federation policy {policy_id} does not exist.", "RESOURCE_DOES_NOT_EXIST", 404
        )
    return policy


def delete_policy(account: DatabricksAccount, sp_id: int | None, policy_id: str) -> None:
    get_policy(account, sp_id, policy_id)
    with account._lock:
        account.policies.pop((sp_id, policy_id), None)


def update_policy(
    account: DatabricksAccount,
    sp_id: int | None,
    policy_id: str,
    body: Any,
    update_mask: str | None,
) -> FederationPolicy:
    """PATCH semantics of the SDK: ``update_mask`` names fields (``*`` = replace all);
    without it every field the request sets overwrites the stored one."""
    current = get_policy(account, sp_id, policy_id)
    if not isinstance(body, dict):
        raise PolicyError("The request body must be a JSON object.", "MALFORMED_REQUEST")
    merged = policy_json(account, current)
    merged_oidc: dict[str, Any] = merged.pop("oidc_policy")
    new_oidc: dict[str, Any] = body.get("oidc_policy") or {}
    if not isinstance(new_oidc, dict):
        raise _invalid("oidc_policy must be an object.")
    if update_mask is None or update_mask == "":
        paths = {"description"} if "description" in body else set()
        paths |= {f"oidc_policy.{k}" for k in new_oidc if k in OIDC_FIELDS}
    elif update_mask.strip() == "*":
        paths = {"description", "oidc_policy"}
    else:
        paths = {p.strip() for p in update_mask.split(",")}
        unknown = sorted(paths - UPDATABLE)
        if unknown:
            raise _invalid(
                f"update_mask names fields that cannot be updated: {', '.join(unknown)}."
            )
    if "description" in paths:
        merged["description"] = body.get("description")
    if "oidc_policy" in paths:
        merged_oidc = dict(new_oidc)
    for path in paths:
        if path.startswith("oidc_policy."):
            field_name = path.removeprefix("oidc_policy.")
            if new_oidc.get(field_name) is None:
                merged_oidc.pop(field_name, None)
            else:
                merged_oidc[field_name] = new_oidc[field_name]
    merged["oidc_policy"] = merged_oidc
    attrs = _validated(account, merged, sp_id, policy_id)
    with account._lock:
        for key, value in attrs.items():
            setattr(current, key, value)
        current.update_time = account.now()
    return current


def list_policies(
    account: DatabricksAccount, sp_id: int | None, page_size: str | None, page_token: str | None
) -> tuple[list[FederationPolicy], str | None]:
    """One page in creation order; the page token is opaque (an encoded offset)."""
    _check_sp(account, sp_id)
    try:
        size = int(page_size) if page_size not in (None, "") else MAX_PAGE_SIZE
    except ValueError:
        raise _invalid("page_size must be an integer.") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _invalid(f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
    offset = 0
    if page_token:
        try:
            offset = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except ValueError:
            raise _invalid("page_token is invalid.") from None
    with account._lock:
        mine = [p for (owner, _), p in account.policies.items() if owner == sp_id]
    page = mine[offset : offset + size]
    more = offset + size < len(mine)
    token = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
    return page, token
