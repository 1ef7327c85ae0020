"""Audit trail: one record per decision, from the human to the upstream request.

Every token handed out, every exchange or passthrough, every cache hit, every gateway tool call
and every policy denial leaves one record: who (Okta user id and email), through which agent
(the MCP client id), which tool (gateway calls), which upstream (family, host, resource), the
policy decision, the outcome (``ok``, ``cached``, ``denied``, ``error``) and why, plus the
upstream ``X-Request-Id`` so an operator can follow the request into the platform's own logs
(the mock platforms' query histories attribute each statement to the same user).

Records go to the broker's SQLite table (queryable: :meth:`AuditLog.records`, and
``GET /audit`` for the harness) and, when ``audit_log`` is configured, to a JSON-lines file
(one object per line, appended and flushed per record, so ``tail -f`` and log shippers see each
decision at once). Details are composed by the broker and never contain tokens (only
fingerprints).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from broker.storage import Storage

log = logging.getLogger("broker.audit")

OUTCOMES = ("ok", "cached", "denied", "error")
EVENTS = ("token", "exchange", "passthrough", "tool_call", "mcp")


class AuditLog:
    """Writes audit records to storage, the optional JSON-lines file and the logger."""

    def __init__(
        self, storage: Storage, clock: Callable[[], float], path: str | None = None
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._path = path
        self._file_lock = threading.Lock()

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
        event: str = "exchange",
        upstream: str | None = None,
        tool: str | None = None,
        policy: str | None = None,
        user_email: str | None = None,
    ) -> dict[str, Any]:
        """Store one record and return it."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}")
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        entry: dict[str, Any] = {
            "time": self._clock(),
            "event": event,
            "user_id": user_id,
            "user_email": user_email,
            "client_id": client_id,
            "tool": tool,
            "upstream": upstream,
            "resource": resource,
            "workspace_host": workspace_host,
            "outcome": outcome,
            "policy": policy,
            "detail": detail,
            "request_id": request_id,
        }
        self._storage.add_audit(entry)
        if self._path is not None:
            line = json.dumps(entry, separators=(",", ":"), sort_keys=True)
            with self._file_lock, open(self._path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        log.info(
            "%s %s user=%s client=%s tool=%s upstream=%s host=%s policy=%s request_id=%s %s",
            event,
            outcome,
            user_id,
            client_id,
            tool,
            upstream,
            workspace_host,
            policy,
            request_id,
            detail,
        )
        return entry

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first, as plain dicts."""
        return self._storage.audit_records()
