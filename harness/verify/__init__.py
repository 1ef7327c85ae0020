"""``mcp-harness verify``: the REQUIREMENTS.md §1-§7 catalog against any RFC 8693 endpoint.

Public surface (contract C2): :class:`VerifyConfig` and :func:`run_verify`; the catalog in
:mod:`harness.verify.catalog`, vendor profiles in :mod:`harness.verify.profiles`. Exports
resolve lazily so that ``mcp-harness`` can register the subcommand (:mod:`.cli`) without
importing httpx and the checks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.verify.config import VerifyConfig
    from harness.verify.engine import run_verify

__all__ = ["VerifyConfig", "run_verify"]

_EXPORTS = {"VerifyConfig": "harness.verify.config", "run_verify": "harness.verify.engine"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
