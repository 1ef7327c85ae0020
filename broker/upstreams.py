"""Upstreams: the MCP servers behind the broker, each a configured resource family.

An upstream names everything the broker needs to serve ``<broker>/v1/<name>/<segment>/mcp``:
the provider (how tokens are obtained: Databricks token exchange, Snowflake session
passthrough), the flow, how a path segment becomes an upstream host (``segment_pattern`` then
``host_template``), the scope asked of the platform, the broker-side scopes a client token must
hold, the upstream MCP endpoint (gateway mode), and the Snowflake roles. Each upstream's tokens
live under their own isolation key ``<name>-<host>``: a workspace token of the SQL family is
never served for Genie (other scope) nor for another workspace (other host).

Built-in upstreams (:func:`default_upstreams`) cover the Databricks managed MCP families (SQL,
Genie, vector search, UC functions) and Snowflake accounts. A configuration file
(:mod:`broker.config_file`) may override any field of a built-in and add new upstreams; every
value is validated at start-up so a typo fails with one sentence naming the setting, not on the
first request with an attacker-chosen segment in a host name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from broker.errors import ConfigError

PROVIDERS = ("databricks", "snowflake")
#: The flows each provider supports: Databricks only takes exchanged tokens; Snowflake External
#: OAuth takes the IdP's access token as is (session passthrough).
FLOWS = {"databricks": ("brokered", "federated"), "snowflake": ("passthrough",)}
_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
_SCOPE = re.compile(r"[A-Za-z0-9:._-]+")
_ROLE = re.compile(r"[A-Za-z0-9_$]{1,255}")
_TOOL = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
DATABRICKS_SEGMENT_PATTERN = r"^dbc-[a-z0-9-]+$"
SNOWFLAKE_ACCOUNT_PATTERN = r"^[a-z0-9]+-[a-z0-9-]+$"


@dataclass(frozen=True)
class Upstream:
    """One resource family (see the module docstring).

    ``scope``: what the broker asks the platform for in the exchange (Databricks: ``sql``,
    ``genie``, ``vector-search``, ``unity-catalog``). ``scopes``: the broker scopes every
    request to this resource needs (default ``(scope,)``); ``tool_scopes`` adds scopes per
    tool (gateway mode answers 403 ``insufficient_scope`` naming every missing one).
    ``mcp_path``: the upstream MCP endpoint on the host, needed for ``gateway``.
    ``role`` / ``roles``: the Snowflake role a token carries by default and the roles an
    outbound policy may choose instead.
    """

    name: str
    provider: str
    flow: str
    host_template: str
    segment_pattern: str
    scope: str = "sql"
    scopes: tuple[str, ...] = ()
    tool_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mcp_path: str | None = None
    gateway: bool = False
    role: str | None = None
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"upstreams.{self.name}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"upstream name {self.name!r} must be lower-case letters, digits and hyphens "
                "(it is a URL path segment and a storage key prefix)"
            )
        if self.provider not in PROVIDERS:
            raise ConfigError(
                f"{where}.provider must be one of {', '.join(PROVIDERS)}, got {self.provider!r}"
            )
        if self.flow not in FLOWS[self.provider]:
            raise ConfigError(
                f"{where}.flow must be one of {', '.join(FLOWS[self.provider])} for "
                f"{self.provider}, got {self.flow!r}"
            )
        check_host_template(f"{where}.host_template", self.host_template)
        try:
            # Compiled as :attr:`segment_regex` compiles it; ``re`` raises more than re.error
            # for some patterns (``a{4294967296}``: OverflowError; deep nesting: RecursionError).
            re.compile(self.segment_pattern, re.IGNORECASE)
        except (re.error, TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise ConfigError(
                f"{where}.segment_pattern is not a valid regular expression: {exc}"
            ) from exc
        if not isinstance(self.scope, str) or not _SCOPE.fullmatch(self.scope):
            raise ConfigError(f"{where}.scope must be one scope token, got {self.scope!r}")
        scopes = _tuple(self.scopes, f"{where}.scopes") or (self.scope,)
        for scope in scopes:
            if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
                raise ConfigError(f"{where}.scopes has an invalid scope token {scope!r}")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "tool_scopes", _tool_scopes(self.tool_scopes, where))
        if self.mcp_path is not None and (
            not isinstance(self.mcp_path, str)
            or not self.mcp_path.startswith("/")
            or any(c in self.mcp_path for c in "?#% ")
        ):
            raise ConfigError(f"{where}.mcp_path must be an absolute path, got {self.mcp_path!r}")
        if not isinstance(self.gateway, bool):
            raise ConfigError(f"{where}.gateway must be true or false, got {self.gateway!r}")
        if self.gateway and self.mcp_path is None:
            raise ConfigError(f"{where}.gateway needs mcp_path (the upstream MCP endpoint)")
        self._check_roles(where)

    def _check_roles(self, where: str) -> None:
        if self.provider != "snowflake":
            if self.role is not None or self.roles:
                raise ConfigError(f"{where}: role and roles are Snowflake settings")
            return
        role = self.role or "ANALYST"
        roles = _tuple(self.roles, f"{where}.roles") or (role,)
        for value in (role, *roles):
            if not isinstance(value, str) or not _ROLE.fullmatch(value):
                raise ConfigError(f"{where}: {value!r} is not a Snowflake role name")
        if role not in roles:
            raise ConfigError(f"{where}.roles must include the default role {role!r}")
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "roles", roles)

    @property
    def path_prefix(self) -> str:
        """``/v1/<name>/``: resource URLs are ``<broker>/v1/<name>/<segment>/mcp``."""
        return f"/v1/{self.name}/"

    @property
    def segment_regex(self) -> re.Pattern[str]:
        return re.compile(self.segment_pattern, re.IGNORECASE)

    @property
    def offered_scopes(self) -> tuple[str, ...]:
        """Every broker scope a client may ask for at this resource (base and tool scopes)."""
        extra = [s for needed in self.tool_scopes.values() for s in needed]
        return tuple(dict.fromkeys((*self.scopes, *extra)))

    def required_scopes(self, tool: str | None) -> tuple[str, ...]:
        """What a call needs: the base scopes plus the tool's (MCP scope challenges, MC-06)."""
        extra = self.tool_scopes.get(tool, ()) if tool else ()
        return tuple(dict.fromkeys((*self.scopes, *extra)))

    def isolation_key(self, host: str) -> str:
        """Storage key of a user's token for one host of this family (BR-03)."""
        return f"{self.name}-{host}"


