"""The broker as an OpenID issuer of its own: signing keys, JWKS, discovery, federated assertions.

In the *federated* exchange flow (``BrokerConfig.exchange_flow = "federated"``) the broker does
not forward the user's Okta ID token to the workspace. It mints a short-lived JWT of its own —
``iss`` the broker, ``sub`` the user, ``act: {"sub": <MCP client>}`` (RFC 8693 §4.1: the client
acts for the user), ``aud`` the workspace — and RFC 8693-exchanges that. The platform trusts the
broker through a federation policy naming the broker's issuer URL; it finds the keys through
``<broker>/.well-known/openid-configuration`` → ``jwks_uri`` (``<broker>/jwks``), as it finds
any OIDC issuer's.

Keys (ES256, P-256: small signatures, fast to make) live in the broker's SQLite storage so a
restart keeps signing with the key relying parties already trust. Each key object is parsed
once and cached. Rotation never breaks a relying party:

* a new key is *published* at once but *signs* only from ``active_from`` = now + the publish
  lead, so relying parties that cache the JWKS have seen it before the first token using it;
* a superseded key stays published until every assertion it signed has expired (its
  successor's ``active_from`` + the assertion lifetime + clock skew), then it is deleted.

Rotation happens by itself when the signing key is older than ``rotation_interval``, and on
demand with :meth:`BrokerIssuer.rotate`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from broker.http_util import json_response
from broker.storage import SigningKey, Storage

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

    from broker.app import Broker

ALGORITHM = "ES256"
#: Tolerance for relying parties whose clocks run behind: a retired key stays published this
#: much longer than the last assertion it signed.
CLOCK_SKEW = 60.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    """The public half as a JWK (RFC 7517/7518 §6.2) with ``kid``, ``use`` and ``alg``."""
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
        "kid": kid,
        "use": "sig",
        "alg": ALGORITHM,
    }


def thumbprint(key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 7638 JWK thumbprint: a ``kid`` that names the key itself, not a counter."""
    jwk = public_jwk(key, "")
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


@dataclass(frozen=True)
class _LoadedKey:
    record: SigningKey
    private: ec.EllipticCurvePrivateKey


