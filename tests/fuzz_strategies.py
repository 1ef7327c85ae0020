"""Shared pieces of the fuzz suites: hypothesis strategies, a raw HTTP sender, state snapshots.

A plain module (not a conftest) so each fuzz suite imports exactly what it uses. Three kinds
of helpers live here:

* **strategies** for inputs no well-behaved client sends: form and JSON bodies with random
  keys and values, raw bodies (non-UTF-8 bytes, duplicate keys, huge values, a content type
  that lies), ``Authorization`` garbage, token strings shaped like JWTs but broken in every
  segment, path segments with percent-encodings, dot segments and NUL;
* :func:`raw_request`, which writes the request bytes itself: httpx (rightly) normalises dot
  segments, refuses control characters and re-encodes paths, so what a hostile client can put
  on the wire can only be sent by hand;
* :func:`model_state`, a comparable rendering of a model object graph, so a test can prove a
  rejected request changed nothing (token stores, clients, grants, users, policies), and
  :func:`state_diff` to say where it did.
"""

from __future__ import annotations

import base64
import enum
import http.client
import json
import os
import socket
import string
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# -- settings ------------------------------------------------------------------------------------


def fuzz_settings(examples: int) -> settings:
    """``examples`` cases per property (``FUZZ_EXAMPLES=<n>`` overrides them all, for a deeper
    run before a release). Randomisation comes from the profile (tests/conftest.py): the
    default ``ci`` profile is derandomized, so a failure in CI reproduces anywhere."""
    override = os.environ.get("FUZZ_EXAMPLES")
    return settings(
        max_examples=int(override) if override else examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# -- vocabulary --------------------------------------------------------------------------------

#: Parameter names real clients send, so the fuzzer reaches validation past "unknown grant".
OAUTH_NAMES = (
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "refresh_token",
    "scope",
    "state",
    "response_type",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "audience",
    "resource",
    "client_assertion",
    "client_assertion_type",
    "authorization_details",
    "token",
    "token_type_hint",
    "assertion",
    "username",
    "password",
    "consent_ticket",
    "decision",
)
GRANTS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "password",
)
TOKEN_TYPES = (
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:access_token",
    "urn:ietf:params:oauth:token-type:id-jag",
)

#: Text that breaks naive parsers: control characters, long runs, JSON and JWT look-alikes.
#: Unpaired surrogates are left out (they cannot be sent as UTF-8); raw bytes cover the rest.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(
        [
            "",
            " ",
            "null",
            "{}",
            "[]",
            '{"a":',
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            "a.b.c",
            "....",
            "%00",
            "\x00",
            "\r\nX-Injected: 1",
            "x" * 5000,
            "../../etc/passwd",
            "http://127.0.0.1/callback",
            "openid email offline_access",
        ]
    ),
)
form_value = st.one_of(nasty_text, st.sampled_from(GRANTS), st.sampled_from(TOKEN_TYPES))
forms = st.dictionaries(
    st.one_of(st.sampled_from(OAUTH_NAMES), st.text(min_size=1, max_size=10)),
    form_value,
    max_size=8,
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        nasty_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

# -- tokens ----------------------------------------------------------------------------------------


_B64 = string.ascii_letters + string.digits + "-_"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_JOSE_HEADERS = st.one_of(
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["none", "None", "NONE", "RS256", "ES256", "HS256", "", "xx"])},
        optional={
            "kid": nasty_text,
            "typ": st.sampled_from(["JWT", "at+jwt", "oauth-id-jag+jwt", "", "x"]),
            "jku": st.just("http://127.0.0.1:1/jwks"),
            "crit": st.just(["exp"]),
            "jwk": st.just({"kty": "oct", "k": "AAAA"}),
        },
    ),
    json_values,
)
_CLAIMS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "iss": nasty_text,
            "sub": nasty_text,
            "aud": st.one_of(nasty_text, st.lists(nasty_text, max_size=3)),
            "exp": st.one_of(st.integers(), nasty_text, st.floats(allow_nan=False)),
            "iat": st.one_of(st.integers(), nasty_text),
            "nbf": st.integers(),
            "jti": nasty_text,
            "scope": st.one_of(nasty_text, st.lists(nasty_text, max_size=3)),
            "client_id": nasty_text,
            "email": nasty_text,
        },
    ),
    json_values,
)
_segment = st.one_of(
    st.builds(lambda v: b64url(json.dumps(v).encode()), _JOSE_HEADERS),
    st.builds(lambda v: b64url(json.dumps(v).encode()), _CLAIMS),
    st.builds(b64url, st.binary(max_size=64)),  # valid base64url, not JSON
    st.text(alphabet=_B64 + "+/=!*$~", max_size=40),  # bad base64url
    st.just(""),
)