def _tuple(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    # Lists only: a string would become its characters and a table its keys, silently.
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list, got {value!r}")
    return tuple(value)


def _tool_scopes(value: object, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.tool_scopes must be a table of tool = [scopes], got {value!r}")
    result: dict[str, tuple[str, ...]] = {}
    for tool, scopes in value.items():
        if not isinstance(tool, str) or not _TOOL.fullmatch(tool):
            raise ConfigError(f"{where}.tool_scopes has an invalid tool name {tool!r}")
        items = _tuple(scopes, f"{where}.tool_scopes.{tool}")
        for scope in items:
            if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
                raise ConfigError(f"{where}.tool_scopes.{tool} has an invalid scope {scope!r}")
        result[tool] = items
    return result


def check_host_template(name: str, template: object, example_label: str = "seg-example") -> None:
    """A ``%``-template with one ``%s`` that lands in the host name (never the path)."""
    if not isinstance(template, str) or template.count("%s") != 1 or template.count("%") != 1:
        raise ConfigError(f"{name} must contain exactly one %s and no other %, got {template!r}")
    example = template % example_label
    try:
        # urlsplit raises ValueError on a broken IPv6 bracket; .port on a bad port: checked
        # here so such a template fails at start-up, not on the first request.
        parts = urlsplit(example)
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL ({exc}), got {template!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {template!r}")
    if parts.query or parts.fragment or "?" in example or "#" in example:
        raise ConfigError(f"{name} must not have a query or fragment, got {template!r}")
    if parts.path not in ("", "/"):
        raise ConfigError(f"{name} must not have a path, got {template!r}")
    if example_label not in (parts.hostname or ""):
        raise ConfigError(f"{name} must put the segment in the host name, got {template!r}")


#: Databricks managed MCP families: (name, exchange scope, upstream MCP path). Vector search
#: and functions servers are per schema; ``main.default`` is the workspace default schema.
DATABRICKS_FAMILIES = (
    ("databricks-sql", "sql", "/api/2.0/mcp/sql"),
    ("databricks-genie", "genie", "/api/2.0/mcp/genie"),
    ("databricks-vector-search", "vector-search", "/api/2.0/mcp/vector-search/main/default"),
    ("databricks-functions", "unity-catalog", "/api/2.0/mcp/functions/main/default"),
)


def default_upstreams(
    *,
    databricks_host_template: str,
    databricks_segment_pattern: str,
    databricks_scope: str,
    databricks_flow: str,
    snowflake_host_template: str,
    snowflake_account_pattern: str,
    snowflake_role: str,
    snowflake_mcp_path: str | None = None,
) -> dict[str, Upstream]:
    """The built-in upstreams, from the broker's flat settings (name → upstream)."""
    result: dict[str, Upstream] = {}
    for name, scope, path in DATABRICKS_FAMILIES:
        result[name] = Upstream(
            name=name,
            provider="databricks",
            flow=databricks_flow,
            host_template=databricks_host_template,
            segment_pattern=databricks_segment_pattern,
            scope=databricks_scope if name == "databricks-sql" else scope,
            mcp_path=path,
        )
    result["snowflake"] = Upstream(
        name="snowflake",
        provider="snowflake",
        flow="passthrough",
        host_template=snowflake_host_template,
        segment_pattern=snowflake_account_pattern,
        # The Snowflake MCP server is a SQL server: the broker scope is ``sql`` as for
        # Databricks SQL (no exchange scope: the role rides in the Okta token).
        scope="sql",
        mcp_path=snowflake_mcp_path,
        role=snowflake_role,
    )
    return result


UPSTREAM_FIELDS = {f.name for f in fields(Upstream)} - {"name"}


def merge_upstreams(
    base: Mapping[str, Upstream], overrides: Mapping[str, Any], *, where: str = "upstreams"
) -> dict[str, Upstream]:
    """``base`` with ``overrides`` (name → table of fields) applied; new names are new upstreams.

    A new upstream takes its defaults from the built-in of its provider (``databricks-sql`` or
    ``snowflake``), so a file only states what differs. Unknown keys are errors: a typo such as
    ``segment_patern`` must not silently leave the default pattern in force.
    """
    result = dict(base)
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where} must be a table of upstream name = settings")
    for name, settings in overrides.items():
        if settings is None:  # ``name = false``-style removal is spelled ``enabled = false``
            settings = {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}.{name} must be a table of settings, got {settings!r}")
        settings = dict(settings)
        enabled = settings.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}.{name}.enabled must be true or false")
        # str(): YAML keys need not be strings, and sorting 1 with "x" raises TypeError.
        unknown = sorted(str(k) for k in set(settings) - UPSTREAM_FIELDS)
        if unknown:
            raise ConfigError(
                f"{where}.{name}: unknown setting(s) {', '.join(unknown)}; known: "
                + ", ".join(sorted(UPSTREAM_FIELDS | {"enabled"}))
            )
        if not enabled:
            result.pop(str(name), None)
            continue
        template = result.get(str(name))
        if template is None:
            provider = settings.get("provider", "databricks")
            seed = "snowflake" if provider == "snowflake" else "databricks-sql"
            if seed not in base:
                raise ConfigError(f"{where}.{name}: no built-in {provider} upstream to extend")
            template = replace(base[seed], name=str(name), mcp_path=None, gateway=False)
            if provider == "snowflake":
                # The built-in's role (``snowflake_role``) is a default to inherit; its roles
                # are derived again from whatever role the new upstream ends up with.
                template = replace(template, roles=())
        for key in ("scopes", "roles"):
            if key in settings and isinstance(settings[key], list):
                settings[key] = tuple(settings[key])
        if "scope" in settings and "scopes" not in settings:
            settings["scopes"] = ()  # derived again from the new scope
        if settings.get("provider", template.provider) != "snowflake":
            # The Snowflake default role a built-in carries is no setting of the user's: it
            # must not make ``provider = "databricks"`` fail with "role is a Snowflake setting".
            settings.setdefault("role", None)
            settings.setdefault("roles", ())
        if "role" in settings and "roles" not in settings:
            settings["roles"] = ()
        result[str(name)] = replace(template, name=str(name), **settings)
    return result
