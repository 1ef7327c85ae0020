"""Compact JWS by hand: base64url segments, signatures from pyjwt's algorithm objects.

The issuer must produce tokens a careful library refuses to make (``alg: none``, HS256 keyed
with a public key, headers in any order or with any members), so it does not go through
``jwt.encode``: it serialises the header and claims itself and signs the signing input with
the algorithm object pyjwt would use, or with :mod:`hmac` where pyjwt would refuse the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from jwt.algorithms import get_default_algorithms


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def json_bytes(value: Any) -> bytes:
    """Compact JSON, as pyjwt serialises (so a tampered payload differs by one byte only)."""
    return json.dumps(value, separators=(",", ":")).encode()


def signing_input(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json_bytes(header))}.{b64url(json_bytes(claims))}"


def signature(alg: str, key: Any, message: str) -> str:
    """The base64url signature of ``message`` with ``alg`` (a JWS algorithm pyjwt implements)."""
    algorithm = get_default_algorithms()[alg]
    return b64url(algorithm.sign(message.encode("ascii"), key))


def hs256(secret: bytes, message: str) -> str:
    """HMAC-SHA256 with any bytes as the secret, public key material included (JV-03)."""
    return b64url(hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest())


def compact(header: dict[str, Any], claims: dict[str, Any], alg: str, key: Any) -> str:
    """``header.payload.signature`` signed with ``alg``/``key``."""
    message = signing_input(header, claims)
    return f"{message}.{signature(alg, key, message)}"
