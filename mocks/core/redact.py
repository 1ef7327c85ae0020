"""Redaction: secrets never appear whole in journals, logs or reports.

A JWT is rendered as its decoded header and claims plus a fingerprint, never its signature or
the whole compact string; any other secret becomes ``<redacted len=N sha256:xxxx>``. The
fingerprint (first 12 hex digits of SHA-256) is stable, so a report can say "the token that
workspace A issued reached workspace B" without showing the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
#: Form fields, JSON members and headers whose values are secrets.
SECRET_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "subject_token",
        "actor_token",
        "token",
        "code",
        "code_verifier",
        "client_secret",
        "client_assertion",
        "assertion",
        "password",
        "id_token_hint",
        "authorization",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "registration_access_token",
        "state_secret",
    }
)


def fingerprint(secret: str) -> str:
    """Stable short identifier of a secret: ``sha256:`` and 12 hex digits."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def decode_jwt_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a compact JWS without verifying it; ``None`` if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def describe_secret(value: str) -> dict[str, Any] | str:
    """A JWT as ``{"jwt": {"header", "claims"}, "fingerprint"}``, anything else as a short mask."""
    decoded = decode_jwt_unverified(value)
    if decoded is not None:
        header, claims = decoded
        return {"jwt": {"header": header, "claims": claims}, "fingerprint": fingerprint(value)}
    return mask(value)


def mask(value: str) -> str:
    return f"<redacted len={len(value)} {fingerprint(value)}>"


def redact_text(text: str) -> str:
    """Replace every JWT-looking substring of free text by its mask (used on bodies and logs)."""
    return JWT_RE.sub(lambda m: f"<jwt {fingerprint(m.group(0))}>", text)


def redact_header(name: str, value: str) -> str:
    lname = name.lower()
    if lname in ("authorization", "proxy-authorization"):
        scheme, _, cred = value.partition(" ")
        if not cred:
            return mask(value)
        return f"{scheme} {mask(cred.strip())}"
    if lname in SECRET_FIELDS:
        return mask(value)
    return redact_text(value)


def redact_mapping(data: Any) -> Any:
    """Deep-copy ``data`` with every secret member replaced by its description."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(key, str) and key.lower() in SECRET_FIELDS and isinstance(value, str):
                out[key] = describe_secret(value) if value else value
            else:
                out[key] = redact_mapping(value)
        return out
    if isinstance(data, list):
        return [redact_mapping(item) for item in data]
    if isinstance(data, str):
        return redact_text(data)
    return data


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, cred = authorization.partition(" ")
    if scheme.lower() != "bearer" or not cred.strip():
        return None
    return cred.strip()
