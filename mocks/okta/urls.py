"""Okta's URL layout for custom authorization servers (``vendor-fidelity.md`` §C.1)."""

from __future__ import annotations

from werkzeug.routing import Map, Rule

url_map = Map(
    [
        Rule(
            "/oauth2/<server_id>/.well-known/openid-configuration", endpoint="openid_configuration"
        ),
        Rule(
            "/oauth2/<server_id>/.well-known/oauth-authorization-server", endpoint="oauth_metadata"
        ),
        Rule(
            "/.well-known/oauth-authorization-server/oauth2/<server_id>", endpoint="oauth_metadata"
        ),
        Rule("/oauth2/<server_id>/v1/keys", endpoint="keys"),
        Rule("/oauth2/<server_id>/v1/authorize", endpoint="authorize"),
        Rule("/oauth2/<server_id>/v1/token", endpoint="token"),
        Rule("/oauth2/<server_id>/v1/userinfo", endpoint="userinfo"),
    ],
    strict_slashes=False,
)
