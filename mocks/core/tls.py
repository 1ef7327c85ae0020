"""HTTPS for the sandbox: a throwaway CA, per-host certificates on demand, TLS server contexts.

Some clients refuse plain HTTP (``okta-jwt-verifier`` accepts ``https://`` issuers only; Java
brokers often pin the scheme), so the sandbox can serve every virtual host over TLS (DESIGN
§2). A client trusts one file, the CA certificate (``ca.pem``), and reaches the hosts through
the proxy port with ``CONNECT``; the server presents a leaf certificate whose only SAN is the
requested host, minted on first use and cached.

Keys are ECDSA P-256: generating one costs microseconds where RSA-2048 costs ~40 ms
(``../shared/research/perf-anchors.md``), so a fresh CA per sandbox is free. Every leaf shares
one key (a sandbox has a dozen hosts; per-host keys would buy no isolation, since one process
holds them all). Certificates follow the rules strict verifiers enforce (Python 3.13's
``VERIFY_X509_STRICT``, Java, Go): critical basicConstraints and keyUsage on the CA, subject and
authority key identifiers, a SAN and ``serverAuth`` on each leaf, validity starting a day back
against client clock skew. TLS validity uses real time, never the sandbox clock: advancing the
clock to expire a token must not expire the certificates.

The CA (``ca.pem``, ``ca-key.pem``) lives in a directory: a private temporary one per sandbox by
default (removed when the object is collected or the process exits), or a given one. A given
directory that already holds a valid CA is reused, so a truststore imported once (Java's
``keytool``) keeps working across ``mcp-harness serve --tls --ca-dir DIR`` runs; creation there
is serialized by a lock file, so parallel workers sharing it agree on one CA. Leaf keys and
chain files always stay in a private temporary directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import re
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
LEAF_KEY_FILE = "leaf-key.pem"
CA_COMMON_NAME = "mcp-broker-harness sandbox CA"
CA_LIFETIME = dt.timedelta(days=3650)
LEAF_LIFETIME = dt.timedelta(days=397)  # the CA/Browser Forum maximum, which clients enforce
BACKDATE = dt.timedelta(days=1)
LOOPBACK_CERT_NAMES = ("localhost", "127.0.0.1", "::1")
_SAFE_NAME = re.compile(r"[^a-z0-9.-]")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by the owner only (a CA key that others can read signs anything)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """Serialize CA creation in a shared directory, so a key never pairs with another's cert."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return x509.DNSName(name)


class SandboxCA:
    """A certificate authority for the sandbox hosts, with cached per-host server contexts.

    ``path`` is the CA certificate (PEM) to hand to clients (``HARNESS_CA_BUNDLE``,
    ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, a Java truststore import).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        # Leaf keys and chain files stay private to this object even when the CA directory is
        # shared (pytest-xdist workers, several sandboxes): no process loads another's files.
        self._work = tempfile.TemporaryDirectory(prefix="mcp-harness-tls-")
        self._private = Path(self._work.name)
        self.directory = Path(directory) if directory is not None else self._private
        self.directory.mkdir(parents=True, exist_ok=True)
        with _dir_lock(self.directory):
            self._key, self.certificate = self._load_or_create()
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        _write_private(self._private / LEAF_KEY_FILE, _pem_key(self._leaf_key))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._client_context: ssl.SSLContext | None = None
        self._direct: ssl.SSLContext | None = None

    # -- the CA ----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The CA certificate file (PEM): what clients must trust."""
        return self.directory / CA_FILE

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def _load_or_create(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        cert_path, key_path = self.directory / CA_FILE, self.directory / CA_KEY_FILE
        if cert_path.exists() and key_path.exists():
            try:
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
                key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
                if (
                    isinstance(key, ec.EllipticCurvePrivateKey)
                    and cert.not_valid_after_utc > _now() + LEAF_LIFETIME
                    and cert.public_key() == key.public_key()
                ):
                    return key, cert
                log.warning("CA in %s is expiring, expired or not ours: replacing it", cert_path)
            except ValueError as exc:
                log.warning("CA in %s is unreadable (%s): replacing it", cert_path, exc)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
        now = _now()
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(key_path, _pem_key(key))
        tmp = cert_path.with_suffix(".tmp")
        tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, cert_path)  # a reader never sees half a CA file
        return key, cert

    # -- leaf certificates -------------------------------------------------------------------
    def issue(self, *names: str) -> x509.Certificate:
        """A server certificate for ``names`` (DNS names or IP addresses), signed by the CA."""
        now = _now()
        public = self._leaf_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + LEAF_LIFETIME, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )

    def context_for(self, host: str) -> ssl.SSLContext:
        """The server-side context presenting ``host``'s certificate (minted once, cached)."""
        host = host.lower()
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                names = LOOPBACK_CERT_NAMES if host in LOOPBACK_CERT_NAMES else (host,)
                context = self._server_context(host, self.issue(*names))
                self._contexts[host] = context
            return context

    def _server_context(self, host: str, cert: x509.Certificate) -> ssl.SSLContext:
        # load_cert_chain reads files only; the chain file is the leaf then the CA.
        chain = self._private / f"{_SAFE_NAME.sub('_', host)}.pem"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self.pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(chain, self._private / LEAF_KEY_FILE)
        context.set_alpn_protocols(["http/1.1"])  # the server speaks HTTP/1.1 only, never h2
        return context

    def direct_context(self, serves: Callable[[str], bool]) -> ssl.SSLContext:
        """The context for TLS straight to the server's port (no CONNECT).

        It presents the loopback certificate (``https://127.0.0.1:<port>/_harness/…``), or,
        when the client names a host by SNI that ``serves`` accepts (``curl --resolve``), that
        host's certificate. A CONNECT tunnel never uses it: it is wrapped with its target's
        context, so a client asking there for another name fails verification, as it would
        against a real server.
        """

        def pick(sock: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
            if name and serves(name.lower()):
                sock.context = self.context_for(name)

        with self._lock:
            if self._direct is None:
                context = self._server_context("_direct", self.issue(*LOOPBACK_CERT_NAMES))
                context.sni_callback = pick  # type: ignore[assignment]
                self._direct = context
            return self._direct

    # -- the client side -----------------------------------------------------------------------
    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this CA only (for the mocks' own calls to each other)."""
        with self._lock:
            if self._client_context is None:
                self._client_context = ssl.create_default_context(cadata=self.pem.decode())
            return self._client_context

    def cleanup(self) -> None:
        """Remove the private files now (a given CA directory is left in place)."""
        self._work.cleanup()
