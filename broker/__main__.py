"""``python -m broker [--config FILE] [--check-config] [--port N]``: run the reference broker.

Settings come from ``--config FILE`` (or ``BROKER_CONFIG``), a TOML/YAML file
(:mod:`broker.config_file`), overridden by ``BROKER_*``/``HARNESS_*`` variables so secrets can
stay out of the file. ``--check-config`` validates everything a start would (settings,
upstreams, Rego policies) and prints one line per upstream instead of listening, so a change
can be checked in CI or before a restart.

Configuration errors print one line and exit with status 2 (never a traceback), so the harness
and users see what to fix.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sqlite3
import sys
import threading

from broker.config import DEFAULT_STORAGE, BrokerConfig, ConfigError
from broker.server import BrokerServer
from broker.upstreams import Upstream
from broker.variants import DEFECTS, create_broker


def upstream_summary(upstream: Upstream) -> str:
    """One line describing an upstream: what ``--check-config`` prints for each.

    ``key=value`` pairs so a script can grep them; the host template keeps its ``%s`` (where
    the resource segment goes) and ``gateway`` names the upstream MCP path when it is on.
    """
    fields = [
        upstream.name,
        f"provider={upstream.provider}",
        f"flow={upstream.flow}",
        f"resource={upstream.path_prefix}<segment>/mcp",
        f"host={upstream.host_template}",
        f"scopes={','.join(upstream.offered_scopes)}",
        f"gateway={upstream.mcp_path if upstream.gateway else 'off'}",
    ]
    if upstream.provider == "snowflake":
        fields.append(f"role={upstream.role} roles={','.join(upstream.roles)}")
    return " ".join(fields)


def check_config(config: BrokerConfig, defect: str | None = None) -> list[str]:
    """Validate what only building the broker checks (the Rego policies compile) and return
    the summary lines. Storage is replaced by ``:memory:`` so a check creates no file."""
    broker = create_broker(dataclasses.replace(config, storage=":memory:"), defect=defect)
    broker.close()
    return [upstream_summary(u) for u in config.upstream_map.values()]


def _one_line(text: object) -> str:
    """A message on one line (a policy compiler may report several lines)."""
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m broker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        # the harness's cmd:/docker: targets choose a free port and pass it in the environment
        default=os.environ.get("BROKER_PORT") or os.environ.get("HARNESS_BROKER_PORT") or 8400,
        help="listen port (default: $BROKER_PORT, $HARNESS_BROKER_PORT or 8400)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML (.toml) or YAML (.yaml/.yml) configuration file (default: $BROKER_CONFIG); "
        "environment variables override its settings",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print one line per upstream and exit (no listening)",
    )
    parser.add_argument(
        "--defect",
        choices=sorted(DEFECTS),
        default=None,
        help="run a known-bad variant (for testing the tester)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = BrokerConfig.from_env(config_file=args.config)
        state_dir = os.environ.get("HARNESS_BROKER_STATE_DIR")
        if state_dir and config.storage == DEFAULT_STORAGE:
            # started by the harness: the default database goes into the run's fresh directory
            config = dataclasses.replace(config, storage=os.path.join(state_dir, DEFAULT_STORAGE))
        if args.check_config:
            for line in check_config(config, args.defect):
                print(line)
            return 0
        server = BrokerServer(config, defect=args.defect, host=args.host, port=args.port)
    except ConfigError as exc:
        print(f"broker: configuration error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # Last resort: a value the validation missed (say a regular expression ``re`` rejects
        # with OverflowError) is still a configuration error, not a traceback.
        print(
            f"broker: configuration error: {type(exc).__name__}: {_one_line(exc)}",
            file=sys.stderr,
        )
        return 2
    except sqlite3.Error as exc:  # storage names a file SQLite cannot open or create
        print(
            f"broker: configuration error: storage {config.storage!r}: {_one_line(exc)}",
            file=sys.stderr,
        )
        return 2
    try:
        server.start()
    except OSError as exc:
        print(f"broker: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"broker: serving at {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
