"""The default sandbox data every scenario starts from (issue #2, DESIGN §2).

Constants only: the mocks' models hold state, :mod:`mocks.sandbox` applies this data on every
reset. Ids look like the vendors' (Okta user ids ``00u…``, client ids ``0oa…``, Databricks
workspace ids of 16 digits) so that brokers which validate id shapes accept them.
"""

from __future__ import annotations

OKTA_DOMAIN = "acme.okta.test"
OKTA_AUTH_SERVER = "default"
OKTA_ISSUER = f"http://{OKTA_DOMAIN}/oauth2/{OKTA_AUTH_SERVER}"

USER_PASSWORD = "Sandbox-Passw0rd!"
#: (login, Okta user id, given name, family name)
USERS = (
    ("alice@example.com", "00ualice0000000000x7", "Alice", "Anders"),
    ("bob@example.com", "00ubob00000000000y7a", "Bob", "Brown"),
)

#: The reference broker's confidential Okta web client.
BROKER_CLIENT_ID = "0oabroker00000000x7a"
BROKER_CLIENT_SECRET = "broker-secret-Zx8uQ2vN5tL0pR3m"
#: The confidential web client handed to other brokers in the env file (HARNESS_OKTA_CLIENT_*).
TEST_CLIENT_ID = "0oatestclient000x7a1"
TEST_CLIENT_SECRET = "test-secret-Hq4mW9cT2yB7kJ6s"
#: Loopback redirect URIs; any port is accepted for them (RFC 8252 §7.3).
LOOPBACK_REDIRECT_URIS = ("http://127.0.0.1/callback", "http://localhost/callback")

DATABRICKS_DOMAIN = "cloud.databricks.test"
DATABRICKS_ACCOUNT_ID = "6a2f5b1c-0d3e-4f7a-9b8c-1d2e3f4a5b6c"
#: Workspace deployment name -> workspace id.
WORKSPACES = {"dbc-aaa": "1111222233334444", "dbc-bbb": "5555666677778888"}
FEDERATION_POLICY_ID = "okta-users"
#: The account policy maps the ID token's ``email`` claim to the Databricks user name.
FEDERATION_SUBJECT_CLAIM = "email"


def workspace_host(name: str) -> str:
    return f"{name}.{DATABRICKS_DOMAIN}"


#: The Databricks account host (account OIDC endpoints and the account REST API).
DATABRICKS_ACCOUNT_HOST = f"accounts.{DATABRICKS_DOMAIN}"
#: An account-admin service principal with an OAuth secret: M2M (``oauth-m2m``) at any
#: workspace or the account, and the account REST API (federation policies).
DATABRICKS_ADMIN_SP_APPLICATION_ID = "8d4c1f2a-3b5e-4c6d-9e7f-0a1b2c3d4e5f"
DATABRICKS_ADMIN_SP_NAME = "harness-admin"
DATABRICKS_ADMIN_SP_SECRET = "dose-sandbox-Wq7rT2yU9iO4pA6s"

SNOWFLAKE_DOMAIN = "snowflakecomputing.test"
SNOWFLAKE_ACCOUNT = "myorg-acct1"
SNOWFLAKE_HOST = f"{SNOWFLAKE_ACCOUNT}.{SNOWFLAKE_DOMAIN}"
SNOWFLAKE_ROLES = ("ANALYST", "REPORTING", "SYSADMIN", "ACCOUNTADMIN")
#: Custom scopes of the Okta ``default`` server that Snowflake External OAuth maps to roles,
#: as Snowflake's Okta guide has administrators create them (``session:role:<ROLE>``).
OKTA_SNOWFLAKE_SCOPES = ("session:role:ANALYST", "session:role:REPORTING", "session:role-any")
#: (user name, login name = Okta login, default role, granted roles)
SNOWFLAKE_USERS = (
    ("ALICE", "alice@example.com", "ANALYST", ("ANALYST",)),
    ("BOB", "bob@example.com", "REPORTING", ("REPORTING",)),
)
#: External OAuth trusting the mock Okta default server: Okta's access-token ``aud`` and
#: ``sub`` (the login) mapped to LOGIN_NAME.
SNOWFLAKE_EXTERNAL_OAUTH = "OKTA_EXTERNAL_OAUTH"
SNOWFLAKE_EXTERNAL_OAUTH_AUDIENCE = "api://default"
#: The Snowflake OAuth client (``TYPE = OAUTH OAUTH_CLIENT = CUSTOM``) the harness uses.
SNOWFLAKE_OAUTH_CLIENT = "HARNESS_CLIENT"
SNOWFLAKE_OAUTH_CLIENT_ID = "D7xQ2mVb9LtRk4sWz1Pn8yHc3aE="
SNOWFLAKE_OAUTH_CLIENT_SECRET = "sf-secret-Jt5vN8qL2wX7cR4bM9kZ"
SNOWFLAKE_OAUTH_REDIRECT_URI = "http://127.0.0.1/callback"
#: The managed MCP server ``SALES.PUBLIC.SALES_MCP``: SQL for ANALYST and REPORTING, search for
#: ANALYST only.
SNOWFLAKE_MCP_SERVER = ("SALES", "PUBLIC", "SALES_MCP")
