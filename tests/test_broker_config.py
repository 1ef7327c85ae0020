"""The broker's upstream configuration: the TOML/YAML loader, the validation rules and the CLI.

Every rule is checked by its error message, because the message is the product here: a
misconfigured broker must fail at start-up with one sentence naming the file, the setting and
the reason (never a traceback, never a silently ignored typo). The examples shipped in
``examples/`` are loaded too, so they cannot rot.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from broker.app import Broker
from broker.config import BrokerConfig
from broker.errors import ConfigError, OAuthError
from broker.resources import workspace_for
from broker.upstreams import UPSTREAM_FIELDS, Upstream, default_upstreams, merge_upstreams

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BASE = "http://broker.example"
OKTA = {
    "BROKER_OKTA_ISSUER": "http://okta.invalid/oauth2/default",
    "BROKER_OKTA_CLIENT_ID": "client",
    "BROKER_OKTA_CLIENT_SECRET": "env-secret",
}
UPSTREAM_KEYS = (
    "enabled, flow, gateway, host_template, mcp_path, provider, role, roles, scope, scopes, "
    "segment_pattern, tool_scopes"
)


def config(**upstreams: Any) -> BrokerConfig:
    """A config with these upstream tables (the file's ``[upstreams.<name>]``)."""
    return BrokerConfig(
        okta_issuer=OKTA["BROKER_OKTA_ISSUER"],
        okta_client_id="client",
        okta_client_secret="secret",
        storage=":memory:",
        upstreams=upstreams,
    )


def config_error(**upstreams: Any) -> str:
    """The message of the ConfigError these upstream tables raise."""
    with pytest.raises(ConfigError) as info:
        config(**upstreams)
    return str(info.value)


def write(folder: Path, name: str, text: str | bytes) -> str:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def from_file(path: str, **env: str) -> BrokerConfig:
    return BrokerConfig.from_env({**OKTA, **env}, config_file=path)


def file_error(path: str, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        from_file(path, **env)
    return str(info.value)


@pytest.fixture
def broker() -> Iterator[Any]:
    """Build Brokers from configs and close them after the test."""
    made: list[Broker] = []

    def build(cfg: BrokerConfig) -> Broker:
        made.append(Broker(cfg))
        return made[-1]

    yield build
    for b in made:
        b.close()


# -- the loader ----------------------------------------------------------------------------
def test_toml_and_yaml_load_the_same_settings(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        "b.toml",
        'storage = ":memory:"\nreuse_margin = 30\n\n'
        '[upstreams.databricks-sql]\nflow = "federated"\n',
    )
    yaml = write(
        tmp_path,
        "b.yml",
        'storage: ":memory:"\nreuse_margin: 30\n'
        "upstreams:\n  databricks-sql:\n    flow: federated\n",
    )
    a, b = from_file(toml), from_file(yaml)
    assert a == b
    assert a.reuse_margin == 30 and a.upstream_map["databricks-sql"].flow == "federated"
    # The rest of the family keeps the global exchange flow.
    assert a.upstream_map["databricks-genie"].flow == "brokered"


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    cfg = from_file(write(tmp_path, "empty.yaml", "# nothing yet\n"))
    assert set(cfg.upstream_map) == {
        "databricks-sql",
        "databricks-genie",
        "databricks-vector-search",
        "databricks-functions",
        "snowflake",
    }


def test_unknown_top_level_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "b.toml", 'segment_patern = "^dbc-x$"\n')
    assert file_error(path) == (
        f"{path}: unknown setting(s) segment_patern (did you mean segment_pattern?)"
    )
    path = write(tmp_path, "c.toml", "zzz = 1\n")
    message = file_error(path)
    assert message.startswith(f"{path}: unknown setting(s) zzz; known: audit_log, ")
    assert "segment_pattern" in message and "upstreams" in message


def test_unknown_upstream_key_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "b.toml", '[upstreams.databricks-sql]\nsegment_patern = "x"\n')
    assert file_error(path) == (
        f"{path}: upstreams.databricks-sql: unknown setting(s) segment_patern; "
        f"known: {UPSTREAM_KEYS}"
    )
    assert UPSTREAM_KEYS.split(", ") == sorted(UPSTREAM_FIELDS | {"enabled"})


