"""The verify runner: happy-path gate, prerequisites, verdicts, and the RunResult (C2).

Order: TX-01 first (the gate: when it fails every other check is SKIPPED, since a rejection
proves nothing when nothing is accepted), then the catalog in order, and last the rows that
judge every error the run provoked (ER-02, ER-03, ER-05, HT-02), reported in catalog order.
One ``httpx.Client`` serves the whole run.
"""

from __future__ import annotations

import platform
import secrets
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

import harness
from harness.errors import UsageError
from harness.results import CheckResult, RunResult, ScenarioResult, Status, worst
from harness.verify import checks_act, checks_issued, checks_jwt, checks_request  # noqa: F401
from harness.verify.catalog import CATALOG, CheckSpec
from harness.verify.config import CLIENT_AUTH_METHODS, VerifyConfig
from harness.verify.context import NEEDS, REGISTRY, CheckContext, Finding, RunState, Skip
from harness.verify.profiles import Profile, load_profile

LATE = ("ER-02", "ER-03", "ER-05", "HT-02")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
HAPPY_FAILED = "happy path failed: a rejection proves nothing"
_PREREQ = {
    "issuer": "needs the harness issuer: the endpoint only accepts operator-supplied subject "
    "tokens",
    "probe": "needs --probe (a URL the issued token should work at)",
    "probe_other": "needs --probe-other (a URL of another target or tenant)",
    "client_secret": "needs client credentials (--client-id and --client-secret)",
    "basic": "needs --client-auth basic with --client-id and --client-secret",
}


def _validate(config: VerifyConfig) -> None:
    parts = urlsplit(config.endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"endpoint must be an http(s) URL, got {config.endpoint!r}")
    if config.client_auth not in CLIENT_AUTH_METHODS:
        raise UsageError(f"--client-auth must be one of {', '.join(CLIENT_AUTH_METHODS)}")
    if config.client_auth in ("basic", "post") and not (config.client_id and config.client_secret):
        raise UsageError(
            f"--client-auth {config.client_auth} needs --client-id and --client-secret"
        )
    if config.issuer is None and config.subject_token is None:
        raise UsageError("give a subject token (--subject-token) or run with the harness issuer")
    if config.issuer is not None and config.subject_token is None and not config.audiences:
        raise UsageError("--audience is required with the harness issuer (what the policy accepts)")
    unknown = [c for c in config.only or [] if c not in CATALOG]
    if unknown:
        raise UsageError(f"--only: unknown check id(s) {', '.join(unknown)}")


