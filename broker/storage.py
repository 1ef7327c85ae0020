"""SQLite persistence for every piece of broker state.

One connection guarded by one lock: SQLite serialises writers anyway, ``:memory:`` databases
exist only inside the connection that created them, and the broker's request rate is far below
what a single connection handles. Secrets the broker issues (client secrets, authorization
codes, refresh tokens) are stored as SHA-256 hashes only, so a leaked database file does not
let anyone redeem them. Upstream tokens (Okta ID/refresh tokens, workspace tokens) must be
usable, so they are stored as is: protect the file like a credential store.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT,
    metadata TEXT NOT NULL,
    issued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    state TEXT,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    okta_verifier TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    family_id TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    user_id TEXT PRIMARY KEY,
    email TEXT,
    id_token TEXT NOT NULL,
    id_token_expires_at REAL NOT NULL,
    okta_refresh_token TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE TABLE IF NOT EXISTS upstream_tokens (
    user_id TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    access_token TEXT NOT NULL,
    token_type TEXT NOT NULL,
    expires_at REAL NOT NULL,
    workspace_host TEXT NOT NULL,
    PRIMARY KEY (user_id, cache_key)
);
CREATE TABLE IF NOT EXISTS consents (
    browser_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    granted_at REAL NOT NULL,
    PRIMARY KEY (browser_hash, client_id, redirect_uri)
);
CREATE TABLE IF NOT EXISTS consent_tickets (
    ticket_hash TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    user_id TEXT,
    client_id TEXT,
    resource TEXT,
    workspace_host TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT,
    event TEXT,
    upstream TEXT,
    tool TEXT,
    policy TEXT,
    user_email TEXT
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at REAL NOT NULL,
    active_from REAL NOT NULL
);
"""

#: Audit columns added after the first schema (see :meth:`Storage._migrate`).
AUDIT_COLUMNS = ("event", "upstream", "tool", "policy", "user_email")

TABLES = (
    "clients",
    "transactions",
    "codes",
    "sessions",
    "refresh_tokens",
    "upstream_tokens",
    "consents",
    "consent_tickets",
    "audit",
    "signing_keys",
)


