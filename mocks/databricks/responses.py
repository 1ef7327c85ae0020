"""HTTP entry point of the mock Databricks account: every workspace host and the account host.

Thin dispatch: route by host and path, then hand over to :mod:`oidc` (discovery, token,
authorize), :mod:`mcp` (managed MCP servers), :mod:`account_api` (federation-policy REST) or
the SCIM ``Me`` handler here. OAuth endpoints answer with RFC 6749 error bodies, everything
else with Databricks' REST error body (:mod:`rest`). Every response has a ``Content-Type``
because the Databricks SDK crashes on an error without one (``vendor-fidelity.md`` §A.3).

The service is also an ``AdministeredService`` (``/_harness/tenants/databricks/…``, see
:mod:`mocks.databricks.admin`) and a ``KeyedService`` (workspace and account signing keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from mocks.core.http import json_response, oauth_error
from mocks.core.jose import KeySet
from mocks.core.server import host_of
from mocks.databricks import account_api, mcp, oidc
from mocks.databricks.admin import handle_admin
from mocks.databricks.models import Authority, DatabricksAccount, Workspace
from mocks.databricks.rest import authenticate, rest_error
from mocks.databricks.urls import account_map, workspace_map


class DatabricksService:
    """Every workspace of a Databricks account and its account host, as sandbox vhosts."""

    name = "databricks"

    def __init__(self, account: DatabricksAccount) -> None:
        self.account = account

    @property
    def hosts(self) -> Iterable[str]:
        return self.account.hosts()

    def reset(self) -> None:
        self.account.reset()

    def keyset(self, host: str) -> KeySet | None:
        authority = self.account.authority_by_host(host)
        return authority.keys if authority is not None else None

    def describe(self) -> dict[str, Any]:
        return self.account.describe()

    def admin(self, request: Request, path: str) -> Response:
        return handle_admin(self.account, request, path)

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        host = host_of(request)
        if host == self.account.account_host:
            return self._route(request, self.account.authority, account_map)
        workspace = self.account.workspace_by_host(host)
        if workspace is None:
            return rest_error("ENDPOINT_NOT_FOUND", "No such workspace.", 404)
        return self._route(request, workspace, workspace_map)

    def _route(self, request: Request, authority: Authority, url_map: Map) -> Response:
        adapter = url_map.bind_to_environ(request.environ)
        is_oauth = request.path.startswith("/oidc/")
        try:
            endpoint, matched = adapter.match()
        except MethodNotAllowed as exc:
            allow = ", ".join(sorted(exc.valid_methods or []))
            if is_oauth:
                return oauth_error(
                    "invalid_request", "The HTTP method is not supported.", 405, {"Allow": allow}
                )
            return rest_error(
                "BAD_REQUEST", "The HTTP method is not supported.", 405, {"Allow": allow}
            )
        except NotFound:
            return rest_error(
                "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.path}'.", 404
            )
        args = dict(matched)
        account_id = args.pop("account_id", None)
        if account_id is not None and account_id != self.account.account_id:
            message = f"Account {account_id} does not exist."
            if is_oauth:
                return oauth_error("invalid_request", message, 404)
            return rest_error("RESOURCE_DOES_NOT_EXIST", message, 404)
        return self._endpoint(endpoint, request, authority, args)

    def _endpoint(
        self, endpoint: str, request: Request, authority: Authority, args: dict[str, Any]
    ) -> Response:
        account = self.account
        if endpoint == "host_metadata":
            return self._host_metadata(authority)
        if endpoint == "oidc_metadata":
            return oidc.metadata(authority)
        if endpoint == "keys":
            return oidc.keys(authority)
        if endpoint == "token":
            return oidc.token(account, authority, request)
        if endpoint == "authorize":
            return oidc.authorize(account, authority, request)
        if endpoint == "policies":
            return account_api.policies(account, request, **args)
        if endpoint == "policy":
            return account_api.policy(account, request, **args)
        assert isinstance(authority, Workspace)
        if endpoint == "scim_me":
            return self._scim_me(request, authority)
        family = args.pop("family")
        return mcp.handle(account, authority, request, family, args)

    # -- discovery -----------------------------------------------------------------------
    def _host_metadata(self, authority: Authority) -> Response:
        """§A.1. The account host serves many accounts: its ``oidc_endpoint`` is a template
        and it names no account, so the SDK needs ``account_id`` and, finding no workspace
        id, requests IdP tokens for audience = the account id."""
        if isinstance(authority, Workspace):
            return json_response(
                {
                    "oidc_endpoint": authority.oidc_root,
                    "account_id": self.account.account_id,
                    "workspace_id": authority.workspace_id,
                    "cloud": "AWS",
                    "host_type": "WORKSPACE_HOST",
                    "token_federation_default_oidc_audiences": [authority.token_endpoint],
                }
            )
        return json_response(
            {
                "oidc_endpoint": f"{authority.url}/oidc/accounts/{{account_id}}",
                "cloud": "AWS",
                "host_type": "ACCOUNT_HOST",
            }
        )

    # -- SCIM ------------------------------------------------------------------------------
    def _scim_me(self, request: Request, ws: Workspace) -> Response:
        """The token's principal; any scope will do (the SDK's auth probe uses it)."""
        auth = authenticate(request, ws, self.account)
        if isinstance(auth, Response):
            return auth
        _, principal = auth
        headers = {"X-Databricks-Org-Id": ws.workspace_id}
        schema = ["urn:ietf:params:scim:schemas:core:2.0:User"]
        user = self.account.users.get(principal.name)
        sp = self.account.service_principal(principal.name)
        if (principal.kind == "service_principal" and sp is None) or (
            principal.kind != "service_principal" and user is None
        ):
            # Only reachable under the known-bad platform variant `accepts-deprovisioned-user`
            # (authenticate() refuses removed principals otherwise): the bad workspace answers
            # for the token's subject as an inactive principal rather than crashing.
            return json_response(
                {"schemas": schema, "userName": principal.name, "active": False}, headers=headers
            )
        if principal.kind == "service_principal":
            assert sp is not None
            return json_response(
                {
                    "schemas": schema,
                    "id": str(sp.id),
                    "userName": sp.application_id,
                    "displayName": sp.display_name,
                    "active": True,
                },
                headers=headers,
            )
        assert user is not None
        local = user.user_name.split("@")[0]
        return json_response(
            {
                "schemas": schema,
                "id": user.id,
                "userName": user.user_name,
                "displayName": local.capitalize(),
                "active": True,
                "emails": [{"value": user.user_name, "type": "work", "primary": True}],
                "name": {"givenName": local.capitalize()},
            },
            headers=headers,
        )
