"""The default Snowflake data of the sandbox (constants in :mod:`mocks.defaults`)."""

from __future__ import annotations

from mocks import defaults as d
from mocks.snowflake.models import (
    ExternalOAuthIntegration,
    McpServer,
    McpTool,
    OAuthClientIntegration,
    SnowflakeCloud,
)


def seed(cloud: SnowflakeCloud, okta_issuer: str) -> None:
    """Account ``myorg-acct1`` with ALICE/BOB, roles, the Okta integration and an MCP server."""
    account = cloud.add_account(d.SNOWFLAKE_ACCOUNT)
    for role in d.SNOWFLAKE_ROLES:
        account.add_role(role)
    for name, login, default_role, roles in d.SNOWFLAKE_USERS:
        account.add_user(
            name,
            login_name=login,
            email=login,
            default_role=default_role,
            roles=roles,
            password=d.USER_PASSWORD,
        )
    account.add_external_oauth(
        ExternalOAuthIntegration(
            name=d.SNOWFLAKE_EXTERNAL_OAUTH,
            issuer=okta_issuer,
            jws_keys_urls=[f"{okta_issuer}/v1/keys"],
            token_user_mapping_claims=["sub"],
            snowflake_user_mapping_attribute="LOGIN_NAME",
            audience_list=[d.SNOWFLAKE_EXTERNAL_OAUTH_AUDIENCE],
            external_oauth_type="OKTA",
        )
    )
    account.add_oauth_client(
        OAuthClientIntegration(
            name=d.SNOWFLAKE_OAUTH_CLIENT,
            client_id=d.SNOWFLAKE_OAUTH_CLIENT_ID,
            client_secret=d.SNOWFLAKE_OAUTH_CLIENT_SECRET,
            redirect_uri=d.SNOWFLAKE_OAUTH_REDIRECT_URI,
        )
    )
    database, schema, name = d.SNOWFLAKE_MCP_SERVER
    account.add_mcp_server(
        McpServer(
            database=database,
            schema=schema,
            name=name,
            roles={"ANALYST", "REPORTING"},
            tools=[
                McpTool("sql_exec", "SYSTEM_EXECUTE_SQL", "Run SQL as the session role."),
                McpTool(
                    "revenue_search",
                    "CORTEX_SEARCH_SERVICE_QUERY",
                    "Search the revenue notes.",
                    roles={"ANALYST"},
                ),
            ],
        )
    )
