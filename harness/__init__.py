"""The conformance engine: sandbox start-up, scenario runner, checks, evidence, reports, CLI."""

__version__ = "0.1.0"