def make_client(config: VerifyConfig) -> httpx.Client:
    """One client for the run: the proxy for vendor hosts, loopback reached directly (the
    harness issuer and local endpoints are next to the harness, not behind the proxy)."""
    verify: ssl.SSLContext | bool = True
    if config.ca_bundle:
        try:
            verify = ssl.create_default_context(cafile=config.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--ca-bundle {config.ca_bundle}: {exc}") from None
    mounts: dict[str, httpx.BaseTransport] = {}
    if config.proxy:
        direct = httpx.HTTPTransport(verify=verify, trust_env=False)
        mounts = {f"all://{name}": direct for name in LOOPBACK}
    return httpx.Client(
        proxy=config.proxy or None,
        verify=verify,
        trust_env=config.proxy is None,
        timeout=config.timeout,
        follow_redirects=False,
        mounts=mounts or None,
    )


def _selected(config: VerifyConfig) -> list[str]:
    if not config.only:
        return list(CATALOG)
    wanted = set(config.only)
    if any(c != "TX-01" and "happy" in NEEDS[c] for c in wanted):
        wanted.add("TX-01")  # the gate always runs (and is reported) before a negative check
    return [c for c in CATALOG if c in wanted]


def _missing(run: RunState, needs: frozenset[str]) -> str | None:
    cfg = run.config
    if "happy" in needs and run.happy is None:
        return HAPPY_FAILED
    if "issuer" in needs and run.issuer is None:
        return _PREREQ["issuer"]
    if "probe" in needs and not cfg.probe:
        return _PREREQ["probe"]
    if "probe_other" in needs and not cfg.probe_other:
        return _PREREQ["probe_other"]
    if "client_secret" in needs and not (cfg.client_id and cfg.client_secret):
        return _PREREQ["client_secret"]
    if "basic" in needs and (cfg.client_auth != "basic" or not cfg.client_secret):
        return _PREREQ["basic"]
    return None


def _verdict(spec: CheckSpec, profile: Profile, findings: list[Finding]) -> tuple[Status, str]:
    """Resolve violations to verdicts (profile override, else catalog level) and combine."""
    override = profile.override(spec.id)
    for finding in findings:
        if not finding.violation:
            continue
        if override is not None:
            finding.status = override.verdict
        elif finding.minor:
            finding.status = Status.WARNING
        else:
            finding.status = spec.verdict
    statuses = [f.status for f in findings]
    status = worst(statuses) if statuses else Status.SKIPPED
    if status is Status.SKIPPED or all(s is Status.SKIPPED for s in statuses):
        status = Status.SKIPPED
    shown = [f for f in findings if f.status is status] + [
        f for f in findings if f.status is not status
    ]
    message = (
        "; ".join(f"{f.status.value}: {f.message}" for f in shown)
        if len(shown) > 1
        else (shown[0].message if shown else "")
    )
    if override is not None and any(f.violation for f in findings):
        message += f" [profile {profile.name}: {override.verdict.value} because {override.reason}]"
    return status, message


def _reproduce(
    config: VerifyConfig, profile: Profile, check_id: str, ctx: CheckContext, evidence: list[int]
) -> str:
    line = f"mcp-harness verify {config.endpoint} --profile {profile.name} --only {check_id}"
    try:
        from harness.reproduce import curl_command  # contract C4 (CI-GATE helper)
    except ImportError:
        return line
    seqs = [s for s in evidence if s > 0] or (
        [ctx.recorder.last_seq] if ctx.recorder.exchanges else []
    )
    if not seqs:
        return line
    exchange = ctx.recorder.exchanges[seqs[0] - 1]
    return f"{curl_command(exchange, proxy=config.proxy)}\n{line}"


def _run_one(run: RunState, spec: CheckSpec) -> ScenarioResult:
    started = time.perf_counter()
    ctx = CheckContext(run, spec)
    reason = _missing(run, NEEDS.get(spec.id, frozenset()))
    if spec.id == "TX-01":
        reason = None
    if reason is not None:
        ctx.skip(reason)
    else:
        try:
            REGISTRY[spec.id](ctx)
        except Skip as exc:
            ctx.skip(str(exc))
        if not ctx.findings:
            ctx.skip("nothing to check for this endpoint")
    status, message = _verdict(spec, run.profile, ctx.findings)
    evidence = sorted({s for f in ctx.findings for s in f.evidence if s > 0})
    result = CheckResult(
        id=spec.id,
        title=spec.title,
        status=status,
        message=message,
        requirement=spec.source,
        evidence=evidence,
    )
    if status in (Status.FAILED, Status.WARNING):
        decisive = [s for f in ctx.findings if f.status is status for s in f.evidence if s > 0]
        result.reproduce = _reproduce(run.config, run.profile, spec.id, ctx, decisive)
    scenario = ScenarioResult(
        id=spec.id,
        name=spec.title,
        file=spec.area,
        line=0,
        requirements=[spec.id],
        checks=[result],
        exchanges=ctx.recorder.exchanges,
        description=f"{spec.source} — level {spec.level}",
        reproduce=(
            f"mcp-harness verify {run.config.endpoint} --profile {run.profile.name} "
            f"--only {spec.id}"
        ),
    )
    scenario.duration_s = time.perf_counter() - started
    scenario.finish()
    return scenario


def run_verify(config: VerifyConfig) -> RunResult:
    """Run the catalog against ``config.endpoint``; usable in-process (selftest, tests)."""
    _validate(config)
    profile = load_profile(config.profile)
    started = time.time()
    result = RunResult(
        run_id=_run_id(started),
        broker=config.endpoint,
        harness_version=harness.__version__,
        started_at=started,
        profile=profile.to_report(),
        environment=_environment(config, profile),
    )
    with make_client(config) as client:
        run = RunState(config, profile, client)
        order = _selected(config)
        late = [c for c in order if c in LATE]
        done: dict[str, ScenarioResult] = {}
        for check_id in [c for c in order if c not in LATE] + late:
            done[check_id] = _run_one(run, CATALOG[check_id])
    result.scenarios = [done[c] for c in order]
    result.finished_at = time.time()
    return result


def _run_id(now: float) -> str:
    """``harness.reporting.new_run_id``'s format, without importing the reporters (an
    in-process caller such as ``selftest`` may never render a report)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


def _environment(config: VerifyConfig, profile: Profile) -> dict[str, Any]:
    return {
        "mode": "verify",
        "endpoint": config.endpoint,
        "profile": profile.name,
        "subject_tokens": "operator" if config.subject_token is not None else "harness issuer",
        "issuer": config.issuer.issuer if config.issuer is not None else None,
        "client_auth": config.client_auth,
        "probe": config.probe,
        "probe_other": config.probe_other,
        "python": platform.python_version(),
        "harness": harness.__version__,
    }
