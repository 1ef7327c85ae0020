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
from urllib.parse import urlsplit

DEFAULT_HOST_TEMPLATE = "https://%s.cloud.databricks.com"
DEFAULT_SEGMENT_PATTERN = r"^dbc-[a-z0-9-]+$"
DEFAULT_STORAGE = "broker.sqlite3"
DEFAULT_SNOWFLAKE_HOST_TEMPLATE = "https://%s.snowflakecomputing.com"
#: ``<org>-<account>`` as an account URL's first label (underscores become hyphens in hosts).
DEFAULT_SNOWFLAKE_ACCOUNT_PATTERN = r"^[a-z0-9]+-[a-z0-9-]+$"
DEFAULT_SNOWFLAKE_ROLE = "ANALYST"
EXCHANGE_FLOWS = ("brokered", "federated")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the setting and the reason."""


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
        _check_host_template(
            "databricks_host_template", self.databricks_host_template, "dbc-example"
        )
        _check_host_template("snowflake_host_template", self.snowflake_host_template, "org-example")
        for name in ("segment_pattern", "snowflake_account_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ConfigError(f"{name} is not a valid regular expression: {exc}") from exc
        if not re.fullmatch(r"[A-Za-z0-9_$]{1,255}", self.snowflake_role or ""):
            raise ConfigError(f"snowflake_role must be a role name, got {self.snowflake_role!r}")
        if not re.fullmatch(r"[A-Za-z0-9:._-]+", self.databricks_scope or ""):
            raise ConfigError(
                f"databricks_scope must be one scope token, got {self.databricks_scope!r}"
            )
        if not isinstance(self.storage, str) or not self.storage:
            raise ConfigError("storage must be a SQLite file path or ':memory:'")
        for name in ("reuse_margin", "id_token_margin", "refresh_token_ttl", "upstream_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number of seconds, got {value!r}")
        if self.upstream_timeout == 0 or self.refresh_token_ttl == 0:
            raise ConfigError("upstream_timeout and refresh_token_ttl must be positive")
        self._check_federation()
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

    @property
    def segment_regex(self) -> re.Pattern[str]:
        """The compiled segment pattern (case-insensitive)."""
        return re.compile(self.segment_pattern, re.IGNORECASE)

    @property
    def snowflake_account_regex(self) -> re.Pattern[str]:
        """The compiled Snowflake account pattern (case-insensitive)."""
        return re.compile(self.snowflake_account_pattern, re.IGNORECASE)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BrokerConfig:
        """Build a config from ``BROKER_*`` variables, falling back to the harness's ``HARNESS_*``.

        ``BROKER_X`` wins over ``HARNESS_X`` so a user can override one value of an env file
        printed by ``mcp-harness env``. Numbers that do not parse raise :class:`ConfigError`.
        """
        env = os.environ if environ is None else environ

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
        ):
            value = get(name, *aliases)
            if value is not None:
                kwargs[attr] = value
        if "databricks_host_template" not in kwargs and env.get("HARNESS_DATABRICKS_WORKSPACES"):
            kwargs["databricks_host_template"] = _template_from_workspaces(
                env["HARNESS_DATABRICKS_WORKSPACES"]
            )
        for attr, name in (
            ("reuse_margin", "REUSE_MARGIN"),
            ("id_token_margin", "ID_TOKEN_MARGIN"),
            ("refresh_token_ttl", "REFRESH_TOKEN_TTL"),
            ("upstream_timeout", "UPSTREAM_TIMEOUT"),
            ("federated_assertion_lifetime", "FEDERATED_ASSERTION_LIFETIME"),
            ("federated_key_rotation", "FEDERATED_KEY_ROTATION"),
            ("federated_key_publish_lead", "FEDERATED_KEY_PUBLISH_LEAD"),
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
            raise ConfigError("missing setting(s): " + ", ".join(missing))
        return cls(**kwargs)  # type: ignore[arg-type]


def _check_host_template(name: str, template: object, example_label: str) -> None:
    """A ``%``-template with one ``%s`` that lands in the host name (never the path)."""
    if not isinstance(template, str) or template.count("%s") != 1 or template.count("%") != 1:
        raise ConfigError(f"{name} must contain exactly one %s and no other %, got {template!r}")
    example = template % example_label
    _check_url(name, example, allow_path=False)
    host = urlsplit(example).hostname or ""
    if example_label not in host:
        raise ConfigError(f"{name} must put the segment in the host name, got {template!r}")


def _template_from_workspaces(value: str) -> str:
    """``http://dbc-aaa.cloud.databricks.test,…`` → ``http://%s.cloud.databricks.test``.

    The harness env file lists workspace URLs rather than a template; the first label of the
    host is the workspace segment.
    """
    first = value.split(",")[0].strip()
    parts = urlsplit(first)
    label, dot, rest = (parts.hostname or "").partition(".")
    if parts.scheme not in ("http", "https") or not label or not dot:
        raise ConfigError(f"HARNESS_DATABRICKS_WORKSPACES has no usable workspace URL: {first!r}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://%s.{rest}{port}"
