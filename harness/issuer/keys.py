"""The test issuer's keys: persisted as PEM so the JWKS and kids survive restarts.

A vendor registers the issuer once (issuer URL, JWKS URL) and may pin or cache its keys, so
``mcp-harness issuer`` must publish the same keys on every start: they live as PKCS#8 PEM files
(mode 0600) in a directory (mode 0700), are created on first use and reloaded afterwards. The
``kid`` is the RFC 7638 thumbprint, so it follows from the key material alone and cannot drift.

Files are written to a temporary name and linked into place, so a crash never leaves half a
key and two processes starting at once agree on one key (the loser loads the winner's file).
Parsed keys are cached per PEM content for the life of the process: loading an RSA PEM costs
about as much as signing a hundred tokens, and tests build many issuers on one directory.

Keys without a directory (``key_dir=None``) live in memory only, for tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from harness.errors import UsageError
from harness.issuer.jws import b64url

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: The key each JWS algorithm needs: RSA-2048 for RS*/PS*, the matching curve for ES*.
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
#: RFC 7638 §3.2: the required members of each key type, the only ones hashed.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the ``kid`` of a key."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True)
class IssuerKey:
    """A private key bound to one algorithm (RFC 8725 §3.1), with its thumbprint ``kid``."""

    alg: str
    private_key: PrivateKey = field(repr=False)
    kid: str = ""

    def __post_init__(self) -> None:
        if not self.kid:
            object.__setattr__(self, "kid", thumbprint(self._bare_jwk()))

    @property
    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def _bare_jwk(self) -> dict[str, Any]:
        public = self.public_key
        if isinstance(public, rsa.RSAPublicKey):
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        jwk.pop("key_ops", None)
        return jwk

    def public_jwk(self) -> dict[str, Any]:
        """The public half as published: key members plus ``kid``, ``alg``, ``use: sig``."""
        return {**self._bare_jwk(), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM: the bytes an RS→HS confusion attack keys HMAC with."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def generate(alg: str) -> IssuerKey:
    """A fresh key for ``alg`` (RS*/PS*: RSA-2048; ES256/384/512: its curve)."""
    private: PrivateKey
    if alg[:2] in ("RS", "PS"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg in _CURVES:
        private = ec.generate_private_key(_CURVES[alg]())
    else:
        raise ValueError(f"no key type for algorithm {alg!r}")
    return IssuerKey(alg, private)


_PARSED: dict[tuple[str, str], IssuerKey] = {}
_PARSED_LOCK = threading.Lock()


def _parse(path: Path, data: bytes, alg: str) -> IssuerKey:
    """The key in ``data`` (a PEM read from ``path``), parsed once per content and algorithm."""
    cache_key = (hashlib.sha256(data).hexdigest(), alg)
    with _PARSED_LOCK:
        cached = _PARSED.get(cache_key)
    if cached is not None:
        return cached
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UsageError(
            f"{path}: not an unencrypted PEM private key (corrupt key file?)"
        ) from None
    if alg[:2] in ("RS", "PS"):
        if not isinstance(private, rsa.RSAPrivateKey):
            raise UsageError(f"{path}: expected an RSA private key for {alg}")
    elif not (
        isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, _CURVES[alg])
    ):
        raise UsageError(f"{path}: expected a {_CURVES[alg].name} EC private key for {alg}")
    key = IssuerKey(alg, private)
    with _PARSED_LOCK:
        _PARSED[cache_key] = key
    return key


class KeyStore:
    """Named keys (``rs256``, ``attacker-es256`` ...) of one issuer, loaded or created lazily.

    With a directory each key is ``<dir>/<name>.pem``; without one, keys live in this object.
    A key is generated only when first asked for, so an issuer that never mints an ES512 token
    never pays for (or writes) a P-521 key.
    """

    def __init__(self, key_dir: Path | None) -> None:
        self.key_dir = key_dir
        self._keys: dict[str, IssuerKey] = {}
        self._lock = threading.Lock()
        if key_dir is not None:
            _prepare_dir(key_dir)

    def get(self, name: str, alg: str) -> IssuerKey:
        with self._lock:
            key = self._keys.get(name)
            if key is None:
                key = self._load_or_create(name, alg)
                self._keys[name] = key
            return key

    def path(self, name: str) -> Path | None:
        return None if self.key_dir is None else self.key_dir / f"{name}.pem"

    def _load_or_create(self, name: str, alg: str) -> IssuerKey:
        path = self.path(name)
        if path is None:
            return generate(alg)
        data = _read(path)
        if data is None:
            key = generate(alg)
            if _write_new(path, key.private_pem()):
                return key
            data = _read(path)  # another process created it first: use theirs
            if data is None:
                raise UsageError(f"{path}: key file vanished while it was being created")
        return _parse(path, data, alg)


def _prepare_dir(key_dir: Path) -> None:
    if key_dir.exists() and not key_dir.is_dir():
        raise UsageError(f"{key_dir}: key directory is not a directory")
    if not key_dir.exists():
        try:
            key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(key_dir, 0o700)  # mkdir's mode is masked by the umask
        except OSError as exc:
            raise UsageError(f"{key_dir}: cannot create key directory: {exc.strerror}") from None


def _read(path: Path) -> bytes | None:
    """The file's bytes, None if it does not exist; unreadable → :class:`UsageError`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read key file: {exc.strerror}") from None


def _write_new(path: Path, data: bytes) -> bool:
    """Create ``path`` (0600) with ``data`` atomically; False if it already exists.

    The temporary file is complete and synced before it gets its name, so readers see the
    whole key or no file. ``os.link`` refuses to overwrite, which settles a race between two
    processes creating the same key; where hard links are unsupported ``os.replace`` is used.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"{path.parent}: cannot write key file: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            os.replace(tmp, path)
        return True
    except OSError as exc:
        raise UsageError(f"{path}: cannot write key file: {exc.strerror}") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