@st.composite
def _jwt_like(draw: st.DrawFn) -> str:
    """2, 3 or 4 (and sometimes 5, JWE-shaped) dot-separated segments; the first two are often
    a real JOSE header and claims set, so parsing gets past the first segment."""
    count = draw(st.sampled_from([2, 3, 3, 3, 4, 5]))
    header = draw(st.builds(lambda v: b64url(json.dumps(v).encode()), _JOSE_HEADERS))
    claims = draw(st.builds(lambda v: b64url(json.dumps(v).encode()), _CLAIMS))
    rest = draw(st.lists(_segment, min_size=count - 2, max_size=count - 2))
    return ".".join([header, claims, *rest])


token_strings = st.one_of(
    _jwt_like(),
    st.lists(_segment, min_size=1, max_size=5).map(".".join),
    nasty_text,
    st.integers(min_value=20_000, max_value=60_000).map(lambda n: "eyJ" + "A" * n),
)
"""Random strings, JWT look-alikes with 2 to 5 segments, bad base64url, huge ones."""

# -- headers ---------------------------------------------------------------------------------------

_bad_base64 = st.one_of(
    st.text(alphabet=_B64 + "+/=!%*", max_size=60),
    st.builds(lambda b: base64.b64encode(b).decode(), st.binary(max_size=60)),  # not user:pass
    st.builds(lambda t: base64.b64encode(t.encode()).decode(), nasty_text),
    st.just("=="),
    st.just("Zm9v"),  # "foo": no colon
)
auth_values = st.one_of(
    st.builds(lambda v: f"Bearer {v}", token_strings),
    st.builds(lambda v: f"Bearer {v}", nasty_text),
    st.builds(lambda v: f"Basic {v}", _bad_base64),
    st.builds(lambda v: f"Snowflake Token={v}", nasty_text),
    st.sampled_from(["Bearer", "Bearer ", "Basic", "Basic ", "Bearer  a b", "bearer x", "DPoP x"]),
    st.just("Bearer " + "x" * 16_000),
    nasty_text,
)
auth_headers = st.one_of(
    st.just({}),
    st.builds(lambda v: {"Authorization": v}, auth_values),
)
"""An ``Authorization`` header (or none) as a dict for httpx-style callers."""

CONTENT_TYPES = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/json",
    "application/json; charset=utf-16",
    "text/plain",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "application/jwt",
    "application/snowflake",
    "*/*",
    "",
    "garbage",
    "application/x-www-form-urlencoded, application/json",
)

# -- raw bodies ------------------------------------------------------------------------------------


def _urlencode_pairs(pairs: Iterable[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()


_pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from(OAUTH_NAMES), st.text(max_size=10)), form_value),
    max_size=8,
)


@st.composite
def _duplicate_keys(draw: st.DrawFn) -> bytes:
    """A form naming one parameter twice (RFC 6749 §3.2 says it must be refused)."""
    pairs = draw(_pairs)
    name = draw(st.sampled_from(OAUTH_NAMES))
    pairs += [(name, draw(form_value)), (name, draw(form_value))]
    return _urlencode_pairs(draw(st.permutations(pairs)))


raw_bodies = st.one_of(
    st.builds(_urlencode_pairs, _pairs),
    _duplicate_keys(),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8"), json_values),
    st.binary(max_size=300),  # non-UTF-8, NUL, anything
    st.sampled_from(
        [
            b"",
            b"\xff\xfe\x00",
            b"grant_type=\xff\xfe",
            b"%ff%fe=%c3%28",
            b"a=%",
            b"&&&==&=",
            b"{",
            b'{"a": 1, "a": 2}',
            b"[]",
            b"null",
            b"\x00" * 64,
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n",
        ]
    ),
    st.integers(min_value=100_000, max_value=400_000).map(lambda n: b"subject_token=" + b"A" * n),
)
"""Request bodies as bytes, paired with any content type by the tests."""