def test_unknown_yaml_keys_need_not_be_strings() -> None:
    # YAML allows ``1: x``; the message must still be a ConfigError, not a TypeError from
    # sorting 1 with "b".
    message = config_error(**{"databricks-sql": {1: "x", "b": "y"}})
    assert "unknown setting(s) 1, b; known:" in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("b.toml", b'x = "\xff"\n', "{path}: the configuration file is not UTF-8"),
        ("b.toml", b"x = [\n", "{path}: invalid TOML: "),
        ("b.yaml", b"a: [\n", "{path}: invalid YAML at line 2: "),
        ("b.yaml", b"- a\n- b\n", "{path}: the configuration must be a table of settings"),
        ("b.json", b"{}", "{path}: the configuration file must end in .toml, .yaml or .yml"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = write(tmp_path, name, content)
    assert file_error(path).startswith(expected.format(path=path))


def test_missing_file() -> None:
    assert file_error("/nonexistent/broker.toml") == (
        "cannot read the configuration file '/nonexistent/broker.toml': No such file or directory"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("storage = 5", "storage must be a string, got a number"),
        ("reuse_margin = '60'", "reuse_margin must be a number (seconds), got a string"),
        ("reuse_margin = true", "reuse_margin must be a number (seconds), got true/false"),
        ("upstream_proxy = ['a']", "upstream_proxy must be a string, got a list"),
        ("upstreams = 'x'", "upstreams must be a table, got a string"),
        ("audit_log = 2024-01-01", "audit_log must be a string, got a date/time"),
    ],
)
def test_values_of_the_wrong_type(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, "b.toml", line + "\n")
    assert file_error(path) == f"{path}: {expected}"


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "b.toml", "okta_client_secret = 123456789\n")
    message = file_error(path)
    assert message == f"{path}: okta_client_secret must be a string, got a number"
    assert "123456789" not in message


def test_yaml_null_means_the_default_for_optional_settings(tmp_path: Path) -> None:
    cfg = from_file(write(tmp_path, "b.yaml", "upstream_proxy:\npolicy_inbound: null\n"))
    assert cfg.upstream_proxy is None and cfg.policy_inbound is None
    path = write(tmp_path, "c.yaml", "storage:\n")
    assert file_error(path) == f"{path}: storage must be a string, got nothing (null)"


def test_the_file_path_appears_in_value_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "b.toml", 'okta_issuer = "not a url"\n')
    # The file's issuer is used only when no variable gives one.
    env = {k: v for k, v in OKTA.items() if k != "BROKER_OKTA_ISSUER"}
    with pytest.raises(ConfigError) as info:
        BrokerConfig.from_env(env, config_file=path)
    assert str(info.value) == (
        f"{path}: okta_issuer must be an absolute http(s) URL, got 'not a url'"
    )
    path = write(tmp_path, "c.toml", '[upstreams.databricks-sql]\nflow = "passthrough"\n')
    assert file_error(path).startswith(f"{path}: upstreams.databricks-sql.flow ")


def test_broker_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "b.toml", 'databricks_scope = "all-apis"\n')
    cfg = BrokerConfig.from_env({**OKTA, "BROKER_CONFIG": path})
    assert cfg.upstream_map["databricks-sql"].scope == "all-apis"


# -- precedence: environment over file -----------------------------------------------------
def test_env_overrides_the_file_and_secrets_come_from_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.toml",
        'okta_client_id = "file-client"\nstorage = "file.sqlite3"\nreuse_margin = 10\n'
        'okta_issuer = "http://file.invalid/oauth2/default"\n',
    )
    env = {
        "BROKER_OKTA_CLIENT_SECRET": "env-secret",
        "BROKER_OKTA_CLIENT_ID": "env-client",
        "HARNESS_REUSE_MARGIN": "20",
    }
    cfg = BrokerConfig.from_env(env, config_file=path)
    assert cfg.okta_client_id == "env-client"  # variable beats file
    assert cfg.okta_client_secret == "env-secret"  # only in the environment
    assert cfg.reuse_margin == 20.0  # HARNESS_* also beats the file
    assert cfg.storage == "file.sqlite3"  # the file beats the default
    assert cfg.okta_issuer == "http://file.invalid/oauth2/default"
    assert "env-secret" not in repr(cfg)


