"""The account REST API on the account host: federation policies, account-wide and per
service principal, at the paths the SDK's ``AccountFederationPolicyAPI`` and
``ServicePrincipalFederationPolicyAPI`` call (``/api/2.0/accounts/{account_id}/...``).

Authentication: a bearer token issued by the account's OIDC endpoint
(``/oidc/accounts/<id>/v1/token``; workspace tokens are refused), with scope ``all-apis``
(or ``authentication``, the federation-policy scope the research lists), for an account
admin; a valid token of a non-admin gets 403 ``PERMISSION_DENIED``. Which scope Databricks
requires exactly is unverified.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.http import json_response
from mocks.databricks import policies as pol
from mocks.databricks.models import DatabricksAccount
from mocks.databricks.rest import authenticate, rest_error, token_scopes

ADMIN_SCOPES = frozenset({"all-apis", "authentication"})


def _authorize_admin(account: DatabricksAccount, request: Request) -> Response | None:
    auth = authenticate(request, account.authority, account)
    if isinstance(auth, Response):
        return auth
    claims, principal = auth
    if not ADMIN_SCOPES & token_scopes(claims):
        return rest_error(
            "PERMISSION_DENIED",
            "The access token does not have the required scope 'all-apis'.",
            403,
        )
    if not account.is_account_admin(principal):
        return rest_error(
            "PERMISSION_DENIED", "Only account admins can manage federation policies.", 403
        )
    return None


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(as_text=True) or "{}")
    except ValueError:
        raise pol.PolicyError("The request body is not valid JSON.", "MALFORMED_REQUEST") from None


def policies(
    account: DatabricksAccount, request: Request, sp_id: int | None = None, **_: Any
) -> Response:
    """``GET`` lists (``page_size``, ``page_token``), ``POST`` creates (``?policy_id=``)."""
    refused = _authorize_admin(account, request)
    if refused is not None:
        return refused
    try:
        if request.method == "POST":
            created = pol.create_policy(
                account,
                _json_body(request),
                policy_id=request.args.get("policy_id"),
                sp_id=sp_id,
            )
            return json_response(pol.policy_json(account, created))
        page, token = pol.list_policies(
            account, sp_id, request.args.get("page_size"), request.args.get("page_token")
        )
    except pol.PolicyError as exc:
        return rest_error(exc.code, exc.message, exc.status)
    body: dict[str, Any] = {"policies": [pol.policy_json(account, p) for p in page]}
    if token is not None:
        body["next_page_token"] = token
    return json_response(body)


def policy(
    account: DatabricksAccount,
    request: Request,
    policy_id: str,
    sp_id: int | None = None,
    **_: Any,
) -> Response:
    refused = _authorize_admin(account, request)
    if refused is not None:
        return refused
    try:
        if request.method == "GET":
            found = pol.get_policy(account, sp_id, policy_id)
        elif request.method == "PATCH":
            found = pol.update_policy(
                account, sp_id, policy_id, _json_body(request), request.args.get("update_mask")
            )
        else:
            pol.delete_policy(account, sp_id, policy_id)
            return json_response({})
    except pol.PolicyError as exc:
        return rest_error(exc.code, exc.message, exc.status)
    return json_response(pol.policy_json(account, found))
