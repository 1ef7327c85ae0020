"""Dynamic client registration (RFC 7591) for MCP clients.

Unknown metadata is ignored (RFC 7591 §2; rejecting it is the most common interop failure,
DC-03). Redirect URIs must be https, or http on a loopback address (RFC 8252 §7.3; MCP
"Open Redirection"), and never carry a fragment. Confidential methods get a random secret that
never expires (``client_secret_expires_at`` 0); only its hash is stored.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from broker.errors import OAuthError
from broker.http_util import json_response
from broker.storage import Client, secret_hash

if TYPE_CHECKING:
    from broker.app import Broker

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Optional string metadata echoed back when present (RFC 7591 §2).
STRING_FIELDS = (
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
    "application_type",
    "scope",
)


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def check_redirect_uri(uri: object) -> str:
    if not isinstance(uri, str) or not uri:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be non-empty strings")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise OAuthError("invalid_redirect_uri", f"malformed redirect URI {uri!r}") from None
    if "#" in uri:
        raise OAuthError("invalid_redirect_uri", "redirect URIs must not contain a fragment")
    if any(c.isspace() for c in uri):
        raise OAuthError("invalid_redirect_uri", "redirect URIs must not contain whitespace")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if is_loopback(uri):
        return uri
    raise OAuthError(
        "invalid_redirect_uri",
        f"redirect URI {uri!r} must use https or http on a loopback address",
    )


def _string_list(metadata: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = metadata.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OAuthError("invalid_client_metadata", f"{name} must be an array of strings")
    return list(value)


#: Every member this broker reads; others are ignored (or refused by a known-bad variant).
KNOWN_FIELDS = frozenset(
    (
        "redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "response_types",
        "contacts",
        "client_id",
        *STRING_FIELDS,
    )
)


def validate_metadata(
    metadata: Any,
    *,
    check_uri: Callable[[object], str] = check_redirect_uri,
    on_unknown: Callable[[set[str]], None] | None = None,
) -> dict[str, Any]:
    """The registered metadata with defaults applied; raises :class:`OAuthError`.

    ``check_uri`` and ``on_unknown`` are the broker's hooks (:class:`broker.app.Broker`).
    """
    if isinstance(metadata, dict) and on_unknown is not None:
        on_unknown(set(metadata) - KNOWN_FIELDS)
    if not isinstance(metadata, dict):
        raise OAuthError("invalid_client_metadata", "the body must be a JSON object")
    if "redirect_uris" not in metadata:
        raise OAuthError("invalid_redirect_uri", "redirect_uris is required")
    redirect_uris = metadata["redirect_uris"]
    if not isinstance(redirect_uris, list) or not redirect_uris:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty array")
    registered: dict[str, Any] = {
        "redirect_uris": [check_uri(u) for u in redirect_uris],
    }
    method = metadata.get("token_endpoint_auth_method", "none")
    if method not in AUTH_METHODS:
        raise OAuthError(
            "invalid_client_metadata",
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}",
        )
    registered["token_endpoint_auth_method"] = method
    grant_types = _string_list(metadata, "grant_types", list(GRANT_TYPES))
    if "authorization_code" not in grant_types or set(grant_types) - set(GRANT_TYPES):
        raise OAuthError(
            "invalid_client_metadata",
            "grant_types must include authorization_code and may add refresh_token only",
        )
    registered["grant_types"] = grant_types
    response_types = _string_list(metadata, "response_types", ["code"])
    if response_types != ["code"]:
        raise OAuthError("invalid_client_metadata", 'response_types must be ["code"]')
    registered["response_types"] = response_types
    for name in STRING_FIELDS:
        if name in metadata:
            if not isinstance(metadata[name], str):
                raise OAuthError("invalid_client_metadata", f"{name} must be a string")
            registered[name] = metadata[name]
    if "contacts" in metadata:
        registered["contacts"] = _string_list(metadata, "contacts", [])
    return registered


def register(broker: Broker, request: Request) -> Response:
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_client_metadata", "the body is not valid JSON") from None
    registered = validate_metadata(
        body, check_uri=broker.check_redirect_uri, on_unknown=broker.unknown_client_metadata
    )
    client_id = secrets.token_urlsafe(18)
    issued_at = int(broker.clock())
    answer: dict[str, Any] = {
        "client_id": client_id,
        "client_id_issued_at": issued_at,
        **registered,
    }
    hashed = None
    if registered["token_endpoint_auth_method"] != "none":
        secret = secrets.token_urlsafe(32)
        hashed = secret_hash(secret)
        answer["client_secret"] = secret
        answer["client_secret_expires_at"] = 0
    broker.storage.add_client(Client(client_id, hashed, registered, issued_at))
    return json_response(answer, status=201)
