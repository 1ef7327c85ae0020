"""Mock Snowflake: accounts, External OAuth, Snowflake OAuth, token exchange, sessions, MCP."""
