"""``results.json``: the run as data, validated by ``harness/schemas/results.schema.json``.

The payload is :meth:`RunResult.to_dict` unchanged, so the schema and the result model stay
one contract (``schema_version`` is bumped there, not here).
"""

from __future__ import annotations

import json

from harness.results import RunResult
from mocks.core.redact import redact_text


def render_json(run: RunResult) -> str:
    """Serialise the run, then redact the text as a whole.

    Redacting the serialised text (rather than walking the structure) also covers dict keys
    and values that only become strings through ``default=str``. It cannot corrupt the JSON:
    a JWT match consists only of ``[A-Za-z0-9_.-]``, which JSON never escapes, and the mask
    ``<jwt sha256:…>`` contains no quote or backslash.
    """
    text = json.dumps(run.to_dict(), indent=2, sort_keys=False, default=str)
    return redact_text(text) + "\n"
