"""The broker's configuration file: TOML (``.toml``) or YAML (``.yaml``/``.yml``).

Top-level keys are :class:`broker.config.BrokerConfig` settings; ``[upstreams.<name>]`` tables
override a built-in upstream or add one (:mod:`broker.upstreams`). Example::

    okta_issuer = "https://acme.okta.com/oauth2/default"
    okta_client_id = "0oabroker"
    # okta_client_secret comes from BROKER_OKTA_CLIENT_SECRET, not the file

    [upstreams.databricks-sql]
    flow = "federated"
    host_template = "https://%s.cloud.databricks.com"
    gateway = true

    [upstreams.snowflake-reporting]
    provider = "snowflake"
    role = "REPORTING"

    [upstreams.databricks-genie]
    enabled = false

Unknown keys are errors (with the list of known ones): a misspelt ``segment_patern`` must not
leave the default pattern silently in force. A file that cannot be read or parsed is a
:class:`~broker.errors.ConfigError` naming the file and, where the parser knows it, the line.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from typing import Any

import yaml

from broker.errors import ConfigError


def load(path: str) -> dict[str, Any]:
    """The settings in ``path`` (validated for known keys, not values: the config does that)."""
    from broker.config import BrokerConfig

    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path!r}: {exc.strerror}") from None
    extension = os.path.splitext(path)[1].lower()
    try:
        if extension == ".toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        elif extension in (".yaml", ".yml"):
            data = yaml.safe_load(raw.decode("utf-8"))
        else:
            raise ConfigError(f"{path}: the configuration file must end in .toml, .yaml or .yml")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the configuration file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a table of settings")
    known = {f.name for f in dataclasses.fields(BrokerConfig)}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)} (see broker.config.BrokerConfig)"
        )
    return dict(data)
