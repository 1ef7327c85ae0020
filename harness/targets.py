"""Brokers under test (DESIGN §3), selected with ``--broker``.

* ``reference`` — our reference broker, in-process, on its own loopback port, sharing the
  sandbox clock; ``reference:<defect>`` selects one of its known-bad variants
  (:data:`broker.variants.DEFECTS`) to prove the checks can fail.
* ``url:<base>`` — a broker the user started and pointed at the sandbox. It cannot share the
  clock, so scenarios that need clock control are SKIPPED with the reason.
* ``cmd:<command>`` — the harness starts the command with the sandbox's ``HARNESS_*``
  variables, waits for its health URL, keeps its output for the report and stops it
  afterwards (:mod:`harness.process_target`).
* ``docker:<image>`` — the same through the docker SDK, host network
  (:mod:`harness.docker_target`).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mocks import defaults
from mocks.core.redact import redact_text
from mocks.sandbox import Sandbox


class TargetError(Exception):
    """The ``--broker`` value cannot be used (a usage error, exit code 2)."""


class Target(Protocol):
    spec: str
    url: str
    shares_clock: bool
    #: Whether :meth:`configure` can give the broker a scenario's ``given.broker`` settings.
    can_configure: bool

    def configure(self, settings: dict[str, object]) -> None: ...

    def restore(self) -> None: ...

    def reset(self) -> None: ...

    def stop(self) -> None: ...

    def drain_log(self) -> list[str]: ...

    def audit_records(self) -> list[dict[str, Any]] | None: ...


class LogCapture(logging.Handler):
    """Keeps an in-process broker's log for the report instead of printing it on the terminal.

    Lines are redacted and exceptions shortened to their type and message: a known-bad broker
    that crashes must show up as a failed check, not as a traceback in the CLI output.
    """

    def __init__(self, limit: int = 1000) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=limit)

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line += f" ({type(exc).__name__}: {exc})"
        self.lines.append(redact_text(line))

    def drain(self) -> list[str]:
        lines = list(self.lines)
        self.lines.clear()
        return lines


def reference_config_values(sandbox: Sandbox) -> dict[str, str]:
    """The settings any broker needs to run against this sandbox (also the env file's)."""
    return {
        "okta_issuer": sandbox.okta_issuer,
        "okta_client_id": defaults.BROKER_CLIENT_ID,
        "okta_client_secret": defaults.BROKER_CLIENT_SECRET,
        "upstream_proxy": sandbox.proxy_url,
        "databricks_host_template": sandbox.context.url_for(f"%s.{defaults.DATABRICKS_DOMAIN}"),
        "snowflake_host_template": sandbox.context.url_for(f"%s.{defaults.SNOWFLAKE_DOMAIN}"),
        **({"upstream_ca_bundle": str(sandbox.ca_bundle)} if sandbox.ca_bundle else {}),
    }


#: The Databricks account federation policy through which the sandbox trusts a broker as an
#: issuer (the federated exchange flow): issuer = the broker's URL, keys from its discovery.
BROKER_POLICY_ID = "mcp-broker"


def broker_trust_policy(sandbox: Sandbox, broker_url: str) -> dict[str, object]:
    """The admin-API body (``POST /_harness/tenants/databricks/policies``) that makes every
    workspace accept the broker's own assertions: ``aud`` a workspace URL, ``sub`` the
    Databricks user name (the user's email)."""
    template = reference_config_values(sandbox)["databricks_host_template"]
    return {
        "policy_id": BROKER_POLICY_ID,
        "oidc_policy": {
            "issuer": broker_url.rstrip("/"),
            "audiences": [template % name for name in defaults.WORKSPACES],
            "subject_claim": "sub",
        },
    }


def trust_broker(sandbox: Sandbox, broker_url: str) -> None:
    """Create :func:`broker_trust_policy` unless it exists (after every sandbox reset)."""
    from mocks.databricks.policies import PolicyError

    oidc = broker_trust_policy(sandbox, broker_url)["oidc_policy"]
    assert isinstance(oidc, dict)
    if any(p.policy_id == BROKER_POLICY_ID for p in sandbox.databricks.account_policies()):
        return
    try:
        sandbox.databricks.add_federation_policy(
            BROKER_POLICY_ID,
            issuer=oidc["issuer"],
            audiences=oidc["audiences"],
            subject_claim=oidc["subject_claim"],
        )
    except PolicyError as exc:  # e.g. an http issuer while the sandbox serves https
        logging.getLogger("harness").warning("cannot trust the broker as an issuer: %s", exc)


class ReferenceTarget:
    """The reference broker started in-process (optionally with a known defect).

    Scenarios may ask for other broker settings (``given: {broker: {...}}``):
    :meth:`configure` serves a broker built with them on the same URL, :meth:`restore`
    goes back to the defaults. The sandbox trusts the broker as a federated issuer from the
    start (:func:`trust_broker`), whichever flow it runs.
    """

    shares_clock = True
    can_configure = True

    def __init__(self, sandbox: Sandbox, defect: str | None = None, port: int = 0) -> None:
        from broker.config import BrokerConfig
        from broker.server import BrokerServer
        from broker.variants import DEFECTS

        if defect is not None and defect not in DEFECTS:
            raise TargetError(
                f"unknown reference broker defect {defect!r}; known: {', '.join(sorted(DEFECTS))}"
            )
        self.spec = "reference" if defect is None else f"reference:{defect}"
        values = reference_config_values(sandbox)
        config = BrokerConfig(
            okta_issuer=values["okta_issuer"],
            okta_client_id=values["okta_client_id"],
            okta_client_secret=values["okta_client_secret"],
            upstream_proxy=values["upstream_proxy"],
            upstream_ca_bundle=values.get("upstream_ca_bundle"),
            databricks_host_template=values["databricks_host_template"],
            snowflake_host_template=values["snowflake_host_template"],
            storage=":memory:",
            # the sandbox's Okta offers the groups scope: policies can read the groups claim
            okta_groups_scope=True,
        )
        self.sandbox = sandbox
        self.base_config = config
        self.settings: dict[str, object] = {}
        self.server = BrokerServer(config, clock=sandbox.clock.now, defect=defect, port=port)
        self.log = LogCapture()
        self._logger = logging.getLogger("broker")
        self._logger.addHandler(self.log)
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self.server.start()
        self.url = self.server.url
        trust_broker(sandbox, self.url)

    def reset(self) -> None:
        self.server.broker.reset()
        self.log.drain()
        trust_broker(self.sandbox, self.url)

    def configure(self, settings: dict[str, object]) -> None:
        """Serve a broker with ``settings`` (BrokerConfig fields) over the defaults; raises
        :class:`broker.config.ConfigError` for invalid ones."""
        import dataclasses

        if settings == self.settings:
            return
        config = dataclasses.replace(self.base_config, **settings)  # type: ignore[arg-type]
        self.server.reconfigure(config)
        self.settings = dict(settings)

    def restore(self) -> None:
        """Back to the default settings (after a scenario that configured others)."""
        self.configure({})

    def drain_log(self) -> list[str]:
        return self.log.drain()

    def audit_records(self) -> list[dict[str, Any]] | None:
        """The in-process broker's audit records, oldest first."""
        return self.server.broker.audit_records()

    def stop(self) -> None:
        self.server.stop()
        self._logger.removeHandler(self.log)
        self._logger.propagate = True


@dataclass
class UrlTarget:
    """A broker already running at ``url``; the harness only talks to it over HTTP.

    A broker that is an issuer itself (its ``/.well-known/openid-configuration`` names its
    URL as ``issuer``) is trusted through :func:`trust_broker` after every sandbox reset, as
    the reference broker is: the policy would otherwise vanish with the reset.
    """

    spec: str
    url: str
    shares_clock: bool = False
    can_configure: bool = False
    sandbox: Sandbox | None = None
    #: Whether the broker publishes issuer discovery for its URL (probed once).
    is_issuer: bool | None = None

    def reset(self) -> None:
        """Every scenario registers its own client; only the issuer trust is renewed."""
        if self.sandbox is None:
            return
        if self.is_issuer is None:
            self.is_issuer = _publishes_discovery(self.url)
        if self.is_issuer:
            trust_broker(self.sandbox, self.url)

    def configure(self, settings: dict[str, object]) -> None:
        """A broker in another process is configured by its owner (scenarios needing other
        settings are skipped, see :attr:`can_configure`)."""
        raise TargetError(f"broker {self.spec} cannot be reconfigured by the harness")

    def restore(self) -> None:
        """Nothing was changed."""

    def stop(self) -> None:
        """The user owns this broker's lifecycle."""

    def drain_log(self) -> list[str]:
        """A broker in another process keeps its own log."""
        return []

    def audit_records(self) -> list[dict[str, Any]] | None:
        """A broker in another process keeps its own audit log (scenarios SKIP: AUDIT-01)."""
        return None


def _publishes_discovery(url: str) -> bool:
    """Whether ``url`` serves OpenID discovery naming itself as issuer (a federated broker)."""
    try:
        response = httpx.get(
            f"{url}/.well-known/openid-configuration", timeout=5.0, trust_env=False
        )
        document = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(document, dict) and document.get("issuer") == url


#: Seconds a started (``cmd:``/``docker:``) broker may take to answer its health URL.
DEFAULT_START_TIMEOUT = 30.0


def make_target(
    spec: str,
    sandbox: Sandbox,
    *,
    health: str | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    restart: str = "scenario",
) -> Target:
    """The target ``--broker spec`` names, started and ready. ``health`` (a path or URL),
    ``start_timeout`` and ``restart`` (``scenario`` or ``run``: see
    :class:`harness.started_target.StartedTarget`) apply to the brokers the harness starts
    (``cmd:``, ``docker:``)."""
    kind, _, arg = spec.partition(":")
    if kind == "reference":
        return ReferenceTarget(sandbox, defect=arg or None)
    if kind == "url":
        if not arg.startswith(("http://", "https://")):
            raise TargetError(f"--broker url: needs an http(s) base URL, got {arg!r}")
        return UrlTarget(spec=spec, url=arg.rstrip("/"), sandbox=sandbox)
    if kind == "cmd":
        from harness.process_target import ProcessTarget

        return ProcessTarget(
            arg, sandbox, health=health, timeout=start_timeout, restart=restart
        ).start()
    if kind == "docker":
        from harness.docker_target import DockerTarget

        return DockerTarget(
            arg, sandbox, health=health, timeout=start_timeout, restart=restart
        ).start()
    raise TargetError(
        f"unknown --broker {spec!r}; use reference, reference:<defect>, url:<base>, "
        "cmd:<command> or docker:<image>"
    )