class BrokerIssuer:
    """Signing keys and assertions of one broker (see the module docstring)."""

    def __init__(
        self,
        storage: Storage,
        clock: Callable[[], float],
        *,
        assertion_lifetime: float,
        rotation_interval: float,
        publish_lead: float,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self.assertion_lifetime = assertion_lifetime
        self.rotation_interval = rotation_interval
        self.publish_lead = publish_lead
        self._lock = threading.Lock()
        self._keys: list[_LoadedKey] | None = None

    # -- keys ------------------------------------------------------------------------------
    def forget(self) -> None:
        """Drop the cached key objects (the storage was wiped; the next use makes a new key)."""
        with self._lock:
            self._keys = None

    def _loaded(self) -> list[_LoadedKey]:
        """The stored keys as key objects, parsed once (caller holds the lock)."""
        if self._keys is None:
            loaded = []
            for record in self._storage.signing_keys():
                private = serialization.load_pem_private_key(record.private_pem.encode(), None)
                if isinstance(private, ec.EllipticCurvePrivateKey):
                    loaded.append(_LoadedKey(record, private))
            self._keys = loaded
        return self._keys

    def _new_key(self, now: float, active_from: float) -> _LoadedKey:
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        record = SigningKey(
            kid=thumbprint(private), private_pem=pem, created_at=now, active_from=active_from
        )
        self._storage.add_signing_key(record)
        key = _LoadedKey(record, private)
        self._loaded().append(key)
        return key

    def _maintain(self, now: float) -> list[_LoadedKey]:
        """Create the first key, rotate a key that is due, delete keys nobody can need."""
        keys = self._loaded()
        if not keys:
            self._new_key(now, now)
            return self._loaded()
        newest = keys[-1]
        if newest.record.active_from <= now - self.rotation_interval:
            self._new_key(now, now + self.publish_lead)
        active = [k for k in keys if k.record.active_from <= now]
        # A key is needed while it signs (the newest active one) and until the last assertion
        # it signed has expired: that is when its successor became active, plus a lifetime.
        for older, successor in itertools.pairwise(active):
            retired_at = successor.record.active_from + self.assertion_lifetime + CLOCK_SKEW
            if retired_at <= now:
                self._storage.delete_signing_key(older.record.kid)
                keys.remove(older)
        return keys

    def rotate(self) -> str:
        """Publish a new key now; it signs from now + the publish lead. Returns its ``kid``."""
        now = self._clock()
        with self._lock:
            self._maintain(now)
            return self._new_key(now, now + self.publish_lead).record.kid

    def jwks(self) -> dict[str, Any]:
        """Every key a relying party may meet: the signing one, the next one, retiring ones."""
        now = self._clock()
        with self._lock:
            keys = self._maintain(now)
            return {"keys": [public_jwk(k.private, k.record.kid) for k in keys]}

    def _signing_key(self, now: float) -> _LoadedKey:
        keys = self._maintain(now)
        return [k for k in keys if k.record.active_from <= now][-1]

    # -- documents and assertions ----------------------------------------------------------
    @staticmethod
    def discovery(issuer: str) -> dict[str, Any]:
        """The OpenID discovery document relying parties read to find ``jwks_uri``.

        Only what a verifier of the broker's assertions needs: the broker issues no ID tokens
        to users, so there is no ``authorization_endpoint`` flow here beyond its OAuth
        metadata (RFC 8414, served separately for MCP clients)."""
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks",
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
        }

    def mint(
        self,
        *,
        issuer: str,
        subject: str,
        audience: str,
        actor: dict[str, str] | None,
        lifetime: float,
    ) -> tuple[str, dict[str, Any]]:
        """A signed assertion and its claims; ``actor`` None omits ``act``."""
        now = self._clock()
        issued = int(now)
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(lifetime),
            "jti": secrets.token_urlsafe(16),
        }
        if actor is not None:
            claims["act"] = actor
        return self.sign(claims, typ="JWT"), claims

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        """``claims`` signed with the current signing key (header ``kid`` and ``typ``)."""
        with self._lock:
            key = self._signing_key(self._clock())
        return jwt.encode(
            claims, key.private, algorithm=ALGORITHM, headers={"kid": key.record.kid, "typ": typ}
        )

    def verification_key(self, kid: object) -> ec.EllipticCurvePublicKey | None:
        """The public key published under ``kid`` (None for an unknown or retired one)."""
        with self._lock:
            for key in self._maintain(self._clock()):
                if key.record.kid == kid:
                    return key.private.public_key()
        return None


# -- endpoints -------------------------------------------------------------------------------
def discovery_endpoint(broker: Broker, request: Request) -> Response:
    """``GET /.well-known/openid-configuration``: served while the broker is an issuer (a
    federated upstream, or gateway tokens); a broker that is neither stays no OpenID Provider
    (404). The document carries the authorization-server metadata too, with
    ``code_challenge_methods_supported``: MCP clients that try OIDC discovery first must find
    it there (MC-07)."""
    if not is_issuer(broker):
        return json_response({"error": "not_found"}, 404)
    base = broker.base(request)
    document = {**broker.authorization_server_metadata(base), **BrokerIssuer.discovery(base)}
    return json_response(document, no_store=False)


def is_issuer(broker: Broker) -> bool:
    """Whether the broker signs tokens others verify with its published keys."""
    return broker.federated_exchange() or any(u.gateway for u in broker.upstreams.values())


def jwks_endpoint(broker: Broker, request: Request) -> Response:
    """``GET /jwks``: the published keys (cacheable; relying parties refetch on a new kid)."""
    if not is_issuer(broker):
        return json_response({"error": "not_found"}, 404)
    return json_response(broker.issuer.jwks(), no_store=False)
