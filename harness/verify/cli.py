"""``mcp-harness verify <token-endpoint> --profile generic|databricks|snowflake``.

Subject tokens come from the harness issuer (started here, with the keys of
``--issuer-key-dir`` at the URL the vendor registered) unless the operator supplies one with
``--subject-token``. Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.errors import UsageError

DEFAULT_KEY_DIR = Path(".mcp-harness") / "issuer"
DEFAULT_ISSUER_PORT = 8765
DEFAULT_AUDIENCE = "mcp-harness"


def _claim(text: str) -> tuple[str, Any]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return int(text)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="run the RFC 8693 check catalog against a token-exchange endpoint",
        description="Verify a vendor's RFC 8693 token-exchange endpoint against REQUIREMENTS "
        "§1-§7 (TX, TR, ER, HT, JV, AC, IT) under a vendor profile.",
    )
    p.add_argument("endpoint", help="the token endpoint URL, e.g. https://<ws>/oidc/v1/token")
    p.add_argument(
        "--profile",
        default="generic",
        help="generic, databricks, snowflake or a profile .yaml (default: generic)",
    )
    tokens = p.add_argument_group("subject tokens")
    tokens.add_argument(
        "--subject-token",
        help="an operator-supplied subject token (then the "
        "checks that need the harness issuer are SKIPPED)",
    )
    tokens.add_argument("--subject-token-type", default="urn:ietf:params:oauth:token-type:jwt")
    tokens.add_argument("--actor-token", help="an actor token for the AC rows")
    tokens.add_argument(
        "--issuer-key-dir",
        type=Path,
        default=DEFAULT_KEY_DIR,
        help=f"the harness issuer's keys (default: {DEFAULT_KEY_DIR})",
    )
    tokens.add_argument("--issuer-url", help="the issuer URL the vendor registered")
    tokens.add_argument(
        "--issuer-port",
        type=_port,
        default=DEFAULT_ISSUER_PORT,
        help=f"port the issuer listens on (default: {DEFAULT_ISSUER_PORT}; 0: any free port)",
    )
    tokens.add_argument(
        "--audience",
        action="append",
        dest="audiences",
        metavar="A",
        help=f"an audience the vendor's policy accepts (repeatable; default: {DEFAULT_AUDIENCE})",
    )
    tokens.add_argument(
        "--subject", help="the user the harness tokens name (provisioned at the vendor)"
    )
    tokens.add_argument("--subject-claim", default="sub", help="claim naming the user")
    tokens.add_argument(
        "--claim",
        action="append",
        type=_claim,
        default=[],
        metavar="NAME=JSON",
        help="an extra claim of every harness token (repeatable)",
    )
    client = p.add_argument_group("client")
    client.add_argument("--client-id")
    client.add_argument("--client-secret")
    client.add_argument(
        "--client-auth",
        choices=("basic", "post", "none"),
        default=None,
        help="default: basic with a secret, else none",
    )
    client.add_argument("--scope", help="scope to request (default: the profile's)")
    net = p.add_argument_group("network")
    net.add_argument("--probe", help="GET this URL with the issued token (IT-03)")
    net.add_argument("--probe-other", help="GET this other-target URL with it (IT-04)")
    net.add_argument("--proxy", help="HTTP proxy (default: HTTP(S)_PROXY from the environment)")
    net.add_argument(
        "--allow-plain-http",
        action="store_true",
        help="accept a plain http:// endpoint (a local sandbox): HT-01 is SKIPPED, not FAILED",
    )
    net.add_argument("--ca-bundle", help="PEM file of CAs to trust")
    out = p.add_argument_group("output")
    out.add_argument("--only", help="run only these check ids (comma-separated)")
    out.add_argument("--report", default="html,json,junit,md", help="formats (default: all)")
    out.add_argument("--report-dir", type=Path, default=Path("reports"))
    out.add_argument("--bundle", type=Path, help="also write one .zip or .tar.gz archive")
    out.add_argument("-q", "--quiet", action="store_true", help="print only the verdict")
    from harness.coverage_gate import add_arguments as add_gate_arguments

    # the same CI gate as `run`: baseline entries are check ids (`JV-17`), STALE fails the run
    add_gate_arguments(p.add_argument_group("CI gate"))
    p.set_defaults(handler=run)


def _formats(spec: str) -> list[str]:
    from harness.reporting import parse_formats

    return parse_formats(spec)


def run(args: argparse.Namespace) -> int:
    from harness import coverage_gate
    from harness.reporting import write_reports
    from harness.verify.bundle import archive_kind, write_bundle
    from harness.verify.catalog import CATALOG
    from harness.verify.config import VerifyConfig
    from harness.verify.engine import run_verify
    from harness.verify.profiles import load_profile

    formats = _formats(args.report)
    if args.bundle is not None:
        archive_kind(args.bundle)
    baseline = coverage_gate.load_from_args(args)  # a bad file is exit 2 before any request
    coverage_gate.parse_required(args.require_checks)
    profile = load_profile(args.profile)
    client_auth = args.client_auth or ("basic" if args.client_secret else "none")
    only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
    config = VerifyConfig(
        endpoint=args.endpoint,
        profile=args.profile,
        subject=args.subject,
        audiences=args.audiences or [DEFAULT_AUDIENCE],
        subject_token=args.subject_token,
        subject_token_type=args.subject_token_type,
        client_id=args.client_id,
        client_secret=args.client_secret,
        client_auth=client_auth,
        scope=args.scope,
        probe=args.probe,
        probe_other=args.probe_other,
        only=only,
        proxy=args.proxy,
        allow_plain_http=args.allow_plain_http,
        ca_bundle=args.ca_bundle,
        subject_claim=args.subject_claim,
        extra_claims=dict(args.claim),
        actor_token=args.actor_token,
    )
    issuer = None
    if args.subject_token is None:
        issuer = _start_issuer(args)
        config.issuer = issuer
    try:
        result = run_verify(config)
    finally:
        if issuer is not None:
            issuer.stop()
    selected = ["TX-01", *only] if only else list(CATALOG)
    coverage_gate.finish_run(result, args, baseline, selected)
    out = write_reports(result, args.report_dir, formats)
    if not args.quiet:
        for scenario in result.scenarios:
            check = scenario.checks[0]
            print(f"{check.status.value:<8} {check.id}  {check.title}")
        print("-" * 78)
        for scenario in result.scenarios:
            check = scenario.checks[0]
            if check.status.value in ("FAILED", "ERROR", "STALE"):
                print(f"{check.status.value}: {check.id} {check.title}: {check.message}")
                for line in (check.reproduce or scenario.reproduce or "").splitlines():
                    print(f"    rerun: {line}")
    counts = result.summary
    shown = ", ".join(f"{counts[k]} {k.lower()}" for k in counts if k != "total" and counts[k])
    verdict = {0: "PASSED", 1: "FAILED", 3: "ERROR"}[result.exit_code]
    print(
        f"{verdict}: {counts['total']} checks ({shown}) against {args.endpoint} "
        f"(profile {profile.name})"
    )
    print(f"report: {out / 'report.html'}")
    if args.bundle is not None:
        path = write_bundle(
            args.bundle, out, profile, sys.argv[1:] if _argv_is_ours(args) else _rebuild_argv(args)
        )
        print(f"bundle: {path}")
    return result.exit_code


def _argv_is_ours(args: argparse.Namespace) -> bool:
    """Whether ``sys.argv`` is this command's (the console script), not a host's (pytest)."""
    return sys.argv[1:2] == ["verify"]


def _rebuild_argv(args: argparse.Namespace) -> list[str]:
    """The command line when ``main([...])`` was called in-process (tests)."""
    argv = ["verify", args.endpoint, "--profile", args.profile]
    for flag in (
        "subject_token",
        "client_id",
        "client_secret",
        "scope",
        "probe",
        "probe_other",
        "proxy",
        "only",
        "subject",
        "issuer_url",
    ):
        value = getattr(args, flag)
        if value:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    for audience in args.audiences or []:
        argv += ["--audience", audience]
    return argv


def _start_issuer(args: argparse.Namespace) -> Any:
    from harness.issuer import TestIssuer

    issuer = TestIssuer(args.issuer_key_dir, port=args.issuer_port, issuer_url=args.issuer_url)
    try:
        issuer.start()
    except OSError as exc:
        raise UsageError(
            f"cannot start the harness issuer on port {args.issuer_port}: {exc.strerror or exc}"
            " (stop `mcp-harness issuer`, or pass --issuer-port)"
        ) from None
    return issuer
