"""The harness's own test issuer (contract C1): ``from harness.issuer import TestIssuer``.

Exports resolve lazily, so ``mcp-harness`` can import :mod:`harness.issuer.cli` to register
its subcommand without loading werkzeug, pyjwt and cryptography.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.issuer.defects import SIGNING_DEFECTS
    from harness.issuer.issuer import TestIssuer

__all__ = ["SIGNING_DEFECTS", "TestIssuer"]

_EXPORTS = {"SIGNING_DEFECTS": "harness.issuer.defects", "TestIssuer": "harness.issuer.issuer"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
