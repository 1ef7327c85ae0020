"""Okta's URL layout for the org and custom authorization servers (``vendor-fidelity.md`` §C.1).

The org AS lives at ``/oauth2/v1/...`` with its discovery documents at the root; a custom AS
at ``/oauth2/{id}/v1/...`` with discovery below its issuer and, for OAuth metadata, also in
the RFC 8414 form ``/.well-known/oauth-authorization-server/oauth2/{id}``. The org rules bind
``server_id`` to :data:`~mocks.okta.models.ORG_AS` (the empty string, which no URL segment can
spell, so no custom AS can shadow the org).
"""

from __future__ import annotations

from werkzeug.routing import Map, Rule

from mocks.okta.models import ORG_AS

ENDPOINTS = ("keys", "authorize", "token", "userinfo", "introspect", "revoke", "logout")
_ORG = {"server_id": ORG_AS}

url_map = Map(
    [
        Rule("/.well-known/openid-configuration", endpoint="openid_configuration", defaults=_ORG),
        Rule("/.well-known/oauth-authorization-server", endpoint="oauth_metadata", defaults=_ORG),
        *(Rule(f"/oauth2/v1/{name}", endpoint=name, defaults=_ORG) for name in ENDPOINTS),
        Rule(
            "/oauth2/<server_id>/.well-known/openid-configuration", endpoint="openid_configuration"
        ),
        Rule(
            "/oauth2/<server_id>/.well-known/oauth-authorization-server", endpoint="oauth_metadata"
        ),
        Rule(
            "/.well-known/oauth-authorization-server/oauth2/<server_id>", endpoint="oauth_metadata"
        ),
        *(Rule(f"/oauth2/<server_id>/v1/{name}", endpoint=name) for name in ENDPOINTS),
        Rule("/login/signout", endpoint="signed_out", defaults=_ORG),
    ],
    strict_slashes=False,
    redirect_defaults=False,
)
