"""The request journal: every request any mock receives, bounded and redacted.

Entries keep the method, host, path, query, headers, form fields, the decoded claims of every
JWT the request carried, the fingerprints of every secret it carried and the response status.
Raw secrets are never stored: a scenario that wants to prove "workspace B never saw workspace
A's token" looks up the token's :func:`~mocks.core.redact.fingerprint`. Each host keeps a ring
of at most ``per_host`` entries so memory stays flat under load.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mocks.core.redact import (
    SECRET_FIELDS,
    bearer_token,
    decode_jwt_unverified,
    fingerprint,
    redact_header,
    redact_mapping,
    redact_text,
)


@dataclass
class JournalEntry:
    """One request as a mock saw it (already redacted)."""

    seq: int
    time: float
    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, Any]
    tokens: list[str] = field(default_factory=list)
    """Fingerprints of every secret the request carried (Authorization, form, query)."""
    jwt_claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Decoded (unverified) claims of each JWT the request carried, keyed by where it was."""
    status: int | None = None
    response_body: str | None = None
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _collect_secrets(
    source: str, values: Mapping[str, str], tokens: list[str], claims: dict[str, dict[str, Any]]
) -> None:
    for key, value in values.items():
        if key.lower() in SECRET_FIELDS and value:
            tokens.append(fingerprint(value))
            decoded = decode_jwt_unverified(value)
            if decoded is not None:
                claims[f"{source}.{key}"] = decoded[1]


def make_entry(
    *,
    seq: int,
    time: float,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Iterable[tuple[str, str]],
    form: Mapping[str, str],
) -> JournalEntry:
    """Build a redacted entry from the raw request parts."""
    tokens: list[str] = []
    claims: dict[str, dict[str, Any]] = {}
    header_list = list(headers)
    for name, value in header_list:
        if name.lower() == "authorization":
            cred = bearer_token(value) or value.partition(" ")[2].strip()
            if cred:
                tokens.append(fingerprint(cred))
                decoded = decode_jwt_unverified(cred)
                if decoded is not None:
                    claims["header.authorization"] = decoded[1]
    _collect_secrets("form", form, tokens, claims)
    _collect_secrets("query", query, tokens, claims)
    return JournalEntry(
        seq=seq,
        time=time,
        method=method,
        host=host,
        path=path,
        query=redact_mapping(dict(query)),
        headers={name: redact_header(name, value) for name, value in header_list},
        form=redact_mapping(dict(form)),
        tokens=tokens,
        jwt_claims=claims,
    )


class Journal:
    """Bounded, thread-safe, per-host ring of :class:`JournalEntry`."""

    def __init__(self, per_host: int = 1000) -> None:
        self.per_host = per_host
        self._rings: dict[str, deque[JournalEntry]] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        with self._lock:
            return next(self._seq)

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest entry so far (0 when empty); a marker for ``since``."""
        with self._lock:
            newest = [ring[-1].seq for ring in self._rings.values() if ring]
        return max(newest, default=0)

    def record(self, entry: JournalEntry) -> None:
        with self._lock:
            ring = self._rings.get(entry.host)
            if ring is None:
                ring = self._rings[entry.host] = deque(maxlen=self.per_host)
            ring.append(entry)

    def complete(self, entry: JournalEntry, status: int, body: bytes | None) -> None:
        """Attach the response to an entry recorded before the handler ran."""
        entry.status = status
        if body is not None:
            text = body[:2048].decode("utf-8", "replace")
            entry.response_body = redact_text(text)

    def entries(
        self,
        *,
        host: str | None = None,
        path: str | None = None,
        method: str | None = None,
        token: str | None = None,
        since: int = 0,
    ) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first.

        ``token`` is a fingerprint (``sha256:…``) or a raw token (fingerprinted here);
        ``since`` keeps entries with a sequence number greater than it.
        """
        wanted = None
        if token is not None:
            wanted = token if token.startswith("sha256:") else fingerprint(token)
        with self._lock:
            rings = [self._rings.get(host, deque())] if host is not None else self._rings.values()
            found = [e for ring in rings for e in ring]
        found = [
            e
            for e in found
            if e.seq > since
            and (path is None or e.path == path)
            and (method is None or e.method == method.upper())
            and (wanted is None or wanted in e.tokens)
        ]
        return sorted(found, key=lambda e: e.seq)

    def hosts(self) -> list[str]:
        with self._lock:
            return sorted(h for h, ring in self._rings.items() if ring)

    def clear(self) -> None:
        with self._lock:
            self._rings.clear()
