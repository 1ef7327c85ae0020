"""``mcp-harness``: run scenarios, serve the sandbox, list and validate scenario files.

Exit codes (DESIGN §5, as Schemathesis and the MCP conformance suite use them): 0 all passed,
1 a conformance failure, 2 a usage or scenario-file error, 3 a harness error. Errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

import harness
from harness.errors import UsageError
from harness.results import CheckResult, RunResult, ScenarioResult, Status
from harness.scenario import Scenario, ScenarioError, default_scenario_dir, load_paths
from harness.selection import SelectionError, matcher
from harness.targets import TargetError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HARNESS = 0, 1, 2, 3


#: Commands that live in their own modules. Each module has ``add_parser(sub)`` (register its
#: subcommand on the ``argparse`` sub-parsers, importing nothing heavy, and call
#: ``parser.set_defaults(handler=run)``) and ``run(args) -> int`` (the exit code).
#: Raising :class:`harness.errors.UsageError` gives exit 2 and one line.
COMMAND_MODULES: tuple[str, ...] = (
    "harness.issuer.cli",
    "harness.envcmd",
    "harness.verify.cli",
    "harness.selftest",
)


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-harness",
        description="Local sandbox and conformance harness for MCP token brokers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {harness.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run scenarios against a broker and write reports")
    run.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="scenario files or directories (default: the bundled scenarios)",
    )
    run.add_argument(
        "--broker",
        default="reference",
        help="reference, reference:<defect>, url:<base>, cmd:<command> or docker:<image> "
        "(default: reference)",
    )
    run.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports"),
        help="where reports go (default: reports/)",
    )
    run.add_argument(
        "--report", default="html,json,junit,md", help="formats: html,json,junit,md (default: all)"
    )
    run.add_argument(
        "-k", dest="keyword", default=None, help="select scenarios by id substring expression"
    )
    run.add_argument(
        "-x", "--exitfirst", action="store_true", help="stop after the first failing scenario"
    )
    run.add_argument("--port", type=int, default=0, help="sandbox port (default: a free one)")
    run.add_argument(
        "--tls", action="store_true", help="serve the sandbox over HTTPS (https:// issuers)"
    )
    run.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="derive every mock key, kid and generated id from this integer (replayable runs)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="print only the verdict")
    _gate_arguments(run)
    _target_arguments(run)

    serve = sub.add_parser("serve", help="keep the sandbox and the reference broker up")
    serve.add_argument("--port", type=int, default=0, help="sandbox port (default: a free one)")
    serve.add_argument(
        "--broker-port", type=int, default=0, help="reference broker port (default: free)"
    )
    serve.add_argument(
        "--env-file", type=Path, help="write HARNESS_* KEY=value lines here once ready"
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve the sandbox hosts over HTTPS too (CONNECT through the proxy; https:// "
        "issuers; the CA file is HARNESS_CA_BUNDLE)",
    )
    serve.add_argument(
        "--ca-dir",
        type=Path,
        help="with --tls: keep the sandbox CA here and reuse it on later runs "
        "(default: a temporary directory removed on exit)",
    )
    serve.add_argument(
        "--seed", type=_seed, default=None, help="derive mock keys and ids from this integer"
    )

    lst = sub.add_parser(
        "list",
        help="list scenarios, checks, verify profiles and known-bad variants",
        description="mcp-harness list [scenarios|checks|profiles|variants] [paths]: one "
        "section or (default) all; paths are scenario files or directories (default: the "
        "bundled scenarios). A directory named like a section is written ./checks.",
    )
    lst.add_argument("items", nargs="*", metavar="[SECTION] PATH", help="a section, then paths")
    lst.add_argument("--json", action="store_true", help="machine-readable output")

    validate = sub.add_parser(
        "validate",
        help="check scenario and fragment files against the schema (every error, file:line)",
    )
    validate.add_argument("paths", nargs="*", type=Path)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "serve":
            return _cmd_serve(args)
        if args.command == "list":
            return _cmd_list(args)
        if args.command == "validate":
            return _cmd_validate(args)
        handler: int = args.handler(args)
        return handler
    except (UsageError, ScenarioError, SelectionError, TargetError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_HARNESS
    except BrokenPipeError:  # `mcp-harness list | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return EXIT_OK
    except Exception as exc:  # a harness bug: one line, exit 3, never a traceback
        _error(f"harness error: {type(exc).__name__}: {exc}")
        return EXIT_HARNESS


def _error(message: str) -> None:
    lines = message.splitlines() or [""]
    print(f"mcp-harness: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"  {line}", file=sys.stderr)


def _load(paths: list[Path]) -> list[Scenario]:
    return load_paths(paths or [default_scenario_dir()])


def _formats(spec: str) -> list[str]:
    from harness.reporting import parse_formats

    return parse_formats(spec)


# -- run ---------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from harness import coverage_gate
    from harness.reporting import new_run_id, write_reports
    from harness.session import HarnessSession

    formats = _formats(args.report)
    baseline = coverage_gate.load_from_args(args)  # a bad file is exit 2 before any run
    coverage_gate.parse_required(args.require_checks)
    select = matcher(args.keyword)
    scenarios = [s for s in _load(args.paths) if select(s.id)]
    if not scenarios:
        raise UsageError("no scenario matches the selection")
    if args.workers > 1:  # harness.parallel: one sandbox and broker per worker, one run
        run = _run_workers(args, scenarios, lambda r: _record(args, baseline, r))
    else:
        with HarnessSession(
            args.broker, port=args.port, tls=args.tls, seed=args.seed, **_target_options(args)
        ) as session:
            run = session.new_run(new_run_id(time.time()))
            for scenario in scenarios:
                result = session.run_scenario(scenario)
                run.scenarios.append(result)
                if _record(args, baseline, result):
                    break
            run.finished_at = time.time()
    coverage_gate.finish_run(run, args, baseline, [s.id for s in scenarios])
    out = write_reports(run, args.report_dir, formats)
    _print_summary(run, out, args.quiet)
    return run.exit_code


def _record(args: argparse.Namespace, baseline: Any, result: ScenarioResult) -> bool:
    """A finished scenario: the baseline applied, its console row; True when ``-x`` stops."""
    from harness import baseline as baselines

    if baseline is not None:
        baselines.apply_to_scenario(result, baseline)
    if not args.quiet:
        print(_row(result.status.value, result.id, _check_counts(result.checks)), flush=True)
    return bool(args.exitfirst and result.status in (Status.FAILED, Status.ERROR, Status.STALE))


def _target_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--broker-health/-timeout/-restart``: for the brokers the harness starts."""
    return {
        "broker_health": args.broker_health,
        "broker_timeout": args.broker_timeout,
        "broker_restart": args.broker_restart,
    }


