"""Reference broker: an OAuth 2.1 authorization server for MCP clients in front of Databricks
SQL MCP servers, obtaining per-workspace tokens by RFC 8693 token federation of the user's Okta
ID token.

Public API::

    from broker.config import BrokerConfig, ConfigError
    from broker.server import BrokerServer  # (config, *, clock, defect, host, port)
    from broker.variants import DEFECTS, create_broker
    from broker.app import Broker  # the WSGI app: audit_records(), reset()

Run standalone: ``python -m broker --port 8400`` with ``BROKER_*`` (or ``HARNESS_*``) variables.

Choices made where the specifications are silent (each is explained where it is implemented):

* The ``access_token`` handed to the MCP client IS the Databricks workspace token (the MCP
  servers live on the workspace and validate it there); the broker's refresh token is its own.
* ``resource`` is required at ``/authorize`` (``invalid_target`` when missing) and exactly one
  may be given; at ``/token`` it defaults to the resource bound at authorization. For the code
  grant it must equal the bound resource; for refresh it may name any valid workspace
  (RFC 8707 §2.2 allows narrowing; here every workspace is the same user's data).
* ``scope`` is optional; when given it must contain ``sql`` (other values are ignored).
* Redirect URIs: https, or http on 127.0.0.1 / localhost / [::1] with any port at
  ``/authorize`` (RFC 8252 §7.3); custom schemes are refused (MCP "Open Redirection").
* Confidential clients may authenticate with Basic or ``client_secret_post``, whichever of the
  two they registered (being lenient here avoids a common interop failure); using both at
  once is ``invalid_request``; a public client that sends a secret is ``invalid_client``.
* An authorization code is consumed even when the upstream exchange then fails; a refresh token
  is rotated only after the exchange succeeded, so transient upstream errors do not burn it.
* A replayed code revokes the refresh-token family of its first redemption; a replayed rotated
  refresh token revokes its whole family.
* Missing ``expires_in`` from the workspace: the token is assumed to live as long as the ID
  token it came from. Missing ``access_token`` or a non-Bearer ``token_type``: 502
  ``server_error`` (fail closed).
* Consent (MCP "Confused Deputy"): before forwarding a client's authorization request to Okta
  the broker shows its own page naming the client and its redirect URI's host; approval is
  remembered per browser (an HttpOnly cookie holding a random id, stored hashed) and per
  (client id, exact redirect URI), as FastMCP's and Cloudflare's MCP OAuth proxies do with
  cookies; Deny is ``access_denied`` at the redirect URI. See ``broker/consent.py``.
* PKCE S256 is required of every client at ``/authorize`` and checked at ``/token``; a
  replayed code is refused before its verifier is checked, so a thief without the verifier
  still revokes what the first redemption issued.
* Exchange flow (``exchange_flow``): ``brokered`` (default) forwards the Okta ID token;
  ``federated`` exchanges the broker's own ES256 assertion instead (``sub`` the user's email,
  the Databricks user name; ``act.sub`` the MCP client; ``aud`` the workspace URL; 300 s), see
  ``broker/issuer.py``. Only a federated broker serves ``/.well-known/openid-configuration``
  and ``/jwks`` (404 otherwise), for the platforms' federation policies to find its keys.
* Otherwise no ``/.well-known/openid-configuration``: the broker issues no ID tokens, so it is
  no OpenID Provider; RFC 8414 metadata (which MCP clients try first) lists ``S256`` and
  ``authorization_response_iss_parameter_supported``, and every authorization response,
  code or error, carries ``iss`` (RFC 9207).
* Client ID metadata documents (URL-shaped ``client_id``, MC-09) are fetched through a guarded
  client (``broker/client_metadata.py``): https only (http just for sandbox ``*.test`` hosts,
  reached only through the sandbox proxy, while the sandbox is plain HTTP), non-public
  addresses refused after resolution, 5 kB, 5 s, no redirects, ``application/json``, the
  document's ``client_id`` equal to the URL, public clients only; cached per ``Cache-Control``
  on the broker clock. A refused document is an unknown client (shown, not redirected).
* Resource URLs (``/v1/databricks-sql/<segment>/mcp``) answer 401 with ``WWW-Authenticate:
  Bearer resource_metadata="…"`` without a token (RFC 9728 §5.1) and 501 ``not_implemented``
  with one: the broker does not forward MCP requests (the workspace serves them).
* Snowflake resources (``/v1/snowflake/<account>/mcp``, ``broker/passthrough.py``): session
  passthrough of the user's Okta ACCESS token (never the ID token). The role scope
  ``session:role:<snowflake_role>`` (default ANALYST, one for every account) is asked of Okta
  only at a login for a Snowflake resource; Okta refreshes send no ``scope`` so the granted
  scopes stay; a token without the role scope is ``invalid_scope`` (sign in again).
* Broker refresh tokens live ``refresh_token_ttl`` (90 days by default); the Okta session
  usually ends first, which surfaces as ``invalid_grant`` "sign in again".
"""
