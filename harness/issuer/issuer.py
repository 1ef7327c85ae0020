"""``TestIssuer``: the harness plays the vendor's trusted IdP (contract C1, REQUIREMENTS §5).

A vendor's STS only accepts subject tokens from issuers it trusts, so to test how it verifies
JWTs the harness must be such an issuer: the vendor registers this issuer's URL (and audiences,
subject claim) once, and the harness then mints clean tokens and tokens with one defect each
(:mod:`harness.issuer.defects`). The same object serves the discovery document and JWKS the
vendor fetches, and the ``jku`` URL whose fetches reveal an SSRF-prone verifier (JV-06).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from harness.errors import UsageError
from harness.issuer.defects import DefectContext, Draft, check_defect, sign
from harness.issuer.keys import IssuerKey, KeyStore
from harness.issuer.server import IssuerApp, ServerThread

#: Published keys: the two algorithms Databricks (and most STSs) document.
PUBLISHED = {"RS256": "rs256", "ES256": "es256"}
#: Unpublished keys by the algorithm they sign; RS/PS algorithms share one RSA key.
_ATTACKER = {
    "RS256": ("attacker-rs256", "RS256"),
    "PS256": ("attacker-rs256", "RS256"),
    "RS384": ("attacker-rs256", "RS256"),
    "ES256": ("attacker-es256", "ES256"),
    "ES512": ("attacker-es512", "ES512"),
}
#: Nonces whose fetches are remembered (oldest forgotten first): a scanner cannot fill memory.
MAX_JKU_NONCES = 1000
MAX_FETCHES_PER_NONCE = 20


class TestIssuer:
    """An OIDC-style issuer with persisted keys that mints clean and defective JWTs.

    ``key_dir`` keeps the keys across runs (None: in memory, for tests); ``issuer_url`` is
    the public URL when a tunnel or proxy fronts ``host:port``; ``clock`` gives ``iat``.
    """

    __test__ = False  # a library class, not a pytest test class

    def __init__(
        self,
        key_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        issuer_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self._issuer_url = issuer_url.rstrip("/") if issuer_url else None
        self._clock = clock
        self.keys = KeyStore(Path(key_dir) if key_dir is not None else None)
        self._hs_secret = secrets.token_bytes(32)
        self._server: ServerThread | None = None
        self._jku: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._jku_lock = threading.Lock()
        self._context = DefectContext(
            attacker=self.attacker_key,
            hs_secret=self._hs_secret,
            jku_url=self.jku_url,
            published=self.signing_key,
        )

    # -- URLs ------------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        """The ``iss`` of every token and the discovery document's ``issuer`` (no slash)."""
        if self._issuer_url is not None:
            return self._issuer_url
        port = self.bound_port
        if not port:
            raise RuntimeError("TestIssuer on port 0 has no URL until start()")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    @property
    def bound_port(self) -> int:
        """The port served on (differs from ``port`` only for port 0), or ``port`` if stopped."""
        return self._server.port if self._server is not None else self.port

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks.json"

    def jku_url(self, nonce: str) -> str:
        """A URL on this issuer that serves an attacker JWKS and records each fetch."""
        return f"{self.issuer}/jku/{quote(nonce, safe='')}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> TestIssuer:
        """Serve discovery, JWKS and the ``jku`` recorder; a taken port is a UsageError."""
        if self._server is not None:
            return self
        self.signing_keys()  # create or load the keys before a vendor can ask for them
        try:
            self._server = ServerThread(IssuerApp(self), self.host, self.port)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(
                f"test issuer cannot listen on {self.host}:{self.port}: {reason}"
            ) from None
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> TestIssuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- keys --------------------------------------------------------------------------------
    def signing_key(self, alg: str) -> IssuerKey:
        """The published key for ``alg`` (RS256 or ES256)."""
        if alg not in PUBLISHED:
            raise ValueError(f"the test issuer signs with {' or '.join(PUBLISHED)}, not {alg!r}")
        return self.keys.get(PUBLISHED[alg], alg)

    def signing_keys(self) -> list[IssuerKey]:
        return [self.signing_key(alg) for alg in PUBLISHED]

    def attacker_key(self, alg: str) -> IssuerKey:
        """An unpublished key for ``alg``, made once per issuer (kept in ``key_dir`` if set,
        so a ``jku`` token minted by ``issuer --mint`` verifies with the served JWKS)."""
        name, key_alg = _ATTACKER[alg]
        key = self.keys.get(name, key_alg)
        return key if key.alg == alg else IssuerKey(alg, key.private_key, key.kid)

    @property
    def hs_secret(self) -> bytes:
        """The unpublished secret of the ``alg-HS256-secret`` defect (for tests that prove the
        token is a real HS256 MAC, only under a key the verifier cannot know)."""
        return self._hs_secret

    def jwks(self) -> dict[str, Any]:
        """The published keys (public members, ``kid``, ``alg``, ``use: sig``)."""
        return {"keys": [key.public_jwk() for key in self.signing_keys()]}

    def attacker_jwks(self) -> dict[str, Any]:
        """What the ``jku`` URL serves: the keys that sign the ``jku`` defect's tokens."""
        return {"keys": [self.attacker_key(alg).public_jwk() for alg in PUBLISHED]}

    # -- tokens --------------------------------------------------------------------------------
    def mint(
        self,
        *,
        subject: str,
        audience: str | list[str] | None,
        lifetime: float = 300,
        alg: str = "RS256",
        typ: str | None = "JWT",
        defect: str | None = None,
        claims: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """A compact JWT: ``iss``, ``sub``, ``aud`` (None: absent), ``iat``, ``exp`` = iat +
        lifetime (whole seconds), a fresh ``jti``; then ``claims`` override, ``omit`` removes,
        ``headers`` override header members (None drops one), and ``defect`` applies last.
        """
        check_defect(defect)
        key = self.signing_key(alg)
        iat = int(self._clock())
        body: dict[str, Any] = {"iss": self.issuer, "sub": subject}
        if audience is not None:
            body["aud"] = audience if isinstance(audience, str) else list(audience)
        body.update({"iat": iat, "exp": iat + int(lifetime), "jti": secrets.token_hex(16)})
        body.update(claims or {})
        for name in omit:
            body.pop(name, None)
        header: dict[str, Any] = {"alg": alg}
        if typ is not None:
            header["typ"] = typ
        header["kid"] = key.kid
        for name, value in (headers or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
        return sign(Draft(header, body, key), defect, self._context)

    # -- jku recorder --------------------------------------------------------------------------
    def record_jku_fetch(self, nonce: str, user_agent: str | None, remote: str | None) -> None:
        fetch = {"time": self._clock(), "user_agent": user_agent, "remote_addr": remote}
        with self._jku_lock:
            fetches = self._jku.pop(nonce, [])
            if len(fetches) < MAX_FETCHES_PER_NONCE:
                fetches.append(fetch)
            self._jku[nonce] = fetches
            while len(self._jku) > MAX_JKU_NONCES:
                self._jku.popitem(last=False)

    def jku_fetches(self, nonce: str) -> list[dict[str, Any]]:
        """Each fetch of ``jku_url(nonce)``: time (issuer clock), User-Agent, remote address."""
        with self._jku_lock:
            return [dict(f) for f in self._jku.get(nonce, [])]

    def jku_fetched(self, nonce: str) -> bool:
        return bool(self.jku_fetches(nonce))

    # -- what a vendor registers -----------------------------------------------------------------
    def federation_values(self, audiences: list[str], subject_claim: str = "sub") -> dict[str, Any]:
        """Issuer, JWKS URL, audiences and subject claim: what a trust policy names."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "audiences": list(audiences),
            "subject_claim": subject_claim,
        }

    def databricks_policy(
        self, audiences: list[str], subject_claim: str = "sub", description: str | None = None
    ) -> dict[str, Any]:
        """A Databricks account federation policy body trusting this issuer.

        ``POST /api/2.0/accounts/<id>/federationPolicies?policy_id=...`` takes it as is (the
        ``oidc_policy`` shape of ``mocks/databricks/policies.py``). No ``jwks_uri``: Databricks
        finds the keys through the issuer's discovery document, as for any IdP.
        """
        return {
            "description": description or "mcp-harness test issuer (conformance testing only)",
            "oidc_policy": {
                "issuer": self.issuer,
                "audiences": list(audiences),
                "subject_claim": subject_claim,
            },
        }
