"""Client ID metadata documents: URL-shaped ``client_id``s (MCP 2025-11-25 Client Registration,
draft-ietf-oauth-client-id-metadata-document), fetched through a guarded client.

A URL ``client_id`` makes the broker fetch an attacker-chosen URL, so the fetch is the
server-side request forgery surface MCP's security notes warn about (MC-09). The guards:

* https only; plain http only for a ``*.test`` host while the sandbox is plain HTTP (no
  ``upstream_ca_bundle``: a TLS sandbox serves https). ``.test`` (RFC 6761) never exists on the
  Internet, so such hosts are fetched only through the configured sandbox proxy.
* Every other host is resolved first and refused when any address is not global (loopback,
  private, link-local, CGNAT, reserved, multicast), then fetched directly, never through the
  proxy, connecting to the checked address itself (the name stays in ``Host`` and the TLS
  server name), so a DNS-rebinding answer with a TTL of 0 cannot slip in between check and use.
* At most :data:`MAX_BYTES`, a total deadline of :data:`FETCH_TIMEOUT` seconds, no redirects,
  status 200, ``application/json``, a JSON object.
* The document's ``client_id`` must equal the URL exactly (string comparison); its redirect
  URIs follow the registration rules (:func:`broker.registration.validate_metadata`) and are then
  matched exactly at ``/authorize``; it must be a public client (``none``: the draft forbids
  shared secrets in a document anyone can read).

Accepted documents are cached per HTTP cache headers on the broker clock (``max-age``,
``no-store``/``no-cache``: not cached; default :data:`DEFAULT_TTL`, at most :data:`MAX_TTL`)
and stored as clients, so ``/token`` knows the client. Failures are not cached.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from broker.errors import OAuthError
from broker.registration import validate_metadata
from broker.storage import Client

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger("broker.client_metadata")

MAX_BYTES = 5 * 1024
FETCH_TIMEOUT = 5.0
DEFAULT_TTL = 300.0
MAX_TTL = 24 * 3600.0
SANDBOX_SUFFIX = ".test"
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)

Resolver = Callable[[str, int], list[str]]


class ClientMetadataError(Exception):
    """The ``client_id`` URL or its document is unacceptable; the message says why (shown to
    the user at ``/authorize``, so it names the URL and the rule, never response bodies)."""


def is_url_client_id(client_id: str) -> bool:
    """Whether ``client_id`` is URL-shaped (a metadata document), not a registered id."""
    return client_id.startswith(("https://", "http://"))


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, by the system resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def addresses_of(url: str, resolve: Resolver = resolve_addresses) -> list[str]:
    """The addresses a fetch of ``url`` would connect to: an IP literal itself, a name as
    resolved; ``[]`` for a sandbox host (the proxy reaches it), a malformed URL or a name that
    does not resolve. Resolved once per fetch: the check and the connection use this list."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return []
    host = (parts.hostname or "").lower()
    if not host or host.endswith(SANDBOX_SUFFIX):
        return []
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        return resolve(host, port)
    except (OSError, UnicodeError):
        return []


