"""Input validation of the mock Okta admin API (:mod:`mocks.okta.admin`) and its settings table.

Every admin request is validated completely before anything changes; a check that fails
raises :class:`Invalid`, whose message becomes the ``400 invalid_request`` description (the
dispatcher in :mod:`mocks.okta.admin` turns it into the answer). :data:`SETTINGS` names each
org setting the API may change with the validator that bounds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request

from mocks.core.admin import admin_params


class Invalid(Exception):
    """A refused admin request; the message is the ``error_description``."""


# -- request fields -----------------------------------------------------------------------------
def body_params(request: Request, allowed: set[str]) -> dict[str, Any]:
    params = admin_params(request)
    if params is None:
        raise Invalid("body must be a JSON object")
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise Invalid(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return params


def str_param(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise Invalid(f"'{name}' is required")
        return None
    if not isinstance(value, str) or not value:
        raise Invalid(f"'{name}' must be a non-empty string")
    return value


def str_list_param(params: dict[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"'{name}' must be a list of non-empty strings")
    return list(value)


def object_list(value: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid(f"'{name}' must be a list of objects")
    return value


# -- settings ---------------------------------------------------------------------------------
def _number(
    low: float, high: float | None = None, *, integer: bool = False
) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise Invalid(f"must be {'an integer' if integer else 'a number'}")
        if value < low or (high is not None and value > high):
            raise Invalid(f"must be between {low} and {high}" if high else f"must be >= {low}")
        return value

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def _choice(*options: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in options:
            raise Invalid(f"must be one of {', '.join(map(str, options))}")
        return value

    return check


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid("must be a list of strings")
    return list(value)


def _any_string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("must be a non-empty string")
    return value


SETTINGS: dict[str, Callable[[Any], Any]] = {
    "access_token_lifetime": _number(300, 86400, integer=True),
    "id_token_lifetime": _number(1, 86400, integer=True),
    "auth_code_lifetime": _number(1, 3600, integer=True),
    "refresh_idle_window": _number(1),
    "refresh_max_lifetime": _optional(_number(1)),
    "refresh_rotation": _choice("ROTATE", "STATIC"),
    "refresh_leeway": _number(0, 60),
    "revoke_tokens_on_code_reuse": _boolean,
    "multiple_credentials_status": _choice(400, 401),
    "require_state": _boolean,
    "auto_approve": _optional(_any_string),
    "require_assertion_jti": _boolean,
    "id_jag_lifetime": _number(1, 3600, integer=True),
    "id_jag_token_type": _choice("N_A", "Bearer"),
    "id_jag_client_id_claim": _boolean,
    "id_jag_audiences": _string_list,
}
"""Setting name -> validator returning the value to store (raises :class:`Invalid`)."""
