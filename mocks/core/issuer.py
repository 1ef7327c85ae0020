"""A minimal OIDC issuer (discovery + JWKS) for tokens minted directly by tests and checks.

It is a tenant like any other: its own host, its own keys. Databricks federation tests use it
to trust an issuer other than Okta, and negative checks use it to mint tokens with one defect.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.clock import Clock
from mocks.core.http import json_response
from mocks.core.jose import KeySet, fixture_key


class JwtIssuer:
    """Serves ``<issuer>/.well-known/openid-configuration`` and ``<issuer>/keys``."""

    def __init__(self, host: str, clock: Clock, *, path: str = "", alg: str = "RS256") -> None:
        self.host = host.lower()
        self.path = path.rstrip("/")
        self.clock = clock
        self.alg = alg
        self.keys = KeySet([fixture_key(f"issuer:{self.host}{self.path}", alg)])

    @property
    def hosts(self) -> Iterable[str]:
        return (self.host,)

    @property
    def issuer(self) -> str:
        return f"http://{self.host}{self.path}"

    def keyset(self, host: str) -> KeySet | None:
        """``KeyedService``: ``/_harness/keys`` rotates this issuer's keys."""
        return self.keys if host == self.host else None

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/keys"

    def mint(self, claims: dict[str, Any], *, lifetime: int = 300, **headers: Any) -> str:
        """Sign ``claims`` after filling ``iss``, ``iat``, ``exp`` and ``jti`` when absent."""
        now = int(self.clock.now())
        full = {"iss": self.issuer, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
        full.update(claims)
        return self.keys.sign(full, headers or None)

    def handle(self, request: Request) -> Response:
        if request.path == f"{self.path}/.well-known/openid-configuration":
            return json_response(
                {
                    "issuer": self.issuer,
                    "jwks_uri": self.jwks_uri,
                    "id_token_signing_alg_values_supported": [self.alg],
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                }
            )
        if request.path == f"{self.path}/keys":
            return json_response(self.keys.jwks(), headers={"Cache-Control": "max-age=300"})
        return json_response({"error": "not_found"}, 404)

    def reset(self) -> None:
        self.keys = KeySet([fixture_key(f"issuer:{self.host}{self.path}", self.alg)])