def url_refusal(
    url: str, addresses: list[str], *, sandbox_proxy: bool, sandbox_http: bool
) -> str | None:
    """Why ``url`` (connecting to ``addresses``) must not be fetched as a client ID metadata
    document, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "the client_id is not a valid URL"
    host = (parts.hostname or "").lower()
    if not host:
        return "the client_id URL has no host"
    if parts.fragment or "#" in url:
        return "the client_id URL must not have a fragment"
    if parts.username is not None or parts.password is not None:
        return "the client_id URL must not carry credentials"
    segments = parts.path.split("/")
    if parts.path in ("", "/") or "." in segments or ".." in segments:
        return "the client_id URL needs a path without dot segments"
    sandbox_host = host.endswith(SANDBOX_SUFFIX)
    if parts.scheme != "https" and not (parts.scheme == "http" and sandbox_host and sandbox_http):
        return "the client_id URL must use https"
    if sandbox_host:
        return None if sandbox_proxy else f"{host} is a sandbox host and no sandbox proxy is set"
    if not addresses:
        return f"{host} does not resolve"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return f"{host} resolves to a non-public address ({ip}); it is not fetched"
    return None


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` with its host replaced by the checked ``address``, plus the ``Host`` header and
    the TLS server name that keep it the same request: no second DNS lookup can rebind it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = parts.netloc.rpartition("@")[2]
    target = parts._replace(netloc=netloc).geturl()
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, {"Host": host_header}, extensions


def cache_ttl(cache_control: str | None) -> float:
    """Seconds an accepted document may be reused, from its ``Cache-Control``."""
    value = (cache_control or "").lower()
    if "no-store" in value or "no-cache" in value:
        return 0.0
    match = _MAX_AGE.search(value)
    if match:
        return min(float(match.group(1)), MAX_TTL)
    return DEFAULT_TTL


@dataclass(frozen=True)
class _Cached:
    client: Client
    expires_at: float


class ClientMetadataFetcher:
    """Fetches, validates and caches client ID metadata documents for one broker."""

    def __init__(
        self,
        *,
        proxied: httpx.Client,
        sandbox_proxy: bool,
        ca_bundle: str | None,
        clock: Callable[[], float],
        resolve: Resolver = resolve_addresses,
        direct: httpx.Client | None = None,
    ) -> None:
        self.proxied = proxied
        self.sandbox_proxy = sandbox_proxy
        self.sandbox_http = ca_bundle is None
        self.clock = clock
        self.resolve = resolve
        self._ca_bundle = ca_bundle
        self._direct = direct
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def refusal(self, url: str, addresses: list[str]) -> str | None:
        """The reference rules of :func:`url_refusal` for this broker's configuration."""
        return url_refusal(
            url, addresses, sandbox_proxy=self.sandbox_proxy, sandbox_http=self.sandbox_http
        )

    def client(self, broker: Broker, url: str) -> Client:
        """The client described at ``url``; raises :class:`ClientMetadataError`."""
        now = self.clock()
        with self._lock:
            cached = self._cache.get(url)
        # A reset broker (storage wiped between scenarios) has forgotten the client: refetch.
        if (
            cached is not None
            and cached.expires_at > now
            and broker.storage.get_client(url) is not None
        ):
            return cached.client
        addresses = addresses_of(url, self.resolve)
        reason = broker.client_metadata_refusal(url, addresses)
        if reason is not None:
            log.info("client metadata URL refused: %s", reason)
            raise ClientMetadataError(reason)
        body, cache_control = self._fetch(url, addresses)
        client = self._validate(broker, url, body, now)
        ttl = cache_ttl(cache_control)
        with self._lock:
            if ttl > 0:
                self._cache[url] = _Cached(client, now + ttl)
            else:
                self._cache.pop(url, None)
        if broker.storage.get_client(url) is None:
            try:
                broker.storage.add_client(client)
            except sqlite3.IntegrityError:  # a concurrent request stored it first
                pass
        return client

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()

    # -- internals -------------------------------------------------------------------------
    def _direct_client(self) -> httpx.Client:
        """Every host but the sandbox's is fetched directly, never proxied (a proxy would
        resolve the name again, after our address check)."""
        if self._direct is None:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=self._ca_bundle) if self._ca_bundle else True
            )
            self._direct = httpx.Client(
                trust_env=False, verify=verify, timeout=FETCH_TIMEOUT, follow_redirects=False
            )
        return self._direct

    def _fetch(self, url: str, addresses: list[str]) -> tuple[bytes, str | None]:
        deadline = time.monotonic() + FETCH_TIMEOUT  # a network guard: wall time, not the clock
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        extensions: dict[str, Any] = {}
        if (urlsplit(url).hostname or "").lower().endswith(SANDBOX_SUFFIX):
            client, target = self.proxied, url
        else:
            client, target = self._direct_client(), url
            if addresses:
                target, host, extensions = pinned(url, addresses[0])
                headers.update(host)
        try:
            with client.stream(
                "GET",
                target,
                headers=headers,
                timeout=FETCH_TIMEOUT,
                follow_redirects=False,
                extensions=extensions,
            ) as response:
                if response.status_code != 200:
                    hint = " (redirects are not followed)" if response.is_redirect else ""
                    raise ClientMetadataError(
                        f"fetching the client metadata document answered HTTP "
                        f"{response.status_code}{hint}"
                    )
                mimetype = response.headers.get("content-type", "").split(";")[0].strip()
                if mimetype.lower() != "application/json":
                    raise ClientMetadataError(
                        f"the client metadata document must be application/json, "
                        f"not {mimetype or 'untyped'}"
                    )
                if response.headers.get("content-encoding", "identity").lower() != "identity":
                    raise ClientMetadataError("the client metadata document must not be encoded")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_BYTES:
                    raise ClientMetadataError(_too_large())
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise ClientMetadataError(_too_large())
                    if time.monotonic() > deadline:
                        raise ClientMetadataError(_too_slow())
                return bytes(body), response.headers.get("cache-control")
        except httpx.TimeoutException:
            raise ClientMetadataError(_too_slow()) from None
        except httpx.HTTPError as exc:
            raise ClientMetadataError(
                f"the client metadata document could not be fetched ({type(exc).__name__})"
            ) from None

    def _validate(self, broker: Broker, url: str, body: bytes, now: float) -> Client:
        try:
            document: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ClientMetadataError("the client metadata document is not valid JSON") from None
        if not isinstance(document, dict):
            raise ClientMetadataError("the client metadata document must be a JSON object")
        if not broker.client_metadata_id_matches(document.get("client_id"), url):
            raise ClientMetadataError(
                "the document's client_id is not exactly the URL it was fetched from"
            )
        if "client_secret" in document or "client_secret_expires_at" in document:
            raise ClientMetadataError("a client metadata document must not carry a secret")
        if document.get("token_endpoint_auth_method", "none") != "none":
            raise ClientMetadataError(
                "a client metadata document client must use token_endpoint_auth_method none"
            )
        try:
            registered = validate_metadata(document, check_uri=broker.check_redirect_uri)
        except OAuthError as exc:
            raise ClientMetadataError(f"client metadata document: {exc.description}") from None
        return Client(url, None, registered, int(now))


def _too_large() -> str:
    return f"the client metadata document exceeds {MAX_BYTES} bytes"


def _too_slow() -> str:
    return f"the client metadata document did not arrive within {FETCH_TIMEOUT:g} s"
