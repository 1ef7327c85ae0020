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

Each top-level value must have its setting's type (a string, a number of seconds, a table):
environment variables are always strings, a file is the only place a ``storage = 5`` or a
list can come from, and :class:`~broker.config.BrokerConfig` checks values, not Python types.
The error names the type found, never the value (the value may be a secret).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
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
    except RecursionError:
        raise ConfigError(f"{path}: the configuration file is nested too deeply") from None
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
        guesses = [g for u in unknown for g in difflib.get_close_matches(u, known, n=1)]
        hint = (
            f" (did you mean {', '.join(guesses)}?)"
            if guesses
            else f"; known: {', '.join(sorted(known))}"
        )
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}{hint}")
    hints = typing.get_type_hints(BrokerConfig)
    for key, value in data.items():
        _check_type(path, key, value, hints[key])
    return dict(data)


def _check_type(path: str, key: str, value: object, hint: object) -> None:
    """``value`` has the type of setting ``key`` (``hint``: its annotation), else ConfigError."""
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    if optional:
        if value is None:
            return  # YAML ``key:`` / ``key: null``: the default
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is str:
        ok, wanted = isinstance(value, str), "a string"
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        wanted = "a number (seconds)"
    elif typing.get_origin(hint) is Mapping:
        ok, wanted = isinstance(value, Mapping), "a table"
    else:  # a new BrokerConfig field of another type: BrokerConfig validates it
        return
    if not ok:
        raise ConfigError(f"{path}: {key} must be {wanted}, got {_kind(value)}")


def _kind(value: object) -> str:
    """What a parsed value is, in the configuration file's terms (never the value itself)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime.date | datetime.time):
        return "a date/time"
    return type(value).__name__
