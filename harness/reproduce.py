"""Reproduce lines: a recorded :class:`~harness.results.Exchange` as one copy-pasteable ``curl``.

A failure report is only useful if a developer can replay the request that failed without
the harness. The exchange is already redacted (tokens are fingerprints or masks), so the
command cannot carry the secret; instead every secret becomes a shell variable named after
its field (``$SUBJECT_TOKEN``, ``$CLIENT_SECRET``, ``$ACCESS_TOKEN``, ...) that the reader
exports before pasting. Literal text is single-quoted with :func:`shlex.quote`; variables
are double-quoted so the shell expands them, and a word that mixes both is a concatenation
of the two (``'{"a": "'"$TOKEN"'"}'``) - still one word, never an unquoted expansion.

Sandbox virtual hosts (``*.test``) only exist behind the sandbox's HTTP proxy, so those
commands get ``--proxy`` (the given proxy URL, else ``"$HARNESS_PROXY"`` as ``mcp-harness
serve`` writes it to its env file) and, for HTTPS, ``--cacert "$HARNESS_CA_BUNDLE"``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from harness.results import BLOCKING, Exchange, ScenarioResult
from mocks.core.redact import JWT_RE, SECRET_FIELDS, redact_text

__all__ = ["curl_command", "is_sandbox_host", "reproduce_lines"]

#: What the redactors leave in place of a secret (``mask``, ``redact_text``); any of these in
#: a recorded value means "a secret was here".
_PLACEHOLDER = re.compile(r"<redacted len=\d+ sha256:[0-9a-f]+>|<jwt sha256:[0-9a-f]+>")
#: Field names whose variable name is fixed (what the README and the reports tell users to
#: export); any other secret field becomes its upper-cased name.
_VAR_NAMES = {
    "subject_token": "SUBJECT_TOKEN",
    "actor_token": "ACTOR_TOKEN",
    "client_secret": "CLIENT_SECRET",
    "refresh_token": "REFRESH_TOKEN",
    "access_token": "ACCESS_TOKEN",
    "id_token": "ID_TOKEN",
    "code": "CODE",
    "code_verifier": "CODE_VERIFIER",
    "client_assertion": "CLIENT_ASSERTION",
    "assertion": "ASSERTION",
    "password": "PASSWORD",
    "token": "TOKEN",
    "cookie": "COOKIE",
}
#: Headers curl sets by itself or that only describe the harness's client.
_SKIP_HEADERS = frozenset(
    {"host", "accept-encoding", "connection", "user-agent", "content-length", "transfer-encoding"}
)
_DQ_UNSAFE = re.compile(r'["\\$`!]')


@dataclass(frozen=True)
class _Var:
    name: str


_Segment = str | _Var


class _Vars:
    """Hands out variable names: one per distinct secret, ``TOKEN``, ``TOKEN_2``, ... when
    two different secrets would share a name (the same secret keeps its name)."""

    def __init__(self) -> None:
        self._by_identity: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()

    def get(self, field: str, identity: str) -> _Var:
        base = _var_base(field)
        key = (base, identity)
        if key not in self._by_identity:
            name, n = base, 1
            while name in self._taken:
                n += 1
                name = f"{base}_{n}"
            self._taken.add(name)
            self._by_identity[key] = name
        return _Var(self._by_identity[key])


def _var_base(field: str) -> str:
    if field.lower() in _VAR_NAMES:
        return _VAR_NAMES[field.lower()]
    name = re.sub(r"[^A-Za-z0-9]+", "_", field).strip("_").upper()
    if not name:
        return "SECRET"
    return name if not name[0].isdigit() else f"SECRET_{name}"


def _word(segments: list[_Segment]) -> str:
    """One shell word; variables expand, everything else is literal."""
    segments = [s for s in segments if s != ""]
    if not segments:
        return "''"
    if not any(isinstance(s, _Var) for s in segments):
        return shlex.quote("".join(s for s in segments if isinstance(s, str)))
    literal = "".join(s for s in segments if isinstance(s, str))
    if not _DQ_UNSAFE.search(literal):
        out = []
        for i, seg in enumerate(segments):
            if isinstance(seg, _Var):
                following = segments[i + 1] if i + 1 < len(segments) else ""
                glued = isinstance(following, str) and re.match(r"[A-Za-z0-9_]", following)
                out.append(f"${{{seg.name}}}" if glued else f"${seg.name}")
            else:
                out.append(seg)
        return '"' + "".join(out) + '"'
    return "".join(f'"${{{s.name}}}"' if isinstance(s, _Var) else shlex.quote(s) for s in segments)


def _split_placeholders(text: str, field: str, variables: _Vars) -> list[_Segment]:
    """``text`` with every redaction placeholder (and any JWT that slipped through) turned
    into a variable named after ``field``."""
    text = redact_text(text)
    out: list[_Segment] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        out.append(text[pos : match.start()])
        out.append(variables.get(field, match.group(0)))
        pos = match.end()
    out.append(text[pos:])
    return out


def _value_segments(field: str, value: Any, variables: _Vars) -> list[_Segment]:
    """A recorded form/query value: secret fields and placeholders become variables."""
    if isinstance(value, dict) and "fingerprint" in value:  # describe_secret() of a JWT
        return [variables.get(field, str(value["fingerprint"]))]
    if not isinstance(value, str):
        value = json.dumps(value, default=str)
    if field.lower() in SECRET_FIELDS and value:
        return [variables.get(field, value)]
    return _split_placeholders(value, field, variables)


def is_sandbox_host(host: str) -> bool:
    """Sandbox tenants live under the reserved ``.test`` TLD (DESIGN §2)."""
    host = host.lower().rstrip(".")
    return host == "test" or host.endswith(".test")


def _url_segments(url: str, variables: _Vars) -> list[_Segment]:
    parts = urlsplit(url)
    path_text = unquote(parts.path)
    if _PLACEHOLDER.search(path_text) or JWT_RE.search(path_text):
        path: list[_Segment] = [
            quote(s, safe="/:@!$&'()*+,;=-._~") if isinstance(s, str) else s
            for s in _split_placeholders(path_text, "path_secret", variables)
        ]
    else:
        path = [parts.path]
    head = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    segments: list[_Segment] = [head, *path]
    if parts.query:
        segments.append("?")
        for i, (key, value) in enumerate(parse_qsl(parts.query, keep_blank_values=True)):
            segments.append(("&" if i else "") + quote(key, safe="") + "=")
            for seg in _value_segments(key, value, variables):
                segments.append(quote(seg, safe="") if isinstance(seg, str) else seg)
    if parts.fragment:
        segments.append("#" + parts.fragment)
    return segments


def _header_words(name: str, value: str, variables: _Vars) -> list[str]:
    lname = name.lower()
    if lname in ("authorization", "proxy-authorization"):
        scheme, _, _cred = value.partition(" ")
        if lname == "authorization" and scheme.lower() == "basic":
            user = variables.get("client_id", "basic")
            return ["-u", _word([user, ":", variables.get("client_secret", "basic")])]
        var = "ACCESS_TOKEN" if lname == "authorization" else "PROXY_CREDENTIALS"
        shown = f"{scheme} " if scheme and _cred else ""
        return ["-H", _word([f"{name}: {shown}", variables.get(var, value)])]
    if lname in SECRET_FIELDS:
        return ["-H", _word([f"{name}: ", variables.get(lname, value)])]
    return ["-H", _word([f"{name}: ", *_split_placeholders(value, lname, variables)])]


def _canonical(name: str) -> str:
    """``content-type`` → ``Content-Type``: how people write headers (HTTP ignores case)."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _json_segments(body: Any, variables: _Vars) -> list[_Segment]:
    """The body as JSON text; each secret member a variable inside its string quotes."""
    marks: dict[str, _Var] = {}

    def walk(value: Any, field: str) -> Any:
        if isinstance(value, dict):
            if set(value) == {"jwt", "fingerprint"}:  # describe_secret() of a JWT
                return mark(variables.get(field, str(value["fingerprint"])))
            return {k: walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, field) for v in value]
        if isinstance(value, str):
            pieces = _value_segments(field, value, variables)
            return "".join(p if isinstance(p, str) else mark(p) for p in pieces)
        return value

    def mark(var: _Var) -> str:
        token = f"\x00{len(marks)}\x00"
        marks[token] = var
        return token

    text = json.dumps(walk(body, "body"), ensure_ascii=False, separators=(",", ":"))
    out: list[_Segment] = []
    for piece in re.split(r"(\\u0000\d+\\u0000)", text):
        key = piece.replace("\\u0000", "\x00")
        out.append(marks.get(key, piece) if key in marks else piece)
    return out


