"""``mcp-harness env``: the values a broker under test must be configured with.

Prints the ``HARNESS_*`` variables (:func:`harness.sandbox_env.harness_env`, the same values
``mcp-harness serve --env-file`` writes) as ``KEY=value`` lines, ``--format
dotenv|shell|json``, or renders a broker config template (``--template reference-toml``,
``reference-yaml`` or a jinja2 file of your own) filled with them.

Where the values come from — what a user expects of "the values for my sandbox":

* ``--sandbox URL``: read from a running ``mcp-harness serve`` (its admin API), so they match
  that sandbox exactly, whichever port it chose;
* otherwise a sandbox on ``--port`` (default :data:`~harness.sandbox_env.DEFAULT_SANDBOX_PORT`,
  8380): if one already runs there it is read; if not, one is started just long enough to
  read its values and stopped again. The values then fit ``mcp-harness serve --port 8380``,
  which is printed as a hint on stderr (stdout stays machine-readable).

``HARNESS_BROKER`` is the broker's own URL: ``--broker reference`` means ``python -m broker``
on ``--broker-port`` (default 8400), ``--broker url:<base>`` your broker at ``<base>``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from harness.errors import UsageError

FORMATS = ("env", "dotenv", "shell", "json")


def add_parser(sub: Any) -> None:
    from harness.sandbox_env import DEFAULT_BROKER_PORT, DEFAULT_SANDBOX_PORT

    parser = sub.add_parser(
        "env",
        help="print the HARNESS_* values a broker under test is configured with",
        description=(
            "Print the values a broker must be configured with to run against the sandbox, "
            "or render a broker config template with them. Reads a running sandbox "
            f"(--sandbox URL, or the one on --port); without one, the values are those of "
            f"`mcp-harness serve --port {DEFAULT_SANDBOX_PORT}`."
        ),
    )
    parser.add_argument(
        "--broker",
        default="reference",
        help="the broker under test: reference (python -m broker on --broker-port) or "
        "url:<base> (your broker's base URL); sets HARNESS_BROKER (default: reference)",
    )
    parser.add_argument(
        "--broker-port",
        type=_port,
        default=DEFAULT_BROKER_PORT,
        help=f"with --broker reference: its port (default: {DEFAULT_BROKER_PORT})",
    )
    parser.add_argument(
        "--sandbox",
        metavar="URL",
        help="a running sandbox (mcp-harness serve: its HARNESS_PROXY URL) to read values from",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_SANDBOX_PORT,
        help=f"the sandbox port when --sandbox is not given (default: {DEFAULT_SANDBOX_PORT})",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="values of an HTTPS sandbox (mcp-harness serve --tls); needs --ca-dir",
    )
    parser.add_argument(
        "--ca-dir",
        type=Path,
        help="with --tls: the sandbox CA directory (pass the same one to serve --ca-dir)",
    )
    parser.add_argument(
        "--ca-bundle",
        help="with --sandbox of a TLS sandbox: its CA file (HARNESS_CA_BUNDLE; the admin API "
        "cannot name a local file)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="env", help="output format (default: env)"
    )
    parser.add_argument(
        "--template",
        metavar="NAME",
        help="render a broker config template instead: "
        + ", ".join(_template_names())
        + ", or the path of a jinja2 file",
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file, not stdout")
    parser.set_defaults(handler=run)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from harness.sandbox_env import harness_env

    broker_url = _broker_url(args.broker, args.broker_port)
    facts = _facts(args)
    values = harness_env(facts, broker_url)
    if args.template:
        text = render_template(
            args.template, values, broker_port=args.broker_port, sandbox_port=_port_of(facts)
        )
    else:
        text = format_values(values, args.format)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output {args.output}: {exc.strerror}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _broker_url(spec: str, port: int) -> str:
    kind, _, arg = spec.partition(":")
    if kind == "reference":
        return f"http://127.0.0.1:{port}"
    if kind == "url" and arg.startswith(("http://", "https://")):
        return arg.rstrip("/")
    raise UsageError(f"--broker {spec!r}: use reference or url:<base> (an http(s) base URL)")


def _port_of(facts: Any) -> int:
    from urllib.parse import urlsplit

    return urlsplit(facts.proxy_url).port or 80


def _facts(args: argparse.Namespace) -> Any:
    """The facts of the sandbox the values are for (see the module docstring)."""
    from harness.sandbox_env import SandboxFacts, SandboxUnavailable

    if args.sandbox:
        if args.tls or args.ca_dir:
            raise UsageError("--sandbox reads a running sandbox; --tls/--ca-dir do not apply")
        try:
            return SandboxFacts.read(args.sandbox, ca_bundle=args.ca_bundle)
        except SandboxUnavailable as exc:
            raise UsageError(f"--sandbox: {exc}") from None
    if args.ca_bundle:
        raise UsageError("--ca-bundle goes with --sandbox (with --port, use --tls --ca-dir)")
    if args.ca_dir is not None and not args.tls:
        raise UsageError("--ca-dir needs --tls")
    if args.tls and args.ca_dir is None:
        raise UsageError(
            "--tls needs --ca-dir DIR: the CA must outlive this command; give serve the same "
            "--ca-dir"
        )
    from mocks.sandbox import Sandbox

    sandbox = Sandbox(port=args.port, tls=args.tls, ca_dir=args.ca_dir)
    try:
        if _listening(args.port):
            raise OSError(f"port {args.port} is in use")
        sandbox.start()
    except (OSError, SystemExit):  # the port is taken (werkzeug exits): by a sandbox, hopefully
        try:
            facts = SandboxFacts.read(f"http://127.0.0.1:{args.port}", timeout=2.0)
        except SandboxUnavailable:
            raise UsageError(
                f"port {args.port} is in use by something that is not an mcp-harness "
                "sandbox; choose another --port or give --sandbox URL"
            ) from None
        if facts.okta_issuer.startswith("https://") and not args.tls:
            print(
                "mcp-harness env: the sandbox on this port serves HTTPS; pass --sandbox URL "
                "--ca-bundle FILE to include HARNESS_CA_BUNDLE",
                file=sys.stderr,
            )
        return facts
    try:
        facts = SandboxFacts.of(sandbox)
    finally:
        sandbox.stop()
    tls = f" --tls --ca-dir {shlex.quote(str(args.ca_dir))}" if args.tls else ""
    print(
        f"mcp-harness env: no sandbox runs on port {args.port}; these values are for "
        f"`mcp-harness serve --port {args.port}{tls}`",
        file=sys.stderr,
    )
    return facts


def _listening(port: int) -> bool:
    """Whether something accepts connections on the loopback ``port``."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


