"""The sandbox: the server, the shared clock and journal, and every mock with its default data.

``Sandbox`` is what the CLI, the pytest fixtures and the tests start. ``reset()`` (also
``POST /_harness/reset``) puts every tenant back to the default data of :mod:`mocks.defaults`,
so scenarios never see each other's state.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from mocks import defaults as d
from mocks.core.clock import Clock
from mocks.core.journal import Journal
from mocks.core.server import SandboxContext, SandboxServer
from mocks.core.static import StaticDocuments
from mocks.core.sts_variants import variants_of
from mocks.core.tls import SandboxCA
from mocks.databricks.models import DatabricksAccount, Workspace
from mocks.databricks.responses import DatabricksService
from mocks.okta.models import OktaOrg
from mocks.okta.responses import OktaService
from mocks.snowflake.models import Account as SnowflakeAccount
from mocks.snowflake.models import SnowflakeCloud
from mocks.snowflake.responses import SnowflakeService
from mocks.snowflake.seed import seed as seed_snowflake


class Sandbox:
    """Mock Okta org ``acme.okta.test``, Databricks workspaces ``dbc-aaa``/``dbc-bbb`` and the
    account host, Snowflake account ``myorg-acct1``, the static document host
    ``apps.example.test`` (:attr:`apps`); optionally over HTTPS, optionally seeded."""

    def __init__(
        self,
        *,
        port: int = 0,
        journal_size: int = 1000,
        clock: Clock | None = None,
        seed: int | None = None,
        tls: bool = False,
        ca_dir: str | os.PathLike[str] | None = None,
    ):
        """``tls=True`` serves every tenant over HTTPS too (issuers become ``https://``).

        The CA goes to ``ca_dir`` (reused if it already holds one) or to a private temporary
        directory; :attr:`ca_bundle` is its certificate file.
        """
        self.context = SandboxContext(clock or Clock(), Journal(journal_size))
        self.context.ids.reseed(seed)
        if tls:
            self.context.use_tls(SandboxCA(ca_dir))
        self.server = SandboxServer(self.context, port=port, on_reset=self._after_reset)
        self.okta = OktaOrg(self.context, domain=d.OKTA_DOMAIN)
        self.databricks = DatabricksAccount(
            self.context, account_id=d.DATABRICKS_ACCOUNT_ID, domain=d.DATABRICKS_DOMAIN
        )
        self.server.add(OktaService(self.okta))
        self.server.add(DatabricksService(self.databricks))
        self.snowflake = SnowflakeCloud(self.context, domain=d.SNOWFLAKE_DOMAIN)
        self.server.add(SnowflakeService(self.snowflake))
        #: ``apps.example.test``: documents a scenario puts (client ID metadata documents).
        self.apps = StaticDocuments(self.context)
        self.server.add(self.apps)
        self.seed()

    # -- shared objects ----------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self.context.clock

    @property
    def journal(self) -> Journal:
        return self.context.journal

    @property
    def url(self) -> str:
        """Base URL of the server: the HTTP proxy address and the admin API host."""
        return self.server.url

    @property
    def proxy_url(self) -> str:
        return self.server.url

    @property
    def ca_bundle(self) -> Path | None:
        """The sandbox CA certificate (PEM) clients must trust in TLS mode, else None."""
        return self.context.tls.path if self.context.tls is not None else None

    @property
    def admin_url(self) -> str:
        return f"{self.server.url}/_harness"

    @property
    def okta_issuer(self) -> str:
        return self.okta.issuer(d.OKTA_AUTH_SERVER)

    def workspace(self, name: str) -> Workspace:
        return self.databricks.workspace(name)

    def snowflake_account(self, name: str = d.SNOWFLAKE_ACCOUNT) -> SnowflakeAccount:
        return self.snowflake.account(name)

    # -- data --------------------------------------------------------------------------
    def seed(self) -> None:
        """Apply the default data (called at construction and after every reset)."""
        for login, user_id, given, family in d.USERS:
            self.okta.add_user(
                login, d.USER_PASSWORD, user_id=user_id, given_name=given, family_name=family
            )
        for client_id, secret in (
            (d.BROKER_CLIENT_ID, d.BROKER_CLIENT_SECRET),
            (d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET),
        ):
            self.okta.add_client(
                client_id,
                client_secret=secret,
                redirect_uris=list(d.LOOPBACK_REDIRECT_URIS),
                token_endpoint_auth_method="client_secret_basic",
                grant_types=["authorization_code", "refresh_token"],
            )
        default_server = self.okta.server(d.OKTA_AUTH_SERVER)
        assert default_server is not None
        default_server.scopes.extend(d.OKTA_SNOWFLAKE_SCOPES)
        for name, workspace_id in d.WORKSPACES.items():
            self.databricks.add_workspace(name, workspace_id=workspace_id)
        for login, *_ in d.USERS:
            self.databricks.add_user(login)
        self.databricks.add_federation_policy(
            d.FEDERATION_POLICY_ID,
            issuer=self.okta_issuer,
            audiences=[d.BROKER_CLIENT_ID, d.TEST_CLIENT_ID],
            subject_claim=d.FEDERATION_SUBJECT_CLAIM,
        )
        self.databricks.add_service_principal(
            application_id=d.DATABRICKS_ADMIN_SP_APPLICATION_ID,
            display_name=d.DATABRICKS_ADMIN_SP_NAME,
            secret=d.DATABRICKS_ADMIN_SP_SECRET,
            account_admin=True,
        )
        seed_snowflake(self.snowflake, self.okta_issuer)

    def reset(self) -> None:
        self.server.reset()

    def _after_reset(self) -> None:
        variants_of(self.context).reset()
        self.seed()

    # -- known-bad token services (DESIGN §7) ---------------------------------------------
    def set_sts_variant(
        self, host: str | None, name: str | None, *, keep_on_reset: bool = False
    ) -> None:
        """Switch ``host`` (a Databricks workspace or account host, a Snowflake account host;
        None: every host) to the known-bad variant ``name`` of
        :data:`mocks.core.sts_variants.STS_VARIANTS`, or back to the strict mock (None).

        A reset switches it off again, unless ``keep_on_reset``: then every reset restores it,
        which is how a whole scenario run (each scenario starts with a reset) meets a bad
        platform. Raises ``ValueError`` for an unknown variant or host.
        """
        if host is not None:
            host = host.lower()
            if host not in self.sts_hosts():
                raise ValueError(
                    f"{host!r} is not a token-service host of this sandbox; "
                    f"use one of {', '.join(self.sts_hosts())}"
                )
        variants_of(self.context).set(host, name, keep_on_reset=keep_on_reset)

    def sts_variants(self) -> dict[str, str]:
        """``{host or "*": variant}`` of the variants switched on."""
        return variants_of(self.context).active()

    def sts_hosts(self) -> list[str]:
        """The hosts whose token services honour :meth:`set_sts_variant`."""
        return sorted([*self.databricks.hosts(), *self.snowflake.hosts()])

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Sandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
