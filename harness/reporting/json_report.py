"""``results.json``: the run as data, validated by ``harness/schemas/results.schema.json``."""

from __future__ import annotations

import json
from typing import Any

from harness.results import RunResult
from mocks.core.redact import redact_text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def render_json(run: RunResult) -> str:
    return json.dumps(_scrub(run.to_dict()), indent=2, default=str) + "\n"