# -- output ------------------------------------------------------------------------------
def format_values(values: dict[str, str], fmt: str) -> str:
    """``env`` (``KEY=value``, as ``serve --env-file`` and ``docker --env-file`` read them),
    ``dotenv`` (double-quoted), ``shell`` (``export KEY='value'``, for ``eval``) or ``json``."""
    if fmt == "json":
        return json.dumps(values, indent=2) + "\n"
    if fmt == "dotenv":
        return "".join(f'{k}="{_dotenv_escape(v)}"\n' for k, v in values.items())
    if fmt == "shell":
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
    if fmt == "env":
        return "".join(f"{k}={v}\n" for k, v in values.items())
    raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")


def _dotenv_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _template_dir() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("harness"))) / "templates" / "brokers"


def _template_names() -> list[str]:
    """``reference.toml.j2`` → ``reference-toml``."""
    directory = _template_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name.removesuffix(".j2").replace(".", "-") for p in directory.glob("*.j2"))


def render_template(
    name: str, values: dict[str, str], *, broker_port: int, sandbox_port: int
) -> str:
    """A broker config template (bundled ``name`` or a jinja2 file) filled with ``values``.

    Values are inserted with the ``quote`` filter (a JSON string, which is also a valid TOML
    basic string and YAML double-quoted scalar) so a value can never break the file's
    syntax; an unknown variable in a template is an error, not an empty setting.
    """
    import jinja2

    from harness.sandbox_env import broker_settings

    if name in _template_names():
        base, _, ext = name.rpartition("-")
        directory, filename = _template_dir(), f"{base}.{ext}.j2"
    elif Path(name).is_file():
        directory, filename = Path(name).resolve().parent, Path(name).name
    else:
        known = ", ".join(_template_names())
        raise UsageError(f"--template {name!r}: no such template ({known}, or a jinja2 file)")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # TOML/YAML, not HTML: values are quoted by the quote filter
    )
    environment.filters["quote"] = lambda value: json.dumps(str(value))
    try:
        template = environment.get_template(filename)
        return template.render(
            env=values,
            settings=broker_settings(values),
            broker_port=broker_port,
            sandbox_port=sandbox_port,
        )
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f"{filename}:{line}" if line else filename
        raise UsageError(f"--template {where}: {exc}") from None