# -- paths ----------------------------------------------------------------------------------------

path_segments = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12),
    st.builds(lambda t: quote(t, safe=""), st.text(min_size=1, max_size=30)),  # percent-encoded
    st.sampled_from(
        [
            "..",
            ".",
            "%2e%2e",
            "%2E%2E",
            "%2f",
            "%2F..%2F",
            "%00",
            "\x00",
            "a\x00b",
            "%25",
            "%",
            "%zz",
            "%c3%28",
            "%ff",
            "\xe9",
            ";",
            "a;b=c",
            "@",
            "?",
            "#",
            "x" * 300,
            "dbc-aaa.evil.test",
            "DBC-AAA",
            "dbc-aaa%0d%0aX: y",
            "dbc-",
            "-dbc",
            "dbc-aaa:443",
            "xn--dbc-aaa",
        ]
    ),
)
"""One path segment as it goes on the wire (already percent-encoded where it is)."""

# -- raw HTTP ----------------------------------------------------------------------------------


@dataclass
class RawResponse:
    """What came back: status, headers (lower-cased names, last value wins), body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def raw_request(
    address: tuple[str, int],
    method: str,
    target: str | bytes,
    *,
    host: str,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    body: bytes = b"",
    timeout: float = 15.0,
) -> RawResponse:
    """Send one HTTP/1.1 request exactly as given and read the answer (``Connection: close``).

    ``target`` is the request-target: absolute-form (``http://host/path``) through the sandbox
    proxy, origin-form (``/path``) straight at a server. Nothing is normalised or encoded.
    """
    lines = [_bytes(method) + b" " + _bytes(target) + b" HTTP/1.1", b"Host: " + _bytes(host)]
    lines += [_bytes(name) + b": " + _bytes(value) for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    payload = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass  # a server may answer (413, 431) and close before reading a huge request
        answer = http.client.HTTPResponse(sock, method=method)
        answer.begin()
        data = answer.read()
        pairs = [(k.lower(), v) for k, v in answer.getheaders()]
        return RawResponse(answer.status, dict(pairs), data, pairs)


# -- response properties -----------------------------------------------------------------------

#: Markers of a page nobody meant to send: a traceback, a framework's default error page.
BAD_PAGE_MARKERS = (
    "Traceback (most recent call last)",
    "Werkzeug Debugger",
    "<title>500",
    "Internal Server Error",
    "Error response</title>",  # http.server's send_error page
    "Error code explanation",
)


def assert_no_failure_page(status: int, content_type: str, text: str) -> None:
    """No 5xx, a ``Content-Type`` always, and no traceback or framework error page."""
    assert status < 500, (status, text[:300])
    assert content_type, f"no Content-Type on a {status}"
    for marker in BAD_PAGE_MARKERS:
        assert marker not in text, (status, marker, text[:300])


def json_object(text: str) -> dict[str, Any]:
    """The body as a JSON object; an assertion error naming the body otherwise."""
    try:
        value = json.loads(text)
    except ValueError:
        raise AssertionError(f"body is not JSON: {text[:200]!r}") from None
    assert isinstance(value, dict), f"body is not a JSON object: {text[:200]!r}"
    return value


def assert_oauth_shape(body: dict[str, Any]) -> None:
    """RFC 6749 §5.2: a string ``error``, an optional string ``error_description``."""
    assert isinstance(body.get("error"), str) and body["error"], body
    if "error_description" in body:
        assert isinstance(body["error_description"], str), body


def assert_databricks_shape(body: dict[str, Any]) -> None:
    """The Databricks REST error: ``{"error_code": "...", "message": "..."}``."""
    assert isinstance(body.get("error_code"), str) and isinstance(body.get("message"), str), body


def assert_gs_shape(body: dict[str, Any]) -> None:
    """Snowflake's GS envelope refusing: ``success`` false, a ``message``, a ``code`` key."""
    assert body.get("success") is False and "code" in body, body
    assert isinstance(body.get("message"), str), body


def assert_okta_api_shape(body: dict[str, Any]) -> None:
    """Okta's management-style error (``E0000007`` and friends)."""
    assert isinstance(body.get("errorCode"), str) and isinstance(body.get("errorSummary"), str), (
        body
    )


def assert_jsonrpc_error(body: Any) -> None:
    """A JSON-RPC 2.0 error object (or a batch of them): ``jsonrpc``, ``id``, integer code."""
    items = body if isinstance(body, list) else [body]
    for item in items:
        assert isinstance(item, dict) and item.get("jsonrpc") == "2.0" and "id" in item, item
        error = item.get("error")
        assert isinstance(error, dict), item
        assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), item


