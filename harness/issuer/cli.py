"""``mcp-harness issuer``: serve the test issuer a vendor registers, or mint one token.

The vendor's STS must trust the harness as an IdP before ``verify`` can test its JWT checks,
so the issuer runs at a stable URL (default port 8765, keys kept in ``--key-dir``) and prints
exactly what to register: issuer, JWKS URL, audiences, subject claim, key ids, and a
ready-to-paste Databricks account federation policy. ``--mint`` prints one token for
operators who want to ``curl`` by hand; ``--list-defects`` names the defects it can mint.

Nothing heavy is imported until the command runs (``mcp-harness --help`` stays fast).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.issuer.issuer import TestIssuer

DEFAULT_KEY_DIR = Path(".mcp-harness") / "issuer"
DEFAULT_PORT = 8765
DEFAULT_AUDIENCE = "mcp-harness"
DATABRICKS_POLICY_ID = "mcp-harness-issuer"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return int(text)


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "issuer",
        help="serve the harness's test issuer (discovery, JWKS) for a vendor to trust",
        description="Serve the test issuer whose tokens `verify` sends, print the values a "
        "vendor registers in its federation policy, or mint one token.",
    )
    parser.add_argument(
        "--key-dir",
        type=Path,
        default=DEFAULT_KEY_DIR,
        help=f"keep the signing keys here across runs (default: {DEFAULT_KEY_DIR})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"listen port; stable so a vendor registers the URL once (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--issuer-url",
        help="public URL of the issuer when a tunnel or proxy fronts it (the `iss` claim)",
    )
    parser.add_argument(
        "--audience",
        action="append",
        dest="audiences",
        metavar="A",
        help=f"an audience the vendor's policy accepts (repeatable; default: {DEFAULT_AUDIENCE})",
    )
    parser.add_argument(
        "--subject-claim", default="sub", help="the claim naming the user (default: sub)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--print", action="store_true", help="print the registration values and exit")
    mode.add_argument("--mint", action="store_true", help="print one token and exit")
    mode.add_argument(
        "--list-defects", action="store_true", help="list the signing defects and exit"
    )
    mint = parser.add_argument_group("--mint options")
    mint.add_argument("--sub", help="the subject (a user the vendor knows)")
    mint.add_argument(
        "--aud", action="append", help="token audience (repeatable; default: the --audience values)"
    )
    mint.add_argument("--lifetime", type=float, default=300.0, help="seconds (default: 300)")
    mint.add_argument("--defect", help="one signing defect (see --list-defects)")
    mint.add_argument("--alg", choices=["RS256", "ES256"], default="RS256")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.list_defects:
        from harness.issuer.defects import SIGNING_DEFECTS

        for name, description in SIGNING_DEFECTS.items():
            print(f"{name:<22} {description}")
        return 0
    from harness.issuer.issuer import TestIssuer

    audiences: list[str] = args.audiences or [DEFAULT_AUDIENCE]
    issuer_url = _issuer_url(args.issuer_url)
    if (args.print or args.mint) and args.port == 0 and issuer_url is None:
        raise UsageError("--port 0 gives no stable URL: pass --port or --issuer-url")
    issuer = TestIssuer(args.key_dir, host=args.host, port=args.port, issuer_url=issuer_url)
    if args.mint:
        print(_mint(issuer, args, audiences))
        return 0
    if args.print:
        issuer.signing_keys()
        _print_values(issuer, args, audiences)
        return 0
    return _serve(issuer, args, audiences)


def _issuer_url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--issuer-url must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise UsageError("--issuer-url must not have a query or fragment")
    return value.rstrip("/")


def _mint(issuer: TestIssuer, args: argparse.Namespace, audiences: list[str]) -> str:
    if not args.sub:
        raise UsageError("--mint needs --sub (the user the token names)")
    aud: list[str] = args.aud or audiences
    claims = {args.subject_claim: args.sub} if args.subject_claim != "sub" else None
    try:
        return issuer.mint(
            subject=args.sub,
            audience=aud[0] if len(aud) == 1 else aud,
            lifetime=args.lifetime,
            alg=args.alg,
            defect=args.defect,
            claims=claims,
        )
    except ValueError as exc:
        raise UsageError(f"--defect: {exc}") from None


def _print_values(issuer: TestIssuer, args: argparse.Namespace, audiences: list[str]) -> None:
    values = issuer.federation_values(audiences, args.subject_claim)
    print("Register this issuer with the vendor (federation policy values):")
    print(f"  issuer           {values['issuer']}")
    print(f"  JWKS URL         {values['jwks_uri']}")
    print(f"  discovery        {values['issuer']}/.well-known/openid-configuration")
    print(f"  audiences        {', '.join(values['audiences'])}")
    print(f"  subject claim    {values['subject_claim']}")
    for key in issuer.signing_keys():
        print(f"  key              {key.alg}  kid {key.kid}")
    print(f"  key directory    {Path(args.key_dir).resolve()}")
    print(
        "Databricks account federation policy (POST /api/2.0/accounts/<account-id>/"
        f"federationPolicies?policy_id={DATABRICKS_POLICY_ID}):"
    )
    print(json.dumps(issuer.databricks_policy(audiences, args.subject_claim), indent=2))
    sys.stdout.flush()


def _serve(issuer: TestIssuer, args: argparse.Namespace, audiences: list[str]) -> int:
    issuer.start()  # a taken port raises before any signal handler is replaced
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        print(f"mcp-harness issuer: serving {issuer.issuer} on {args.host}:{issuer.bound_port}")
        _print_values(issuer, args, audiences)
        print("Press Ctrl+C to stop.", flush=True)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        issuer.stop()
    return 0
