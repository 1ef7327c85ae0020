"""The org's authorization servers: issuers, endpoint URLs, audiences, and adding or
removing custom ASes (``vendor-fidelity.md`` §C.1).

Each server gets its own key from ``SandboxContext.key`` (seeded sandboxes get seeded keys),
named after the org and the server, so a token of one server never verifies at another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mocks.core.jose import KeySet
from mocks.okta.constants import OIDC_SCOPES, ORG_AS
from mocks.okta.records import AuthorizationServer, ClaimRule
from mocks.okta.state import OrgState


class AuthorizationServers(OrgState):
    """The org AS and the custom ASes: where each one's tokens say they come from."""

    @property
    def base_url(self) -> str:
        """``http(s)://{domain}``: the org AS's issuer and the base of every URL."""
        return self.context.url_for(self.domain)

    @property
    def keys(self) -> KeySet:
        """The ``default`` custom AS's keys: what brokers verify and ``/_harness/keys`` rotates."""
        return self.servers["default"].keys

    def issuer(self, server_id: str = "default") -> str:
        if server_id == ORG_AS:
            return self.base_url
        return f"{self.base_url}/oauth2/{server_id}"

    def endpoint(self, server_id: str, name: str) -> str:
        """``/oauth2/v1/<name>`` for the org AS, ``/oauth2/<id>/v1/<name>`` for a custom AS."""
        if server_id == ORG_AS:
            return f"{self.base_url}/oauth2/v1/{name}"
        return f"{self.issuer(server_id)}/v1/{name}"

    def audience(self, server_id: str) -> str:
        """``aud`` of the server's access tokens; the org AS's is the org URL."""
        if server_id == ORG_AS:
            return self.base_url
        return self.servers[server_id].audience

    def server(self, server_id: str) -> AuthorizationServer | None:
        with self._lock:
            return self.servers.get(server_id)

    def server_by_issuer(self, issuer: object) -> AuthorizationServer | None:
        with self._lock:
            return next((s for s in self.servers.values() if self.issuer(s.id) == issuer), None)

    def add_server(
        self,
        server_id: str,
        *,
        audience: str,
        scopes: Iterable[str] | None = None,
        grant_types: Iterable[str] | None = None,
        default_scopes: Iterable[str] = (),
        trusted_servers: Iterable[str] = (),
        claims: Iterable[ClaimRule] | None = None,
    ) -> AuthorizationServer:
        """A custom authorization server with its own issuer and keys (or replace one by id).

        It always has Okta's reserved OIDC scopes; ``scopes`` adds custom ones.
        """
        if server_id == ORG_AS or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", server_id):
            raise ValueError("an authorization server id is 1-64 letters, digits, '-' or '_'")
        name = (
            f"okta:{self.domain}" if server_id == "default" else f"okta:{self.domain}/{server_id}"
        )
        server = AuthorizationServer(server_id, audience, KeySet([self.context.key(name)]))
        if scopes is not None:
            server.scopes = list(dict.fromkeys([*OIDC_SCOPES, *scopes]))
        if grant_types is not None:
            server.grant_types = list(dict.fromkeys(grant_types))
        server.default_scopes = list(default_scopes)
        server.trusted_servers = list(trusted_servers)
        if claims is not None:
            server.claims = list(claims)
        with self._lock:
            self.servers[server_id] = server
        return server

    def remove_server(self, server_id: str) -> bool:
        """Delete a custom AS (not ``default``, not the org AS); its tokens stop verifying."""
        if server_id in (ORG_AS, "default"):
            raise ValueError("the org and 'default' authorization servers cannot be deleted")
        with self._lock:
            return self.servers.pop(server_id, None) is not None
