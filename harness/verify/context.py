"""What a check sees: the run's shared state, its own transcript, and how it reports.

A check never picks a severity. It reports what it saw through :class:`CheckContext`:
``passed``/``info`` (facts), ``skip`` (a prerequisite is missing), ``violation`` (the row is
not met: the verdict comes from the catalog level or the profile override) or ``minor`` (the
weaker deviation the row's own text names, e.g. ``invalid_grant`` for ER-01: WARNING unless
the profile overrides it). :meth:`CheckContext.reject_scored` is the shared ER-01 scale.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode

import httpx

from harness.evidence import EvidenceRecorder
from harness.results import Status
from harness.verify.catalog import CheckSpec
from harness.verify.config import VerifyConfig
from harness.verify.profiles import Profile
from mocks.core.redact import decode_jwt_unverified

if TYPE_CHECKING:
    from harness.issuer import TestIssuer

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
Params = Sequence[tuple[str, str]]


@dataclass
class Finding:
    status: Status
    message: str
    violation: bool = False
    minor: bool = False
    evidence: list[int] = field(default_factory=list)


@dataclass
class ErrorSeen:
    """An error answer of the token endpoint, kept (unredacted, in memory only) so ER-02,
    ER-03, ER-05 and HT-02 can judge every error the run provoked."""

    check: str
    exchange_index: int
    status: int
    headers: httpx.Headers
    text: str
    body: Any
    sent_tokens: list[str]


@dataclass
class HappyPath:
    status: int
    body: dict[str, Any]
    headers: httpx.Headers
    access_token: str
    subject_claims: dict[str, Any] | None
    sent_at: float


class _Policy(Enum):
    """Default for :meth:`RunState.mint`'s ``audience``: the policy's accepted audiences."""

    AUDIENCES = "audiences"


class Skip(Exception):
    """Raised by a check helper when a prerequisite turns out to be missing mid-check."""


class RunState:
    """Shared by every check of one run: config, profile, HTTP client, issuer, findings."""

    def __init__(self, config: VerifyConfig, profile: Profile, client: httpx.Client) -> None:
        self.config = config
        self.profile = profile
        self.settings = profile.settings
        self.client = client
        self.issuer: TestIssuer | None = config.issuer
        self.happy: HappyPath | None = None
        self.happy_failed: str | None = None
        self.errors: list[ErrorSeen] = []
        self.actor_supported: bool | None = None

    @property
    def scope(self) -> str | None:
        return self.config.scope if self.config.scope is not None else self.settings.scope

    def now(self) -> float:
        return self.config.clock()

    # -- subject tokens --------------------------------------------------------------------
    def mint(
        self,
        *,
        claims: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
        subject: str | None = None,
        audience: str | list[str] | _Policy | None = _Policy.AUDIENCES,
        **kwargs: Any,
    ) -> str:
        """A harness-issued subject token that passes the vendor policy, plus one defect."""
        if self.issuer is None:
            raise Skip(
                "needs the harness issuer: the endpoint only accepts operator-supplied "
                "subject tokens"
            )
        config = self.config
        name = subject if subject is not None else (config.subject or "harness-user")
        merged: dict[str, Any] = {**self.settings.subject_claims, **config.extra_claims}
        if config.subject_claim != "sub":
            merged[config.subject_claim] = name
        merged.update(claims or {})
        aud: Any = audience
        if aud is _Policy.AUDIENCES:
            auds = list(config.audiences)
            aud = auds[0] if len(auds) == 1 else (auds or None)
        omitted = list(omit)
        if "sub" in omitted and config.subject_claim != "sub":
            omitted.append(config.subject_claim)
        token: str = self.issuer.mint(
            subject=name, audience=aud, claims=merged, omit=omitted, **kwargs
        )
        return token

    def subject_token(self) -> str:
        """A fresh good subject token (or the operator's)."""
        if self.config.subject_token is not None:
            return self.config.subject_token
        return self.mint()


class CheckContext:
    """One check's view: its spec, its transcript, its findings."""

    def __init__(self, run: RunState, spec: CheckSpec) -> None:
        self.run = run
        self.spec = spec
        self.recorder = EvidenceRecorder(run.client)
        self.findings: list[Finding] = []
        self.sent_tokens: list[str] = []

    # -- reporting -------------------------------------------------------------------------
    def _add(self, finding: Finding) -> None:
        if not finding.evidence and self.recorder.exchanges:
            finding.evidence = [self.recorder.last_seq]
        self.findings.append(finding)

    def passed(self, message: str) -> None:
        self._add(Finding(Status.PASSED, message))

    def info(self, message: str) -> None:
        self._add(Finding(Status.INFO, message))

    def skip(self, message: str) -> None:
        self._add(Finding(Status.SKIPPED, message, evidence=[-1]))

    def violation(self, message: str) -> None:
        self._add(Finding(Status.FAILED, message, violation=True))

    def minor(self, message: str) -> None:
        self._add(Finding(Status.WARNING, message, violation=True, minor=True))

    # -- HTTP ------------------------------------------------------------------------------
    def base_params(self, subject_token: str | None = None) -> list[tuple[str, str]]:
        run = self.run
        token = subject_token if subject_token is not None else run.subject_token()
        params = [
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", run.config.subject_token_type),
        ]
        if run.scope:
            params.append(("scope", run.scope))
        cfg = run.config
        if cfg.client_auth == "post" and cfg.client_id:
            params.append(("client_id", cfg.client_id))
            params.append(("client_secret", cfg.client_secret or ""))
        elif cfg.client_auth == "none" and cfg.client_id:
            params.append(("client_id", cfg.client_id))
        return params

    def basic_header(self, client_id: str | None = None, secret: str | None = None) -> str:
        """RFC 6749 §2.3.1: each part form-urlencoded *before* Base64."""
        cfg = self.run.config
        cid = quote_plus(client_id if client_id is not None else cfg.client_id or "")
        sec = quote_plus(secret if secret is not None else cfg.client_secret or "")
        return "Basic " + base64.b64encode(f"{cid}:{sec}".encode()).decode()

    def auth_headers(self) -> dict[str, str]:
        cfg = self.run.config
        if cfg.client_auth == "basic" and cfg.client_id:
            return {"Authorization": self.basic_header()}
        return {}

    def send(
        self,
        params: Params | None = None,
        *,
        method: str = "POST",
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_type: str = "application/x-www-form-urlencoded",
        auth: bool = True,
    ) -> httpx.Response | None:
        """One request to the endpoint (or ``url``), recorded; ``None`` if no HTTP answer."""
        target = url or self.run.config.endpoint
        sent: dict[str, str] = dict(self.auth_headers()) if auth else {}
        sent.update(headers or {})
        body = content
        if body is None and params is not None and method == "POST":
            body = urlencode(list(params)).encode()
        if body is not None:
            sent.setdefault("Content-Type", content_type)
        if params is not None:
            self.sent_tokens.extend(v for k, v in params if k in ("subject_token", "actor_token"))
        kwargs: dict[str, Any] = {"headers": sent}
        if body is not None:
            kwargs["content"] = body
        if method == "GET" and params is not None:
            kwargs["params"] = list(params)
        try:
            response = self.recorder.request(method, target, **kwargs)
        except httpx.HTTPError:
            return None
        if response.status_code >= 400 and target == self.run.config.endpoint:
            self.run.errors.append(
                ErrorSeen(
                    self.spec.id,
                    self.recorder.last_seq,
                    response.status_code,
                    response.headers,
                    response.text,
                    json_body(response),
                    [t for t in self.sent_tokens if t],
                )
            )
        self.sent_tokens = []
        return response

    def exchange(
        self,
        extra: Params = (),
        *,
        drop: Iterable[str] = (),
        subject_token: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """The base exchange request with ``drop`` removed and ``extra`` appended."""
        dropped = set(drop)
        params = [p for p in self.base_params(subject_token) if p[0] not in dropped]
        return self.send([*params, *extra], **kwargs)

    # -- scoring ---------------------------------------------------------------------------
    def rejected(
        self, response: httpx.Response | None, what: str, *, server_error: str = "minor"
    ) -> bool:
        """Security axis: was the request refused? 2xx is a violation; a 4xx passes; a 5xx
        or no answer is reported as ``server_error`` ("minor" or "violation")."""
        if response is None:
            self.minor(f"{what}: no HTTP answer (connection failed)")
            return True
        code = response.status_code
        if 200 <= code < 300:
            self.violation(f"{what}: accepted (HTTP {code}){_issued(response)}")
            return False
        if code >= 500:
            report = self.violation if server_error == "violation" else self.minor
            report(f"{what}: HTTP {code} instead of a 4xx OAuth error")
            return True
        self.passed(f"{what}: rejected, HTTP {code} {oauth_error(response) or ''}".rstrip())
        return True

    def expect_error(
        self,
        response: httpx.Response | None,
        what: str,
        codes: Sequence[str] = ("invalid_request",),
        *,
        accepted: str = "violation",
    ) -> None:
        """Wire-format axis: 400 with one of ``codes`` passes; acceptance is ``accepted``
        ("violation" or "minor"); any other refusal is a minor deviation."""
        if response is None:
            self.minor(f"{what}: no HTTP answer (connection failed)")
            return
        code, error = response.status_code, oauth_error(response)
        want = " or ".join(codes)
        if 200 <= code < 300:
            report = self.violation if accepted == "violation" else self.minor
            report(f"{what}: accepted (HTTP {code}){_issued(response)}; expected 400 {want}")
        elif code >= 500:
            self.violation(f"{what}: HTTP {code}; expected 400 {want}")
        elif code == 400 and error in codes:
            self.passed(f"{what}: 400 {error}")
        else:
            self.minor(f"{what}: HTTP {code} error={error!r}; expected 400 {want}")

    def reject_scored(self, response: httpx.Response | None, what: str) -> None:
        """ER-01: 400 invalid_request PASSED; 400 invalid_grant WARNING; 401/403 FAILED on
        status; 200 FAILED (REQUIREMENTS §3, OIDF ``CheckTokenEndpointHttpStatusIs400...``)."""
        if response is None:
            self.minor(f"{what}: no HTTP answer (connection failed)")
            return
        code, error = response.status_code, oauth_error(response)
        if 200 <= code < 300:
            self.violation(f"{what}: accepted (HTTP {code})")
        elif code in (401, 403):
            self.violation(
                f"{what}: HTTP {code} {error or ''}; RFC 6749 §5.2 wants 400 "
                "(only invalid_client may be 401)"
            )
        elif code >= 500:
            self.violation(f"{what}: HTTP {code}; expected 400 invalid_request")
        elif code == 400 and error == "invalid_request":
            self.passed(f"{what}: 400 invalid_request")
        elif code == 400 and error == "invalid_grant":
            self.minor(f"{what}: 400 invalid_grant (RFC 8693 §2.2.2 names invalid_request)")
        else:
            self.minor(f"{what}: HTTP {code} error={error!r}; expected 400 invalid_request")


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def oauth_error(response: httpx.Response) -> str | None:
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None


def decoded(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a compact JWS (unverified), or ``None`` for an opaque token."""
    return decode_jwt_unverified(token) if isinstance(token, str) else None


def _issued(response: httpx.Response) -> str:
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("access_token"), str):
        return ", a token was issued"
    return ""


CheckFn = Callable[[CheckContext], None]
REGISTRY: dict[str, CheckFn] = {}
NEEDS: dict[str, frozenset[str]] = {}


def check(check_id: str, *, needs: Iterable[str] = ("happy",)) -> Callable[[CheckFn], CheckFn]:
    """Register the function that runs catalog row ``check_id``; ``needs`` are prerequisites
    the engine verifies first (``happy``, ``issuer``, ``probe``, ``probe_other``,
    ``client_secret``, ``basic``)."""

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY[check_id] = fn
        NEEDS[check_id] = frozenset(needs)
        return fn

    return register


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
