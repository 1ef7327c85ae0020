"""The values a broker under test is configured with: the ``HARNESS_*`` variables.

``mcp-harness serve`` writes them to its env file and ``mcp-harness env`` prints them (and
renders broker config templates from them), so both go through :func:`harness_env` and the
two can never disagree. The values come from :class:`SandboxFacts`, read either from a
:class:`~mocks.sandbox.Sandbox` object in this process or from a running sandbox's admin API
(``GET /_harness/tenants``), so ``env`` reports what that sandbox really serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from mocks import defaults

if TYPE_CHECKING:
    from mocks.sandbox import Sandbox

#: The sandbox port ``mcp-harness env`` assumes unless told otherwise; run
#: ``mcp-harness serve --port 8380`` for a sandbox the printed values fit.
DEFAULT_SANDBOX_PORT = 8380
#: Where ``python -m broker`` listens by default (its ``--port``).
DEFAULT_BROKER_PORT = 8400


class SandboxUnavailable(Exception):
    """No usable sandbox admin API answers at the URL given."""


@dataclass(frozen=True)
class SandboxFacts:
    """The URLs of one sandbox that a broker needs (every value is public, no secrets)."""

    proxy_url: str
    okta_issuer: str
    databricks_workspaces: tuple[str, ...]
    databricks_account_host: str
    snowflake_accounts: tuple[str, ...]
    ca_bundle: str | None = None

    @property
    def admin_url(self) -> str:
        return f"{self.proxy_url}/_harness"

    @classmethod
    def of(cls, sandbox: Sandbox) -> SandboxFacts:
        """The facts of a sandbox running in this process."""
        return cls(
            proxy_url=sandbox.proxy_url,
            okta_issuer=sandbox.okta_issuer,
            databricks_workspaces=tuple(
                sandbox.workspace(name).url for name in defaults.WORKSPACES
            ),
            databricks_account_host=sandbox.context.url_for(defaults.DATABRICKS_ACCOUNT_HOST),
            snowflake_accounts=(sandbox.snowflake_account().url,),
            ca_bundle=str(sandbox.ca_bundle) if sandbox.ca_bundle is not None else None,
        )

    @classmethod
    def read(cls, url: str, *, ca_bundle: str | None = None, timeout: float = 5.0) -> SandboxFacts:
        """The facts of a running sandbox (``mcp-harness serve``) at ``url``, from its admin
        API. The CA bundle is a local file the API cannot name: pass it for a TLS sandbox."""
        base = url.rstrip("/").removesuffix("/_harness")
        try:
            response = httpx.get(f"{base}/_harness/tenants", timeout=timeout, trust_env=False)
            tenants = response.json()["tenants"] if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise SandboxUnavailable(f"no mcp-harness sandbox answers at {base}: {exc}") from exc
        if not isinstance(tenants, dict):
            raise SandboxUnavailable(
                f"no mcp-harness sandbox answers at {base} (GET /_harness/tenants: "
                f"{response.status_code})"
            )
        try:
            return cls._from_tenants(base, tenants, ca_bundle)
        except (KeyError, TypeError) as exc:
            raise SandboxUnavailable(f"{base}: unexpected admin API answer ({exc})") from exc

    @classmethod
    def _from_tenants(
        cls, base: str, tenants: dict[str, Any], ca_bundle: str | None
    ) -> SandboxFacts:
        databricks = tenants["databricks"]
        accounts = tenants["snowflake"]["accounts"]
        snowflake = accounts.get(defaults.SNOWFLAKE_ACCOUNT) or next(iter(accounts.values()))
        return cls(
            proxy_url=base,
            okta_issuer=tenants["okta"]["issuer"],
            databricks_workspaces=tuple(
                databricks["workspaces"][name]["url"]
                for name in defaults.WORKSPACES
                if name in databricks["workspaces"]
            ),
            databricks_account_host=databricks["account_host"],
            snowflake_accounts=(snowflake["url"],),
            ca_bundle=ca_bundle,
        )


def harness_env(facts: SandboxFacts, broker_url: str) -> dict[str, str]:
    """The ``HARNESS_*`` variables (the env file of ``serve``, the output of ``env``)."""
    values = {
        "HARNESS_PROXY": facts.proxy_url,
        "HARNESS_ADMIN": facts.admin_url,
        "HARNESS_OKTA_ISSUER": facts.okta_issuer,
        "HARNESS_OKTA_CLIENT_ID": defaults.TEST_CLIENT_ID,
        "HARNESS_OKTA_CLIENT_SECRET": defaults.TEST_CLIENT_SECRET,
        "HARNESS_USERS": ",".join(login for login, *_ in defaults.USERS),
        "HARNESS_USER_PASSWORD": defaults.USER_PASSWORD,
        "HARNESS_DATABRICKS_WORKSPACES": ",".join(facts.databricks_workspaces),
        "HARNESS_DATABRICKS_ACCOUNT_HOST": facts.databricks_account_host,
        "HARNESS_DATABRICKS_ACCOUNT_ID": defaults.DATABRICKS_ACCOUNT_ID,
        "HARNESS_SNOWFLAKE_ACCOUNTS": ",".join(facts.snowflake_accounts),
        "HARNESS_BROKER": broker_url,
    }
    if facts.ca_bundle is not None:
        values["HARNESS_CA_BUNDLE"] = facts.ca_bundle
    return values


def host_template(urls: str) -> str:
    """``http://dbc-aaa.cloud.databricks.test,…`` → ``http://%s.cloud.databricks.test`` (the
    first label of the host is the resource segment), as brokers configure it."""
    parts = urlsplit(urls.split(",")[0].strip())
    _, _, rest = (parts.hostname or "").partition(".")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://%s.{rest}{port}"


def broker_settings(values: dict[str, str]) -> dict[str, str]:
    """:class:`broker.config.BrokerConfig` settings for a broker against the sandbox that
    ``values`` (:func:`harness_env`) describe — what config templates are rendered with."""
    settings = {
        "okta_issuer": values["HARNESS_OKTA_ISSUER"],
        "okta_client_id": values["HARNESS_OKTA_CLIENT_ID"],
        "okta_client_secret": values["HARNESS_OKTA_CLIENT_SECRET"],
        "upstream_proxy": values["HARNESS_PROXY"],
        "databricks_host_template": host_template(values["HARNESS_DATABRICKS_WORKSPACES"]),
        "snowflake_host_template": host_template(values["HARNESS_SNOWFLAKE_ACCOUNTS"]),
        "public_base_url": values["HARNESS_BROKER"],
    }
    if "HARNESS_CA_BUNDLE" in values:
        settings["upstream_ca_bundle"] = values["HARNESS_CA_BUNDLE"]
    return settings