def _run_workers(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    on_result: Callable[[ScenarioResult], bool],
) -> RunResult:
    from harness.parallel import SessionOptions, run_parallel
    from harness.reporting import new_run_id

    if args.port:
        raise UsageError("--workers: every worker has its own sandbox on a free port; drop --port")
    options = SessionOptions(
        broker=args.broker, tls=args.tls, seed=args.seed, **_target_options(args)
    )
    return run_parallel(
        scenarios, options, args.workers, new_run_id(time.time()), on_result=on_result
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _target_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and the options of brokers the harness starts (``cmd:``, ``docker:``)."""
    from harness.targets import DEFAULT_START_TIMEOUT

    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="run on N worker processes, each with its own sandbox and broker; one merged "
        "report (default: 1)",
    )
    parser.add_argument(
        "--broker-health",
        metavar="PATH",
        default=None,
        help="cmd:/docker: brokers: path (or URL) polled until it answers 200 "
        "(default: /.well-known/oauth-authorization-server)",
    )
    parser.add_argument(
        "--broker-timeout",
        type=_positive_seconds,
        default=DEFAULT_START_TIMEOUT,
        metavar="SECONDS",
        help="cmd:/docker: brokers: seconds to wait for health (default: %(default)s)",
    )
    parser.add_argument(
        "--broker-restart",
        choices=("scenario", "run"),
        default="scenario",
        help="cmd:/docker: brokers: a fresh one before every scenario (default), or one per run",
    )


def _gate_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.coverage_gate import add_arguments

    add_arguments(parser)


def _check_counts(checks: list[CheckResult]) -> str:
    passed = sum(1 for c in checks if c.status is Status.PASSED)
    failed = [c.id for c in checks if c.status is Status.FAILED]
    text = f"{passed}/{len(checks)} checks passed"
    return text + (f"; failed: {', '.join(failed)}" if failed else "")


def _row(status: str, scenario_id: str, detail: str) -> str:
    shown = scenario_id if len(scenario_id) <= 44 else scenario_id[:41] + "..."
    return f"{status:<8} {shown:<44} {detail}"


def _print_summary(run: RunResult, out: Path, quiet: bool) -> None:
    from harness.reproduce import reproduce_lines

    summary = run.summary
    counts = ", ".join(f"{summary[s.value]} {s.value.lower()}" for s in Status if summary[s.value])
    verdict = {0: "PASSED", 1: "FAILED", 3: "ERROR"}[run.exit_code]
    if not quiet:
        print("-" * 78)
        for scenario in run.scenarios:
            if scenario.status in (Status.FAILED, Status.ERROR, Status.STALE):
                print(f"{scenario.status.value}: {scenario.id} ({scenario.file}:{scenario.line})")
                if scenario.error:
                    print(f"    {scenario.error}")
                blocking = scenario.blocking_checks()
                for check in blocking:
                    print(f"    {check.id} {check.title}: {check.message}")
                # the curl of each exchange that failed, then the rerun line (C4)
                for line in reproduce_lines(scenario):
                    if line != scenario.reproduce:
                        print(f"    reproduce: {line}")
                print(f"    rerun: {scenario.reproduce}")
        for finding in run.gate:
            label = "GATE" if finding.fails else "note"
            print(f"{label}: {finding.message}")
    print(f"{verdict}: {summary['total']} scenarios ({counts}) against {run.broker}")
    print(f"report: {out / 'report.html'}")


# -- serve -------------------------------------------------------------------------------
def _cmd_serve(args: argparse.Namespace) -> int:
    from harness.sandbox_env import SandboxFacts, harness_env
    from harness.targets import ReferenceTarget
    from mocks import defaults
    from mocks.sandbox import Sandbox

    if args.ca_dir is not None and not args.tls:
        raise UsageError("--ca-dir needs --tls")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sandbox = Sandbox(port=args.port, tls=args.tls, ca_dir=args.ca_dir, seed=args.seed).start()
    try:
        target = ReferenceTarget(sandbox, port=args.broker_port)
        try:
            _wait_until_ready(
                sandbox.admin_url + "/health",
                target.url + "/.well-known/oauth-authorization-server",
            )
            values = harness_env(SandboxFacts.of(sandbox), target.url)
            print(f"mcp-harness {harness.__version__}: sandbox and reference broker are up")
            print(f"  sandbox (HTTP proxy)   {sandbox.proxy_url}")
            if sandbox.ca_bundle is not None:
                print("  HTTPS                  CONNECT through the proxy, trusting the CA bundle")
                print(f"  CA bundle              {sandbox.ca_bundle}")
            print(f"  admin API              {sandbox.admin_url}/")
            print(f"  Okta issuer            {sandbox.okta_issuer}")
            for name in defaults.WORKSPACES:
                print(f"  Databricks workspace   {sandbox.workspace(name).url}")
            print(f"  Databricks account     {values['HARNESS_DATABRICKS_ACCOUNT_HOST']}")
            print(f"  Snowflake account      {values['HARNESS_SNOWFLAKE_ACCOUNTS']}")
            print(f"  reference broker       {target.url}")
            print(f"  broker resources       {target.url}/v1/databricks-sql/<dbc-segment>/mcp")
            print(f"  users                  {values['HARNESS_USERS']} (password in the env file)")
            if args.env_file:
                _write_env_file(args.env_file, values)
                print(f"  env file               {args.env_file}")
            print("Press Ctrl+C to stop.", flush=True)
            stop.wait()
        finally:
            target.stop()
    finally:
        sandbox.stop()
    return EXIT_OK


def _wait_until_ready(*urls: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        for url in urls:
            while True:
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
                time.sleep(0.05)  # start-up polling, not expiry waiting


def _write_env_file(path: Path, values: dict[str, str]) -> None:
    """Write atomically so a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in values.items())
    os.replace(tmp, path)


# -- list / validate -------------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> int:
    import json

    from harness import listing

    items = list(args.items)
    section = items.pop(0) if items and items[0] in listing.SECTIONS else None
    paths = [Path(item) for item in items]
    data = listing.collect(section, lambda: _load(paths))
    sys.stdout.write(json.dumps(data, indent=2) + "\n" if args.json else listing.render(data))
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario import validate_paths

    report = validate_paths(args.paths or [default_scenario_dir()])
    if report.errors:
        for error in report.errors:
            print(error, file=sys.stderr)
        files = {e.split(":", 1)[0] for e in report.errors}
        print(
            f"mcp-harness: {len(report.errors)} error(s) in {len(files)} file(s)", file=sys.stderr
        )
        return EXIT_USAGE
    fragments = f", {len(report.fragments)} fragment(s)" if report.fragments else ""
    print(f"ok: {len(report.files)} file(s), {len(report.scenarios)} scenario(s){fragments}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