def test_harness_snowflake_accounts_derive_the_snowflake_template(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.toml",
        '[upstreams.snowflake-reporting]\nprovider = "snowflake"\nrole = "REPORTING"\n',
    )
    accounts = "http://myorg-acct1.snowflakecomputing.test:8080,http://myorg-acct2.x.test"
    cfg = from_file(path, HARNESS_SNOWFLAKE_ACCOUNTS=accounts)
    template = "http://%s.snowflakecomputing.test:8080"
    assert cfg.snowflake_host_template == template
    assert cfg.upstream_map["snowflake"].host_template == template
    # A new Snowflake upstream inherits the derived template from the built-in.
    assert cfg.upstream_map["snowflake-reporting"].host_template == template
    # An explicit template (file or variable) beats the derived one.
    explicit = write(tmp_path, "c.toml", 'snowflake_host_template = "https://%s.sf.example"\n')
    cfg = from_file(explicit, HARNESS_SNOWFLAKE_ACCOUNTS=accounts)
    assert cfg.snowflake_host_template == "https://%s.sf.example"


# -- upstream validation rules -------------------------------------------------------------
def test_bad_flow_for_the_provider() -> None:
    assert config_error(**{"databricks-sql": {"flow": "passthrough"}}) == (
        "upstreams.databricks-sql.flow must be one of brokered, federated for databricks, "
        "got 'passthrough'"
    )
    assert config_error(snowflake={"flow": "federated"}) == (
        "upstreams.snowflake.flow must be one of passthrough for snowflake, got 'federated'"
    )
    assert config_error(x={"provider": "okta"}) == (
        "upstreams.x.provider must be one of databricks, snowflake, got 'okta'"
    )


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("https://dbc.example.com", "must contain exactly one %s and no other %"),
        ("https://%s.%d.example.com", "must contain exactly one %s and no other %"),
        ("https://%s-%s.example.com", "must contain exactly one %s and no other %"),
        ("https://example.com/%s", "must not have a path"),
        ("https://example.com/w/%s/", "must not have a path"),
        ("https://example.com?w=%s", "must not have a query or fragment"),
        ("https://%s@example.com", "must put the segment in the host name"),
        ("%s.example.com", "must be an absolute http(s) URL"),
        ("ftp://%s.example.com", "must be an absolute http(s) URL"),
        ("http://[%s.example.com", "is not a valid URL (Invalid IPv6 URL)"),
        ("http://%s.example.com:99999", "is not a valid URL (Port out of range 0-65535)"),
    ],
)
def test_host_template_rules(template: str, reason: str) -> None:
    message = config_error(**{"databricks-sql": {"host_template": template}})
    assert message.startswith(f"upstreams.databricks-sql.host_template {reason}")
    assert message.endswith(f"got {template!r}")


def test_host_template_with_a_port_is_fine() -> None:
    cfg = config(**{"databricks-sql": {"host_template": "http://%s.databricks.test:8080"}})
    assert workspace_for("dbc-a", cfg.upstream_map["databricks-sql"].host_template) == (
        "http://dbc-a.databricks.test:8080",
        "dbc-a.databricks.test:8080",
    )


@pytest.mark.parametrize("pattern", ["^dbc-(", "[z-a]", "a{4294967296}", "(" * 2000 + ")" * 2000])
def test_invalid_segment_pattern(pattern: str) -> None:
    message = config_error(**{"databricks-sql": {"segment_pattern": pattern}})
    assert message.startswith(
        "upstreams.databricks-sql.segment_pattern is not a valid regular expression: "
    )


def test_gateway_needs_mcp_path() -> None:
    assert config_error(**{"databricks-extra": {"gateway": True}}) == (
        "upstreams.databricks-extra.gateway needs mcp_path (the upstream MCP endpoint)"
    )
    # A built-in family has its path already.
    assert config(**{"databricks-sql": {"gateway": True}}).upstream_map["databricks-sql"].gateway
    assert config_error(**{"databricks-sql": {"mcp_path": "api/mcp"}}) == (
        "upstreams.databricks-sql.mcp_path must be an absolute path, got 'api/mcp'"
    )
    assert config_error(**{"databricks-sql": {"gateway": "yes"}}) == (
        "upstreams.databricks-sql.gateway must be true or false, got 'yes'"
    )


