"""Deterministic sandboxes: the same seed gives the same keys, ``kid``s and generated ids.

A failing run is easiest to investigate when it can be replayed byte for byte: with
``--seed`` (or ``POST /_harness/seed``) every tenant key, every ``kid`` and every id a mock
generates (codes, ``jti``s, request ids) come from the seed, so two runs produce the same
tokens for the same steps. Without a seed, keys are random and ids come from :mod:`secrets`.

cryptography cannot generate an RSA key from a seed, so :func:`seeded_rsa_key` finds the two
primes with a seeded search (Miller-Rabin, 1024-bit primes) and lets cryptography build and
check the key from its numbers. These are sandbox keys: determinism is the point, secrecy is
not, and they are never used outside the sandbox.
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
import threading
import uuid
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mocks.core.jose import SUPPORTED_ALGS, SigningKey

_PUBLIC_EXPONENT = 65537
_SMALL_PRIMES = [p for p in range(3, 8000) if all(p % q for q in range(2, int(p**0.5) + 1))]
#: One gcd with the product of the small primes replaces ~1000 trial divisions (in C).
_PRIMORIAL = math.prod(_SMALL_PRIMES)


def _rng(seed: int, name: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _is_probable_prime(n: int, rng: random.Random, rounds: int = 5) -> bool:
    # 5 rounds: FIPS 186-5 Table B.1 for random 1024-bit candidates (error < 2^-100).
    if math.gcd(n, _PRIMORIAL) != 1:
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        # Top two bits set so that p*q has exactly 2*bits bits; odd.
        candidate = rng.getrandbits(bits) | (0b11 << (bits - 2)) | 1
        if candidate % _PUBLIC_EXPONENT != 1 and _is_probable_prime(candidate, rng):
            return candidate


def seeded_rsa_key(seed: int, name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    rng = _rng(seed, name)
    p = _prime(bits // 2, rng)
    q = _prime(bits // 2, rng)
    while q == p:
        q = _prime(bits // 2, rng)
    phi = (p - 1) * (q - 1)
    d = pow(_PUBLIC_EXPONENT, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(_PUBLIC_EXPONENT, p * q),
    )
    return numbers.private_key()


@cache
def seeded_key(seed: int, name: str, alg: str = "RS256") -> SigningKey:
    """The key of tenant ``name`` under ``seed``; cached, since RSA derivation costs ~0.1 s."""
    kid = hashlib.sha256(f"{seed}/{name}/{alg}".encode()).hexdigest()[:20]
    if alg == "RS256":
        private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = seeded_rsa_key(seed, name)
    elif alg == "ES256":
        order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
        scalar = _rng(seed, name).randrange(1, order)
        private = ec.derive_private_key(scalar, ec.SECP256R1())
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SUPPORTED_ALGS}")
    return SigningKey(kid=kid, alg=alg, private_key=private, public_key=private.public_key())


class IdSource:
    """Where mocks take generated ids and opaque secrets from: seeded, or :mod:`secrets`."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self.seed = seed
            self._rng = None if seed is None else _rng(seed, "ids")

    def token_bytes(self, n: int) -> bytes:
        with self._lock:
            if self._rng is None:
                return secrets.token_bytes(n)
            return self._rng.randbytes(n)

    def token_hex(self, n: int = 16) -> str:
        return self.token_bytes(n).hex()

    def token_urlsafe(self, n: int = 32) -> str:
        import base64

        return base64.urlsafe_b64encode(self.token_bytes(n)).rstrip(b"=").decode()

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.token_bytes(16), version=4)