def _body_words(exchange: Exchange, content_type: str, variables: _Vars) -> list[str]:
    body = exchange.request_body
    if body is None or body == "":
        return []
    if "application/x-www-form-urlencoded" in content_type and isinstance(body, dict):
        words: list[str] = []
        for key, value in body.items():
            key = str(key)
            pieces = _value_segments(key, value, variables)
            if key and "=" not in key and "@" not in key:
                words += ["--data-urlencode", _word([f"{key}=", *pieces])]
            else:  # curl would read ``name@file``; send the pair already encoded
                encoded = [quote(p, safe="") if isinstance(p, str) else p for p in pieces]
                words += ["--data-raw", _word([quote(key, safe="") + "=", *encoded])]
        return words
    if isinstance(body, (dict, list)):
        return ["--data-raw", _word(_json_segments(body, variables))]
    return ["--data-raw", _word(_split_placeholders(str(body), "body_secret", variables))]


def curl_command(exchange: Exchange, proxy: str | None = None) -> str:
    """One line of shell that replays ``exchange``'s request with every secret a variable.

    ``proxy`` is the sandbox proxy URL for ``*.test`` hosts (default ``"$HARNESS_PROXY"``).
    Only request data is used; the response is what the reader will see for themselves.
    """
    variables = _Vars()
    parts = urlsplit(exchange.url)
    method = exchange.method.upper()
    words = ["curl", "-sS", "-i"]
    words += ["-I"] if method == "HEAD" else ["-X", shlex.quote(method)]
    if is_sandbox_host(parts.hostname or ""):
        words += ["--proxy", shlex.quote(proxy) if proxy else '"$HARNESS_PROXY"']
        if parts.scheme == "https":
            words += ["--cacert", '"$HARNESS_CA_BUNDLE"']
    content_type = ""
    for name, value in exchange.request_headers.items():
        lname = name.lower()
        if lname == "content-type":
            content_type = value.lower()
            if "application/x-www-form-urlencoded" in content_type:
                continue  # --data-urlencode sets it
        if lname in _SKIP_HEADERS and not (lname == "host" and value != parts.netloc):
            continue
        if lname == "accept" and value == "*/*":
            continue  # curl's default
        words += _header_words(_canonical(name), value, variables)
    words += _body_words(exchange, content_type, variables)
    words.append(_word(_url_segments(exchange.url, variables)))
    return " ".join(words)


def reproduce_lines(scenario: ScenarioResult) -> list[str]:
    """What every report prints under a failing scenario: the curl of each failing (or
    stale) check's last evidence exchange, once each, then the line that reruns the scenario.

    A check's ``reproduce`` is ``<curl>\n<rerun>`` (the runner and ``verify`` set it); a
    check without evidence, or a STALE one, contributes nothing and the rerun line remains.
    """
    lines: list[str] = []
    for check in scenario.checks:
        if check.status in BLOCKING:
            for line in (check.reproduce or "").splitlines():
                if line.strip() and line != scenario.reproduce and line not in lines:
                    lines.append(line)
    if scenario.reproduce:
        lines.append(scenario.reproduce)
    return lines