# -- state snapshots ------------------------------------------------------------------------------

#: Attributes that are wiring or caches, not state a request may change: the shared context
#: (clock, journal, ids), JWKS verifiers and caches (a fetch is no state change), locks.
SKIPPED_ATTRIBUTES = frozenset(
    {"context", "verifier", "_lock", "lock", "_last_sweep", "http", "_client", "clock"}
)
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()), threading.Condition)


def _opaque(value: Any) -> bool:
    return (
        isinstance(value, _LOCK_TYPES)
        or (callable(value) and not hasattr(value, "__dict__"))
        or type(value).__module__.startswith(("threading", "_thread", "httpx", "cryptography"))
    )


def model_state(value: Any, *, _seen: frozenset[int] = frozenset(), _depth: int = 0) -> Any:
    """A plain, comparable rendering of a model object graph (see the module docstring).

    Objects become ``{"__type__": name, attribute: state, ...}``; keys render by ``repr`` and
    are sorted, sets sorted; key sets as their ``kid`` lists. Locks, callables and the shared
    context are left out, and a cycle renders as ``"<cycle>"``.
    """
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if id(value) in _seen:
        return "<cycle>"
    if _depth > 16:
        return "<deep>"
    seen = _seen | {id(value)}

    def walk(item: Any) -> Any:
        return model_state(item, _seen=seen, _depth=_depth + 1)

    kind = type(value).__name__
    if kind == "KeySet" and hasattr(value, "keys"):
        return ["KeySet", *(getattr(k, "kid", "?") for k in value.keys())]
    if kind == "SigningKey":
        return ["SigningKey", getattr(value, "kid", "?")]
    if isinstance(value, Mapping):
        return {repr(k): walk(v) for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))}
    if isinstance(value, (list, tuple, deque)):
        return [walk(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((walk(v) for v in value), key=repr)
    attributes: dict[str, Any] = {}
    if hasattr(value, "__dict__"):
        attributes.update(vars(value))
    for slot in getattr(type(value), "__slots__", ()):
        if hasattr(value, slot):
            attributes[slot] = getattr(value, slot)
    if not attributes:
        return repr(value)
    return {
        "__type__": kind,
        **{
            name: walk(item)
            for name, item in sorted(attributes.items())
            if name not in SKIPPED_ATTRIBUTES and not _opaque(item)
        },
    }


def state_diff(before: Any, after: Any, path: str = "", limit: int = 5) -> list[str]:
    """Up to ``limit`` paths where two :func:`model_state` renderings differ."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            if key not in before:
                out.append(f"{path}/{key}: added")
            elif key not in after:
                out.append(f"{path}/{key}: removed")
            else:
                out.extend(state_diff(before[key], after[key], f"{path}/{key}", limit))
            if len(out) >= limit:
                break
        return out[:limit]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            out.extend(state_diff(a, b, f"{path}[{i}]", limit))
            if len(out) >= limit:
                break
        return out[:limit]
    return [f"{path or '/'}: {str(before)[:80]!r} -> {str(after)[:80]!r}"]


def assert_unchanged(
    snapshot: Callable[[], Any], before: Any, what: str, request: str = ""
) -> None:
    """The state now equals ``before``; the assertion names where it differs."""
    after = snapshot()
    changes = state_diff(before, after)
    assert not changes, f"a rejected request changed {what}: {changes} ({request})"
