"""Signing keys and JWKS for mock tenants, on pyjwt + cryptography.

Every tenant has its own key and ``kid``. Key objects are created once and kept: generating an
RSA-2048 key costs ~38 ms and re-parsing a PEM on every signature is 160x slower than signing
with a loaded key (``../shared/research/perf-anchors.md``). :func:`fixture_key` therefore caches
keys per name for the life of the process, so a test suite that builds many sandboxes pays the
key generation once per tenant name.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SUPPORTED_ALGS = ("RS256", "ES256")


@dataclass(frozen=True)
class SigningKey:
    """A private key bound to one algorithm and one ``kid`` (RFC 8725 §3.1)."""

    kid: str
    alg: str
    private_key: Any
    public_key: Any = field(repr=False)

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Compact JWS of ``claims``; ``kid`` and ``alg`` from the key, ``typ`` JWT by default."""
        hdr = {"kid": self.kid, "typ": "JWT"}
        if headers:
            hdr.update(headers)
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=hdr)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with ``kid``, ``alg`` and ``use`` as Okta publishes them."""
        algo = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        jwk: dict[str, Any] = algo.to_jwk(self.public_key, as_dict=True)
        jwk.pop("key_ops", None)  # Okta and Databricks publish "use", not "key_ops"
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk


def generate_key(alg: str = "RS256", kid: str | None = None) -> SigningKey:
    """A fresh key pair (not cached): use for rotation and for deliberately foreign keys."""
    private: PrivateKeyTypes
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SUPPORTED_ALGS}")
    public: PublicKeyTypes = private.public_key()
    if kid is None:
        if isinstance(public, rsa.RSAPublicKey):
            material = RSAAlgorithm.to_jwk(public)
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            material = ECAlgorithm.to_jwk(public)
        kid = hashlib.sha256(material.encode()).hexdigest()[:20]
    return SigningKey(kid=kid, alg=alg, private_key=private, public_key=public)


_FIXTURE_KEYS: dict[tuple[str, str], SigningKey] = {}
_FIXTURE_LOCK = threading.Lock()


def fixture_key(name: str, alg: str = "RS256") -> SigningKey:
    """The process-wide key of a named tenant (e.g. ``okta:acme.okta.test``), created on first use.

    The ``kid`` is derived from the name, so it is stable across sandboxes of one process.
    """
    with _FIXTURE_LOCK:
        key = _FIXTURE_KEYS.get((name, alg))
        if key is None:
            kid = hashlib.sha256(f"{name}/{alg}".encode()).hexdigest()[:20]
            key = generate_key(alg, kid=kid)
            _FIXTURE_KEYS[(name, alg)] = key
        return key


class KeySet:
    """The keys one issuer publishes; the first is the active signing key.

    Rotation publishes a new active key and keeps the old ones verifiable until removed, as
    Okta does (``vendor-fidelity.md`` §C.5).
    """

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key set needs at least one key")
        self._keys = list(keys)
        self._lock = threading.Lock()

    @property
    def active(self) -> SigningKey:
        with self._lock:
            return self._keys[0]

    def keys(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys)

    def rotate(self, new_key: SigningKey | None = None) -> SigningKey:
        key = new_key or generate_key(self.active.alg)
        with self._lock:
            self._keys.insert(0, key)
        return key

    def remove(self, kid: str) -> None:
        with self._lock:
            remaining = [k for k in self._keys if k.kid != kid]
            if not remaining:
                raise ValueError("cannot remove the last key of a key set")
            self._keys = remaining

    def find(self, kid: str | None) -> SigningKey | None:
        with self._lock:
            return next((k for k in self._keys if k.kid == kid), None)

    def verify_signature(self, token: str) -> dict[str, Any]:
        """Claims of a token signed by one of these keys, with no time or audience checks.

        Mocks compare ``exp``/``nbf`` against the sandbox clock themselves: pyjwt would use
        the real time, which scenarios move away from.
        """
        return self.verify(
            token,
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
            },
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys()]}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return self.active.sign(claims, headers)

    def verify(
        self,
        token: str,
        *,
        algorithms: tuple[str, ...] = SUPPORTED_ALGS,
        options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Verify a token this key set issued (signature only unless ``kwargs`` ask for more).

        Raises :class:`jwt.InvalidTokenError` on any failure, including an unknown ``kid``.
        """
        header = jwt.get_unverified_header(token)
        key = self.find(header.get("kid"))
        if key is None:
            raise jwt.InvalidTokenError("unknown kid")
        if header.get("alg") != key.alg:
            raise jwt.InvalidAlgorithmError("algorithm does not match the key")
        return jwt.decode(
            token,
            key.public_key,
            algorithms=[a for a in algorithms if a == key.alg],
            options=options or {},  # type: ignore[arg-type]
            **kwargs,
        )
