"""Broker configuration: one validated, immutable dataclass.

Everything is checked at construction so a misconfigured broker fails at start with one clear
sentence instead of misbehaving on the first request (or, worse, building upstream URLs from an
attacker-controlled path segment through a sloppy host template).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from broker.errors import ConfigError
from broker.upstreams import (
    Upstream,
    check_host_template,
    default_upstreams,
    merge_upstreams,
)

__all__ = ["BrokerConfig", "ConfigError"]

DEFAULT_HOST_TEMPLATE = "https://%s.cloud.databricks.com"
DEFAULT_SEGMENT_PATTERN = r"^dbc-[a-z0-9-]+$"
DEFAULT_STORAGE = "broker.sqlite3"
DEFAULT_SNOWFLAKE_HOST_TEMPLATE = "https://%s.snowflakecomputing.com"
#: ``<org>-<account>`` as an account URL's first label (underscores become hyphens in hosts).
DEFAULT_SNOWFLAKE_ACCOUNT_PATTERN = r"^[a-z0-9]+-[a-z0-9-]+$"
DEFAULT_SNOWFLAKE_ROLE = "ANALYST"
EXCHANGE_FLOWS = ("brokered", "federated")


def _check_url(name: str, value: str, *, allow_path: bool = True) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment or "#" in value or "?" in value:
        raise ConfigError(f"{name} must not have a query or fragment, got {value!r}")
    if not allow_path and parts.path not in ("", "/"):
        raise ConfigError(f"{name} must not have a path, got {value!r}")


@dataclass(frozen=True)
class BrokerConfig:
    """Settings of the reference broker (see the module docstring for why it validates eagerly).

    ``databricks_host_template`` is a ``%``-format string with exactly one ``%s`` that receives
    the lower-cased, validated resource segment (``dbc-aaa`` → ``https://dbc-aaa.cloud…``).
    ``segment_pattern`` is matched case-insensitively with ``re.fullmatch``; segments must also
    be DNS labels (letters, digits, inner hyphens, at most 63 characters) whatever the pattern.
    ``reuse_margin``: a stored workspace token is served until it has this many seconds left.
    ``id_token_margin``: the Okta ID token is refreshed before an exchange when it has fewer
    seconds left, because Databricks derives the workspace token lifetime from it.
    ``refresh_token_ttl``: lifetime of the broker's own refresh tokens (not the Okta ones).
    ``exchange_flow``: what the broker exchanges at the workspace: ``"brokered"`` forwards the
    user's Okta ID token; ``"federated"`` mints the broker's own short-lived assertion (sub the
    user, ``act.sub`` the MCP client; :mod:`broker.issuer`), living
    ``federated_assertion_lifetime`` seconds, signed with a key rotated every
    ``federated_key_rotation`` seconds and published ``federated_key_publish_lead`` seconds
    before it signs.
    ``snowflake_host_template`` / ``snowflake_account_pattern``: the same rules for the
    ``/v1/snowflake/<account>/mcp`` resources. ``snowflake_role``: the role the broker asks
    Okta for (``session:role:<ROLE>``) at a Snowflake login and requires in the passed-through
    access token; one role for every account keeps the policy in one place (ANALYST, the
    least-privileged role the sandbox's SQL MCP server serves).
    """

    okta_issuer: str
    okta_client_id: str
    okta_client_secret: str = field(repr=False)
    upstream_proxy: str | None = None
    upstream_ca_bundle: str | None = None
    databricks_host_template: str = DEFAULT_HOST_TEMPLATE
    segment_pattern: str = DEFAULT_SEGMENT_PATTERN
    databricks_scope: str = "sql"
    storage: str = DEFAULT_STORAGE
    reuse_margin: float = 60.0
    id_token_margin: float = 60.0
    public_base_url: str | None = None
    refresh_token_ttl: float = 90 * 24 * 3600.0
    upstream_timeout: float = 10.0
    exchange_flow: str = "brokered"
    federated_assertion_lifetime: float = 300.0
    federated_key_rotation: float = 30 * 24 * 3600.0
    federated_key_publish_lead: float = 3600.0
    snowflake_host_template: str = DEFAULT_SNOWFLAKE_HOST_TEMPLATE
    snowflake_account_pattern: str = DEFAULT_SNOWFLAKE_ACCOUNT_PATTERN
    snowflake_role: str = DEFAULT_SNOWFLAKE_ROLE
    snowflake_mcp_path: str | None = None
    #: Overrides of the built-in upstreams and new ones (name → table of
    #: :class:`broker.upstreams.Upstream` fields); the result is :attr:`upstream_map`.
    upstreams: Mapping[str, Any] = field(default_factory=dict)
    #: Lifetime of the broker's own access tokens in gateway mode (audience the resource).
    gateway_token_lifetime: float = 300.0
    #: Rego policies (:mod:`broker.policy`): a file path each, or the source itself
    #: (``*_rego``, for scenarios); None is the shipped default.
    policy_inbound: str | None = None
    policy_outbound: str | None = None
    policy_inbound_rego: str | None = None
    policy_outbound_rego: str | None = None
    #: Ask Okta for the ``groups`` scope too (the ``groups`` claim the policies read); off by
    #: default because an Okta authorization server without that scope refuses the login.
    okta_groups_scope: bool = False
    #: JSON-lines audit log file (one record per decision), besides the SQLite audit table.
    audit_log: str | None = None

    def __post_init__(self) -> None:
        for name in ("okta_issuer", "okta_client_id", "okta_client_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name} is required")
        _check_url("okta_issuer", self.okta_issuer)
        if self.okta_issuer.endswith("/"):
            raise ConfigError(
                f"okta_issuer must be the exact issuer, without a trailing slash: "
                f"{self.okta_issuer!r}"
            )
        if self.upstream_proxy is not None:
            _check_url("upstream_proxy", self.upstream_proxy)
        if self.upstream_ca_bundle is not None and not os.path.isfile(self.upstream_ca_bundle):
            raise ConfigError(
                f"upstream_ca_bundle is not a readable file: {self.upstream_ca_bundle!r}"
            )
        check_host_template(
            "databricks_host_template", self.databricks_host_template, "dbc-example"
        )
        check_host_template("snowflake_host_template", self.snowflake_host_template, "org-example")
        for name in ("segment_pattern", "snowflake_account_pattern"):
            try:
                re.compile(getattr(self, name), re.IGNORECASE)
            except (re.error, OverflowError, RecursionError, TypeError) as exc:
                raise ConfigError(f"{name} is not a valid regular expression: {exc}") from exc
        if not re.fullmatch(r"[A-Za-z0-9_$]{1,255}", self.snowflake_role or ""):
            raise ConfigError(f"snowflake_role must be a role name, got {self.snowflake_role!r}")
        if not re.fullmatch(r"[A-Za-z0-9:._-]+", self.databricks_scope or ""):
            raise ConfigError(
                f"databricks_scope must be one scope token, got {self.databricks_scope!r}"
            )
        if not isinstance(self.storage, str) or not self.storage:
            raise ConfigError("storage must be a SQLite file path or ':memory:'")
        for name in (
            "reuse_margin",
            "id_token_margin",
            "refresh_token_ttl",
            "upstream_timeout",
            "gateway_token_lifetime",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number of seconds, got {value!r}")
        if self.upstream_timeout == 0 or self.refresh_token_ttl == 0:
            raise ConfigError("upstream_timeout and refresh_token_ttl must be positive")
        if not 1 <= self.gateway_token_lifetime <= 24 * 3600:
            raise ConfigError(
                "gateway_token_lifetime must be between 1 second and a day, "
                f"got {self.gateway_token_lifetime!r}"
            )
        if not isinstance(self.okta_groups_scope, bool):
            raise ConfigError(
                f"okta_groups_scope must be true or false, got {self.okta_groups_scope!r}"
            )
        self._check_federation()
        self._check_files()
        object.__setattr__(self, "_upstream_map", self._build_upstreams())
        if self.public_base_url is not None:
            _check_url("public_base_url", self.public_base_url)
            # The base URL is the issuer (RFC 8414 §2): store it without a trailing slash so
            # string comparisons of issuer and resource URLs are exact.
            object.__setattr__(self, "public_base_url", self.public_base_url.rstrip("/"))

    def _check_federation(self) -> None:
        if self.exchange_flow not in EXCHANGE_FLOWS:
            raise ConfigError(
                f"exchange_flow must be one of {', '.join(EXCHANGE_FLOWS)}, "
                f"got {self.exchange_flow!r}"
            )
        for name in (
            "federated_assertion_lifetime",
            "federated_key_rotation",
            "federated_key_publish_lead",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number of seconds, got {value!r}")
        if not 1 <= self.federated_assertion_lifetime <= 3600:
            # An assertion is a bearer credential for the user at the platform: it must be
            # short-lived (minutes), and at least a second so it can be exchanged at all.
            raise ConfigError(
                "federated_assertion_lifetime must be between 1 and 3600 seconds, "
                f"got {self.federated_assertion_lifetime!r}"
            )
        if self.federated_key_publish_lead >= self.federated_key_rotation:
            raise ConfigError(
                "federated_key_publish_lead must be shorter than federated_key_rotation"
            )

    def _check_files(self) -> None:
        for name in ("policy_inbound", "policy_outbound"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ConfigError(f"{name} is not a readable file: {path!r}")
            if path is not None and getattr(self, f"{name}_rego") is not None:
                raise ConfigError(f"give {name} or {name}_rego, not both")
        if self.audit_log is not None:
            folder = os.path.dirname(os.path.abspath(self.audit_log))
            if not os.path.isdir(folder):
                raise ConfigError(f"audit_log's directory does not exist: {folder!r}")

    def _build_upstreams(self) -> dict[str, Upstream]:
        builtin = default_upstreams(
            databricks_host_template=self.databricks_host_template,
            databricks_segment_pattern=self.segment_pattern,
            databricks_scope=self.databricks_scope,
            databricks_flow=self.exchange_flow,
            snowflake_host_template=self.snowflake_host_template,
            snowflake_account_pattern=self.snowflake_account_pattern,
            snowflake_role=self.snowflake_role,
            snowflake_mcp_path=self.snowflake_mcp_path,
        )
        upstreams = merge_upstreams(builtin, self.upstreams)
        if not upstreams:
            raise ConfigError("upstreams: at least one upstream must be enabled")
        return upstreams

    @property
    def upstream_map(self) -> dict[str, Upstream]:
        """Every enabled upstream by name (built-ins with the configured overrides)."""
        return self._upstream_map  # type: ignore[attr-defined]

    @property
    def segment_regex(self) -> re.Pattern[str]:
        """The compiled segment pattern (case-insensitive)."""
        return re.compile(self.segment_pattern, re.IGNORECASE)

    @property
    def snowflake_account_regex(self) -> re.Pattern[str]:
        """The compiled Snowflake account pattern (case-insensitive)."""
        return re.compile(self.snowflake_account_pattern, re.IGNORECASE)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, config_file: str | None = None
    ) -> BrokerConfig:
        """Build a config from ``BROKER_*`` variables, falling back to the harness's ``HARNESS_*``.

        ``BROKER_X`` wins over ``HARNESS_X`` so a user can override one value of an env file
        printed by ``mcp-harness env``. Numbers that do not parse raise :class:`ConfigError`.
        ``BROKER_CONFIG`` (or ``config_file``) names a TOML/YAML file
        (:mod:`broker.config_file`) whose settings come first; variables override them, so
        secrets can stay out of the file.
        """
        env = os.environ if environ is None else environ
        path = config_file or env.get("BROKER_CONFIG")
        file_settings = _file_settings(path)

        def get(name: str, *aliases: str) -> str | None:
            for key in (f"BROKER_{name}", *aliases, f"HARNESS_{name}"):
                value = env.get(key)
                if value:
                    return value
            return None

        kwargs: dict[str, object] = {}
        for attr, name, aliases in (
            ("okta_issuer", "OKTA_ISSUER", ()),
            ("okta_client_id", "OKTA_CLIENT_ID", ()),
            ("okta_client_secret", "OKTA_CLIENT_SECRET", ()),
            ("upstream_proxy", "UPSTREAM_PROXY", ("BROKER_PROXY", "HARNESS_PROXY")),
            ("upstream_ca_bundle", "UPSTREAM_CA_BUNDLE", ("HARNESS_CA_BUNDLE",)),
            ("databricks_host_template", "DATABRICKS_HOST_TEMPLATE", ()),
            ("segment_pattern", "SEGMENT_PATTERN", ()),
            ("databricks_scope", "DATABRICKS_SCOPE", ()),
            ("storage", "STORAGE", ()),
            ("public_base_url", "PUBLIC_BASE_URL", ()),
            ("exchange_flow", "EXCHANGE_FLOW", ()),
            ("snowflake_host_template", "SNOWFLAKE_HOST_TEMPLATE", ()),
            ("snowflake_account_pattern", "SNOWFLAKE_ACCOUNT_PATTERN", ()),
            ("snowflake_role", "SNOWFLAKE_ROLE", ()),
            ("snowflake_mcp_path", "SNOWFLAKE_MCP_PATH", ()),
            ("policy_inbound", "POLICY_INBOUND", ()),
            ("policy_outbound", "POLICY_OUTBOUND", ()),
            ("audit_log", "AUDIT_LOG", ()),
        ):
            value = get(name, *aliases)
            if value is not None:
                kwargs[attr] = value
        groups = get("OKTA_GROUPS_SCOPE")
        if groups is not None:
            if groups.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"BROKER_OKTA_GROUPS_SCOPE must be true or false, got {groups!r}")
            kwargs["okta_groups_scope"] = groups.lower() in ("true", "1", "yes")
        kwargs = {**file_settings, **kwargs}
        for attr, variable in (
            ("databricks_host_template", "HARNESS_DATABRICKS_WORKSPACES"),
            ("snowflake_host_template", "HARNESS_SNOWFLAKE_ACCOUNTS"),
        ):
            if attr not in kwargs and env.get(variable):
                kwargs[attr] = _template_from_workspaces(env[variable], variable)
        for attr, name in (
            ("reuse_margin", "REUSE_MARGIN"),
            ("id_token_margin", "ID_TOKEN_MARGIN"),
            ("refresh_token_ttl", "REFRESH_TOKEN_TTL"),
            ("upstream_timeout", "UPSTREAM_TIMEOUT"),
            ("federated_assertion_lifetime", "FEDERATED_ASSERTION_LIFETIME"),
            ("federated_key_rotation", "FEDERATED_KEY_ROTATION"),
            ("federated_key_publish_lead", "FEDERATED_KEY_PUBLISH_LEAD"),
            ("gateway_token_lifetime", "GATEWAY_TOKEN_LIFETIME"),
        ):
            raw = get(name)
            if raw is not None:
                try:
                    kwargs[attr] = float(raw)
                except ValueError:
                    raise ConfigError(f"BROKER_{name} must be a number, got {raw!r}") from None
        missing = [
            f"BROKER_{n.upper()} (or HARNESS_{n.upper()})"
            for n in ("okta_issuer", "okta_client_id", "okta_client_secret")
            if n not in kwargs
        ]
        if missing:
            where = f"{path}: " if path else ""
            raise ConfigError(f"{where}missing setting(s): " + ", ".join(missing))
        if path:
            try:
                return cls(**kwargs)  # type: ignore[arg-type]
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        return cls(**kwargs)  # type: ignore[arg-type]


def _file_settings(path: str | None) -> dict[str, object]:
    """The settings of the configuration file at ``path`` (none without one)."""
    if not path:
        return {}
    from broker.config_file import load

    return load(path)


def _template_from_workspaces(value: str, variable: str = "HARNESS_DATABRICKS_WORKSPACES") -> str:
    """``http://dbc-aaa.cloud.databricks.test,…`` → ``http://%s.cloud.databricks.test``.

    The harness env file lists workspace URLs rather than a template; the first label of the
    host is the workspace segment.
    """
    first = value.split(",")[0].strip()
    parts = urlsplit(first)
    label, dot, rest = (parts.hostname or "").partition(".")
    if parts.scheme not in ("http", "https") or not label or not dot:
        raise ConfigError(f"{variable} has no usable URL: {first!r}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://%s.{rest}{port}"