def test_roles_are_snowflake_settings() -> None:
    assert config_error(**{"databricks-sql": {"role": "ANALYST"}}) == (
        "upstreams.databricks-sql: role and roles are Snowflake settings"
    )
    assert config_error(**{"databricks-sql": {"roles": ["ANALYST"]}}) == (
        "upstreams.databricks-sql: role and roles are Snowflake settings"
    )


def test_roles_must_include_the_default_role() -> None:
    assert config_error(snowflake={"roles": ["REPORTING"]}) == (
        "upstreams.snowflake.roles must include the default role 'ANALYST'"
    )
    assert config_error(snowflake={"role": "BAD ROLE"}) == (
        "upstreams.snowflake: 'BAD ROLE' is not a Snowflake role name"
    )
    assert config_error(snowflake={"roles": "ANALYST"}) == (
        "upstreams.snowflake.roles must be a list, got 'ANALYST'"
    )
    cfg = config(snowflake={"role": "REPORTING", "roles": ["REPORTING", "ANALYST"]})
    assert cfg.upstream_map["snowflake"].roles == ("REPORTING", "ANALYST")


def test_invalid_scope_token() -> None:
    assert config_error(**{"databricks-sql": {"scope": "sql write"}}) == (
        "upstreams.databricks-sql.scope must be one scope token, got 'sql write'"
    )
    assert config_error(**{"databricks-sql": {"scopes": ["sql", "a b"]}}) == (
        "upstreams.databricks-sql.scopes has an invalid scope token 'a b'"
    )
    assert config_error(**{"databricks-sql": {"scopes": {"sql": 1}}}) == (
        "upstreams.databricks-sql.scopes must be a list, got {'sql': 1}"
    )
    assert config_error(**{"databricks-sql": {"tool_scopes": {"execute_sql": ['a"b']}}}) == (
        "upstreams.databricks-sql.tool_scopes.execute_sql has an invalid scope 'a\"b'"
    )
    assert config_error(**{"databricks-sql": {"tool_scopes": {"bad tool": []}}}) == (
        "upstreams.databricks-sql.tool_scopes has an invalid tool name 'bad tool'"
    )


def test_upstream_names_are_path_segments() -> None:
    assert config_error(**{"Bad_Name": {}}).startswith(
        "upstream name 'Bad_Name' must be lower-case letters, digits and hyphens"
    )


def test_disabled_upstream_is_gone_and_its_resource_invalid_target(broker: Any) -> None:
    cfg = config(**{"databricks-genie": {"enabled": False}})
    assert "databricks-genie" not in cfg.upstream_map
    app = broker(cfg)
    with pytest.raises(OAuthError) as info:
        app.target(f"{BASE}/v1/databricks-genie/dbc-aaa/mcp", BASE)
    assert info.value.error == "invalid_target"
    assert "databricks-genie" not in info.value.description
    # The rest still resolve.
    target = app.target(f"{BASE}/v1/databricks-sql/dbc-aaa/mcp", BASE)
    assert target.upstream.name == "databricks-sql"
    assert config_error(**{"databricks-sql": {"enabled": "no"}}) == (
        "upstreams.databricks-sql.enabled must be true or false"
    )


def test_every_upstream_disabled_is_an_error() -> None:
    names = list(config().upstream_map)
    assert config_error(**{n: {"enabled": False} for n in names}) == (
        "upstreams: at least one upstream must be enabled"
    )


