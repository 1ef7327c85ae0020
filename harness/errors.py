"""Errors every part of the harness raises for the CLI to turn into one line and an exit code.

They live apart from :mod:`harness.cli` so that command modules (``harness.verify.cli``,
``harness.issuer.cli``, ...) can raise them without importing the CLI (and its imports).
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad flags, a missing file, an unknown name: exit 2, one line on stderr."""