def secret_hash(value: str) -> str:
    """Hex SHA-256 of a broker-issued secret (what the tables store)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def fingerprint(value: str) -> str:
    """A log-safe token fingerprint (``sha256:`` + 12 hex digits), never the token itself."""
    return "sha256:" + secret_hash(value)[:12]


@dataclass(frozen=True)
class Client:
    client_id: str
    secret_hash: str | None
    metadata: dict[str, Any]
    issued_at: float

    @property
    def auth_method(self) -> str:
        return str(self.metadata.get("token_endpoint_auth_method", "none"))

    @property
    def redirect_uris(self) -> list[str]:
        return list(self.metadata.get("redirect_uris", []))


@dataclass(frozen=True)
class Transaction:
    id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    state: str | None
    resource: str
    scope: str
    nonce: str
    okta_verifier: str
    expires_at: float


@dataclass(frozen=True)
class AuthCode:
    code_hash: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scope: str
    user_id: str
    expires_at: float
    used: bool
    family_id: str | None


@dataclass(frozen=True)
class Session:
    user_id: str
    email: str | None
    id_token: str
    id_token_expires_at: float
    okta_refresh_token: str | None
    updated_at: float


@dataclass(frozen=True)
class RefreshToken:
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    resource: str
    scope: str
    expires_at: float
    state: str  # active | rotated | revoked


@dataclass(frozen=True)
class UpstreamToken:
    user_id: str
    cache_key: str
    access_token: str
    token_type: str
    expires_at: float
    workspace_host: str


@dataclass(frozen=True)
class SigningKey:
    """One of the broker's own signing keys (federated exchange, :mod:`broker.issuer`).

    ``active_from``: when the broker starts signing with it (after it has been published long
    enough for relying parties to have fetched it). The private key is stored as PEM so it
    survives a restart; protect the database file like a credential store.
    """

    kid: str
    private_pem: str
    created_at: float
    active_from: float


class Storage:
    """Thread-safe access to the broker's SQLite database (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the audit columns a database made by an older broker lacks (no data is lost)."""
        with self._lock:
            have = {row["name"] for row in self._conn.execute("PRAGMA table_info(audit)")}
            for column in AUDIT_COLUMNS:
                if column not in have:
                    self._conn.execute(f"ALTER TABLE audit ADD COLUMN {column} TEXT")

    # -- plumbing ----------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE … COMMIT) under the connection lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
            return row

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def wipe(self) -> None:
        """Delete every row of every table (used between scenarios)."""
        with self._tx() as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")  # fixed table names, no input

    # -- clients -----------------------------------------------------------------------
    def add_client(self, client: Client) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO clients VALUES (?, ?, ?, ?)",
                (
                    client.client_id,
                    client.secret_hash,
                    json.dumps(client.metadata),
                    client.issued_at,
                ),
            )

    def get_client(self, client_id: str) -> Client | None:
        row = self._one("SELECT * FROM clients WHERE client_id = ?", (client_id,))
        if row is None:
            return None
        return Client(
            row["client_id"], row["secret_hash"], json.loads(row["metadata"]), row["issued_at"]
        )

    # -- authorization transactions ----------------------------------------------------
    def add_transaction(self, t: Transaction) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    t.id,
                    t.client_id,
                    t.redirect_uri,
                    t.code_challenge,
                    t.state,
                    t.resource,
                    t.scope,
                    t.nonce,
                    t.okta_verifier,
                    t.expires_at,
                ),
            )

    def pop_transaction(self, transaction_id: str) -> Transaction | None:
        """Fetch and delete a transaction: a callback can complete it only once."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT * FROM transactions WHERE id = ?", (transaction_id,)
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM transactions WHERE id = ?", (transaction_id,))
        return Transaction(**dict(row))

    def get_transaction(self, transaction_id: str) -> Transaction | None:
        row = self._one("SELECT * FROM transactions WHERE id = ?", (transaction_id,))
        return None if row is None else Transaction(**dict(row))

    # -- consent (MCP confused-deputy rule) --------------------------------------------
    def add_consent_ticket(
        self, ticket_hash: str, transaction_id: str, browser_hash: str, expires_at: float
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO consent_tickets VALUES (?, ?, ?, ?)",
                (ticket_hash, transaction_id, browser_hash, expires_at),
            )

    def pop_consent_ticket(self, ticket_hash: str) -> tuple[str, str, float] | None:
        """(transaction id, browser hash, expiry) of a ticket, deleted: a form posts once."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT * FROM consent_tickets WHERE ticket_hash = ?", (ticket_hash,)
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM consent_tickets WHERE ticket_hash = ?", (ticket_hash,))
        return row["transaction_id"], row["browser_hash"], row["expires_at"]

    def add_consent(
        self, browser_hash: str, client_id: str, redirect_uri: str, granted_at: float
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO consents VALUES (?, ?, ?, ?)",
                (browser_hash, client_id, redirect_uri, granted_at),
            )

    def has_consent(self, browser_hash: str, client_id: str, redirect_uri: str) -> bool:
        row = self._one(
            "SELECT 1 FROM consents WHERE browser_hash = ? AND client_id = ? AND redirect_uri = ?",
            (browser_hash, client_id, redirect_uri),
        )
        return row is not None

    # -- authorization codes -----------------------------------------------------------
    def add_code(self, code: AuthCode) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    code.code_hash,
                    code.client_id,
                    code.redirect_uri,
                    code.code_challenge,
                    code.resource,
                    code.scope,
                    code.user_id,
                    code.expires_at,
                    int(code.used),
                    code.family_id,
                ),
            )

    def claim_code(self, code_hash: str, family_id: str) -> AuthCode | None:
        """Mark a code used and return it as it was before, atomically.

        Returns None for an unknown code. A code that was already used comes back with
        ``used=True`` (and the refresh-token family issued from it) so the caller can refuse
        it and revoke what the first redemption produced (OAuth 2.1 §4.1.3).
        """
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM codes WHERE code_hash = ?", (code_hash,)).fetchone()
            if row is None:
                return None
            if not row["used"]:
                conn.execute(
                    "UPDATE codes SET used = 1, family_id = ? WHERE code_hash = ?",
                    (family_id, code_hash),
                )
        data = dict(row)
        data["used"] = bool(data["used"])
        return AuthCode(**data)

    # -- Okta sessions -----------------------------------------------------------------
    def upsert_session(self, s: Session) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE "
                "SET email = excluded.email, id_token = excluded.id_token, "
                "id_token_expires_at = excluded.id_token_expires_at, "
                "okta_refresh_token = COALESCE(excluded.okta_refresh_token, okta_refresh_token), "
                "updated_at = excluded.updated_at",
                (
                    s.user_id,
                    s.email,
                    s.id_token,
                    s.id_token_expires_at,
                    s.okta_refresh_token,
                    s.updated_at,
                ),
            )

    def get_session(self, user_id: str) -> Session | None:
        row = self._one("SELECT * FROM sessions WHERE user_id = ?", (user_id,))
        return None if row is None else Session(**dict(row))

    def drop_okta_refresh_token(self, user_id: str) -> None:
        """Forget an Okta refresh token that Okta refused (it will not work again)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE sessions SET okta_refresh_token = NULL WHERE user_id = ?", (user_id,)
            )

    # -- broker refresh tokens ---------------------------------------------------------
    def add_refresh_token(self, r: RefreshToken) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.token_hash,
                    r.family_id,
                    r.client_id,
                    r.user_id,
                    r.resource,
                    r.scope,
                    r.expires_at,
                    r.state,
                ),
            )

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        row = self._one("SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else RefreshToken(**dict(row))

    def rotate_refresh_token(
        self, old_hash: str, new: RefreshToken, *, old_state: str = "rotated"
    ) -> bool:
        """Replace an active refresh token by ``new`` atomically; False if it was not active.

        The compare-and-set makes two concurrent refreshes with one token yield one winner.
        ``old_state`` exists for the known-bad ``no-rotation`` variant only.
        """
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE refresh_tokens SET state = ? WHERE token_hash = ? AND state = 'active'",
                (old_state, old_hash),
            )
            if cur.rowcount != 1:
                return False
            conn.execute(
                "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.token_hash,
                    new.family_id,
                    new.client_id,
                    new.user_id,
                    new.resource,
                    new.scope,
                    new.expires_at,
                    new.state,
                ),
            )
        return True

    def family_revoked(self, family_id: str) -> bool:
        """Whether a grant family was revoked (code replay, refresh reuse): its access tokens
        stop working at the gateway too (PK-05)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM refresh_tokens WHERE family_id = ? AND state = 'revoked' LIMIT 1",
                (family_id,),
            ).fetchone()
        return row is not None

    def revoke_family(self, family_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE refresh_tokens SET state = 'revoked' WHERE family_id = ?", (family_id,)
            )

    # -- upstream (workspace) tokens ---------------------------------------------------
    def delete_upstream_token(self, user_id: str, cache_key: str) -> None:
        """Forget one stored upstream token (the upstream refused it)."""
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM upstream_tokens WHERE user_id = ? AND cache_key = ?",
                (user_id, cache_key),
            )

    def get_upstream_token(self, user_id: str, cache_key: str) -> UpstreamToken | None:
        row = self._one(
            "SELECT * FROM upstream_tokens WHERE user_id = ? AND cache_key = ?",
            (user_id, cache_key),
        )
        return None if row is None else UpstreamToken(**dict(row))

    def put_upstream_token(self, t: UpstreamToken) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO upstream_tokens VALUES (?, ?, ?, ?, ?, ?)",
                (
                    t.user_id,
                    t.cache_key,
                    t.access_token,
                    t.token_type,
                    t.expires_at,
                    t.workspace_host,
                ),
            )

    # -- the broker's signing keys -----------------------------------------------------
    def add_signing_key(self, key: SigningKey) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO signing_keys VALUES (?, ?, ?, ?)",
                (key.kid, key.private_pem, key.created_at, key.active_from),
            )

    def signing_keys(self) -> list[SigningKey]:
        """Every stored signing key, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM signing_keys ORDER BY active_from, created_at"
            ).fetchall()
        return [SigningKey(**dict(r)) for r in rows]

    def delete_signing_key(self, kid: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM signing_keys WHERE kid = ?", (kid,))

    # -- audit -------------------------------------------------------------------------
    def add_audit(self, record: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO audit (time, user_id, client_id, resource, workspace_host, "
                "outcome, detail, request_id, event, upstream, tool, policy, user_email) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["time"],
                    record.get("user_id"),
                    record.get("client_id"),
                    record.get("resource"),
                    record.get("workspace_host"),
                    record["outcome"],
                    record.get("detail", ""),
                    record.get("request_id"),
                    *(record.get(c) for c in AUDIT_COLUMNS),
                ),
            )

    def audit_records(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        return [dict(r) for r in rows]