def test_new_upstream_inherits_its_providers_builtin_defaults(broker: Any) -> None:
    cfg = BrokerConfig(
        okta_issuer=OKTA["BROKER_OKTA_ISSUER"],
        okta_client_id="client",
        okta_client_secret="secret",
        storage=":memory:",
        exchange_flow="federated",
        segment_pattern=r"^dbc-[a-z]+$",
        snowflake_role="PUBLIC",
        upstreams={
            "databricks-eu": {"host_template": "https://%s.eu.databricks.example"},
            "snowflake-reporting": {"provider": "snowflake", "role": "REPORTING"},
            "snowflake-public": {"provider": "snowflake"},
        },
    )
    sql, eu = cfg.upstream_map["databricks-sql"], cfg.upstream_map["databricks-eu"]
    assert eu.provider == "databricks"
    assert (eu.flow, eu.segment_pattern, eu.scope, eu.scopes) == (
        "federated",
        r"^dbc-[a-z]+$",
        "sql",
        ("sql",),
    )
    # What is specific to one family is not inherited: the MCP path and gateway mode.
    assert (eu.mcp_path, eu.gateway) == (None, False)
    assert eu.host_template != sql.host_template
    snowflake = cfg.upstream_map["snowflake"]
    reporting = cfg.upstream_map["snowflake-reporting"]
    assert (reporting.flow, reporting.host_template, reporting.segment_pattern) == (
        "passthrough",
        snowflake.host_template,
        snowflake.segment_pattern,
    )
    assert (reporting.role, reporting.roles, reporting.scopes) == (
        "REPORTING",
        ("REPORTING",),
        ("sql",),
    )
    # Without a role of its own it takes the configured snowflake_role.
    assert cfg.upstream_map["snowflake-public"].roles == ("PUBLIC",)
    # Each family has its own resource path and isolation key.
    app = broker(cfg)
    target = app.target(f"{BASE}/v1/snowflake-reporting/myorg-acct1/mcp", BASE)
    assert target.upstream is reporting
    assert target.workspace_url == "https://myorg-acct1.snowflakecomputing.com"
    assert reporting.isolation_key(target.workspace_host) != snowflake.isolation_key(
        target.workspace_host
    )


def test_changing_a_builtins_provider_drops_its_snowflake_role() -> None:
    cfg = config(
        snowflake={
            "provider": "databricks",
            "flow": "brokered",
            "segment_pattern": "^dbc-[a-z]+$",
        }
    )
    assert cfg.upstream_map["snowflake"].provider == "databricks"
    assert cfg.upstream_map["snowflake"].role is None


def test_scope_override_derives_the_scopes_again() -> None:
    cfg = config(**{"databricks-sql": {"scope": "all-apis"}})
    assert cfg.upstream_map["databricks-sql"].scopes == ("all-apis",)
    cfg = config(**{"databricks-sql": {"tool_scopes": {"execute_sql": ["sql:execute"]}}})
    sql = cfg.upstream_map["databricks-sql"]
    assert sql.offered_scopes == ("sql", "sql:execute")
    assert sql.required_scopes("execute_sql") == ("sql", "sql:execute")


# -- the shipped examples ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["broker.toml", "broker.yaml"])
def test_examples_load(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # relative storage and audit_log paths land here
    cfg = BrokerConfig.from_env(
        {"BROKER_OKTA_CLIENT_SECRET": "s"}, config_file=str(EXAMPLES / name)
    )
    upstreams = cfg.upstream_map
    sql = upstreams["databricks-sql"]
    assert (sql.flow, sql.gateway, sql.mcp_path) == ("federated", True, "/api/2.0/mcp/sql")
    assert "databricks-genie" not in upstreams
    reporting = upstreams["snowflake-reporting"]
    assert (reporting.provider, reporting.role) == ("snowflake", "REPORTING")
    assert cfg.audit_log and cfg.policy_inbound is None and cfg.policy_outbound is None
    assert cfg.okta_client_secret == "s"
    assert not list(tmp_path.iterdir())  # loading creates no file


def test_the_two_examples_are_the_same_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES)
    env = {"BROKER_OKTA_CLIENT_SECRET": "s"}
    toml = BrokerConfig.from_env(env, config_file="broker.toml")
    yaml = BrokerConfig.from_env(env, config_file="broker.yaml")
    assert toml == yaml and toml.upstream_map == yaml.upstream_map


@pytest.mark.parametrize("name", ["broker.toml", "broker.yaml"])
def test_examples_document_every_setting(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert "# policy_inbound" in text  # a policy path, commented out
    lines = text.splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "[")):
            continue
        if name.endswith(".yaml") and stripped.endswith(":"):
            continue  # a YAML table header (upstreams:, databricks-sql:)
        previous = lines[number - 1].strip()
        assert previous.startswith("#") or previous.endswith(":"), (
            f"{name}:{number + 1}: {stripped!r} has no comment saying why to change it"
        )


