"""Audit trail of workspace-token decisions.

Every exchange attempt and every cache hit leaves one row: who (Okta user id, MCP client id),
for what (resource, workspace host), what happened (``ok``, ``cached``, ``error``) and why,
plus the upstream ``X-Request-Id`` so an operator can correlate with Databricks support. Details
are composed by the broker and never contain tokens (only fingerprints).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from broker.storage import Storage

log = logging.getLogger("broker.audit")

OUTCOMES = ("ok", "cached", "error")


class AuditLog:
    """Writes audit records to storage (and to the ``broker.audit`` logger)."""

    def __init__(self, storage: Storage, clock: Callable[[], float]) -> None:
        self._storage = storage
        self._clock = clock

    def record(
        self,
        *,
        outcome: str,
        user_id: str | None,
        client_id: str | None,
        resource: str | None,
        workspace_host: str | None,
        detail: str = "",
        request_id: str | None = None,
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}")
        entry: dict[str, Any] = {
            "time": self._clock(),
            "user_id": user_id,
            "client_id": client_id,
            "resource": resource,
            "workspace_host": workspace_host,
            "outcome": outcome,
            "detail": detail,
            "request_id": request_id,
        }
        self._storage.add_audit(entry)
        log.info(
            "exchange %s user=%s client=%s host=%s request_id=%s %s",
            outcome,
            user_id,
            client_id,
            workspace_host,
            request_id,
            detail,
        )

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first, as plain dicts."""
        return self._storage.audit_records()