# -- the command line ----------------------------------------------------------------------
def run_broker(*args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "broker", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **OKTA, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


BAD_FILES = {
    "missing": ("missing.toml", None, "cannot read the configuration file"),
    "not-utf8": ("b.toml", b'x = "\xff"\n', "not UTF-8"),
    "bad-toml": ("b.toml", b"[upstreams\n", "invalid TOML"),
    "bad-yaml": ("b.yaml", b"upstreams: {a\n", "invalid YAML"),
    "unknown-key": ("b.toml", b"segment_patern = 'x'\n", "did you mean segment_pattern?"),
    "unknown-upstream-key": ("b.toml", b"[upstreams.snowflake]\nrloe = 'X'\n", "known: enabled"),
    "bad-value": ("b.toml", b"[upstreams.snowflake]\nrole = 'A B'\n", "not a Snowflake role"),
    "bad-type": ("b.yaml", b"reuse_margin: [1]\n", "reuse_margin must be a number"),
    "regex-overflow": ("b.toml", b"segment_pattern = 'a{4294967296}'\n", "too large"),
    "bad-rego": (
        "b.toml",
        b"policy_inbound = 'in.rego'\n",
        "policy: ",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("check", [False, True])
def test_cli_bad_file_exits_2_with_one_line(tmp_path: Path, case: str, check: bool) -> None:
    name, content, expected = BAD_FILES[case]
    if content is not None:
        write(tmp_path, name, content)
    write(tmp_path, "in.rego", "package broker.inbound\n\nallow if {\n")
    args = ["--config", name, "--port", "0", *(["--check-config"] if check else [])]
    proc = run_broker(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("broker: configuration error: ")
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert "env-secret" not in proc.stderr


def test_cli_check_config_prints_one_line_per_upstream(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.toml",
        'storage = "broker.sqlite3"\n'
        "[upstreams.databricks-sql]\n"
        'flow = "federated"\ngateway = true\n'
        "[upstreams.databricks-sql.tool_scopes]\n"
        'execute_sql = ["sql:execute"]\n'
        "[upstreams.databricks-genie]\nenabled = false\n"
        '[upstreams.snowflake-reporting]\nprovider = "snowflake"\nrole = "REPORTING"\n',
    )
    proc = run_broker("--config", path, "--check-config", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "databricks-sql provider=databricks flow=federated "
        "resource=/v1/databricks-sql/<segment>/mcp host=https://%s.cloud.databricks.com "
        "scopes=sql,sql:execute gateway=/api/2.0/mcp/sql",
        "databricks-vector-search provider=databricks flow=brokered "
        "resource=/v1/databricks-vector-search/<segment>/mcp "
        "host=https://%s.cloud.databricks.com scopes=vector-search gateway=off",
        "databricks-functions provider=databricks flow=brokered "
        "resource=/v1/databricks-functions/<segment>/mcp "
        "host=https://%s.cloud.databricks.com scopes=unity-catalog gateway=off",
        "snowflake provider=snowflake flow=passthrough resource=/v1/snowflake/<segment>/mcp "
        "host=https://%s.snowflakecomputing.com scopes=sql gateway=off "
        "role=ANALYST roles=ANALYST",
        "snowflake-reporting provider=snowflake flow=passthrough "
        "resource=/v1/snowflake-reporting/<segment>/mcp "
        "host=https://%s.snowflakecomputing.com scopes=sql gateway=off "
        "role=REPORTING roles=REPORTING",
    ]
    # It did not start a broker: no storage file, nothing listening to report.
    assert not (tmp_path / "broker.sqlite3").exists()
    assert "serving at" not in proc.stdout


@pytest.mark.parametrize("name", ["broker.toml", "broker.yaml"])
def test_cli_checks_the_examples(name: str) -> None:
    proc = run_broker("--config", str(EXAMPLES / name), "--check-config", cwd=EXAMPLES)
    assert proc.returncode == 0, proc.stderr
    names = [line.split(" ", 1)[0] for line in proc.stdout.splitlines()]
    assert names == [
        "databricks-sql",
        "databricks-vector-search",
        "databricks-functions",
        "snowflake",
        "snowflake-reporting",
    ]


# -- property: any table builds an Upstream or raises ConfigError --------------------------
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
_SCALARS = st.one_of(
    _TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    st.dates(),
    st.times(),
    st.none(),  # YAML's null
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=10,
)
#: Values close to valid ones, so that a fair share of the tables build an Upstream.
_PLAUSIBLE = st.sampled_from(
    [
        "databricks",
        "snowflake",
        "brokered",
        "federated",
        "passthrough",
        "https://%s.cloud.databricks.com",
        "http://%s.databricks.test:8080",
        "http://[%s",
        "https://%s.example:99999",
        "https://example/%s",
        "^dbc-[a-z0-9-]+$",
        "a{4294967296}",
        "(",
        "sql",
        "sql:execute",
        ["sql", "genie"],
        ["sql", "a b"],
        "/api/2.0/mcp/sql",
        "mcp",
        True,
        False,
        "ANALYST",
        "REPORTING",
        ["REPORTING"],
        ["ANALYST", "REPORTING"],
        {"execute_sql": ["sql:execute"]},
        {"execute_sql": "sql"},
    ]
)
_FIELD_NAMES = st.sampled_from(sorted(UPSTREAM_FIELDS | {"enabled"}))
_KNOWN_NAMES = st.sampled_from(
    ["databricks-sql", "databricks-genie", "snowflake", "snowflake-reporting", "new-one"]
)
# one_of picks a branch uniformly: repeating a branch weights it (mostly real keys and names,
# so the value rules are reached, not only the unknown-key rule).
_KEYS = st.one_of(_FIELD_NAMES, _FIELD_NAMES, _FIELD_NAMES, _TEXT)
_NAMES = st.one_of(_KNOWN_NAMES, _KNOWN_NAMES, _TEXT)
_TABLE_VALUES = st.one_of(_PLAUSIBLE, _PLAUSIBLE, _VALUES)
#: Per setting, a value that is usually right for it: these tables mostly build.
_GOOD = {
    "enabled": st.booleans(),
    "provider": st.sampled_from(["databricks", "snowflake"]),
    "flow": st.sampled_from(["brokered", "federated", "passthrough"]),
    "host_template": st.sampled_from(
        ["https://%s.cloud.databricks.com", "http://%s.x.test:8080", "https://%s.sf.example"]
    ),
    "segment_pattern": st.sampled_from(["^dbc-[a-z0-9-]+$", "^[a-z]+-[a-z]+$", ".*"]),
    "scope": st.sampled_from(["sql", "genie", "all-apis"]),
    "scopes": st.lists(st.sampled_from(["sql", "genie", "sql:read"]), max_size=3),
    "tool_scopes": st.dictionaries(
        st.sampled_from(["execute_sql", "ask_genie"]),
        st.lists(st.sampled_from(["sql:execute", "genie"]), max_size=2),
        max_size=2,
    ),
    "mcp_path": st.sampled_from(["/api/2.0/mcp/sql", "/mcp"]),
    "gateway": st.booleans(),
    "role": st.sampled_from(["ANALYST", "REPORTING"]),
    "roles": st.lists(st.sampled_from(["ANALYST", "REPORTING"]), max_size=2, unique=True),
}
_GOOD_TABLES = st.lists(st.sampled_from(sorted(_GOOD)), unique=True, max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: _GOOD[k] for k in keys})
)
_BUILTINS = default_upstreams(
    databricks_host_template="https://%s.cloud.databricks.com",
    databricks_segment_pattern=r"^dbc-[a-z0-9-]+$",
    databricks_scope="sql",
    databricks_flow="brokered",
    snowflake_host_template="https://%s.snowflakecomputing.com",
    snowflake_account_pattern=r"^[a-z0-9]+-[a-z0-9-]+$",
    snowflake_role="ANALYST",
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=_NAMES,
    table=_GOOD_TABLES | st.dictionaries(_KEYS, _TABLE_VALUES, max_size=6) | _VALUES,
)
def test_any_upstream_table_builds_an_upstream_or_raises_config_error(
    name: str, table: Any
) -> None:
    try:
        result = merge_upstreams(_BUILTINS, {name: table})
    except ConfigError as exc:
        assert str(exc)  # a sentence, not an empty error
        event("ConfigError")
        return
    event("built")
    for upstream in result.values():
        assert isinstance(upstream, Upstream)
        # What the broker does with an upstream later must not raise either.
        upstream.segment_regex.fullmatch("dbc-aaa")
        url, host = workspace_for("dbc-aaa", upstream.host_template)
        assert host and url.startswith(("http://", "https://"))
        assert all(isinstance(s, str) for s in upstream.required_scopes("execute_sql"))


def test_the_good_values_cover_every_upstream_setting() -> None:
    assert set(_GOOD) == UPSTREAM_FIELDS | {"enabled"}
