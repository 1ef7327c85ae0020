"""``python -m broker --port N``: run the reference broker from ``BROKER_*``/``HARNESS_*`` env.

Configuration errors print one line and exit with status 2 (never a traceback), so the harness
and users see what to fix.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from broker.config import BrokerConfig, ConfigError
from broker.server import BrokerServer
from broker.variants import DEFECTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument(
        "--defect",
        choices=sorted(DEFECTS),
        default=None,
        help="run a known-bad variant (for testing the tester)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = BrokerConfig.from_env()
        server = BrokerServer(config, defect=args.defect, host=args.host, port=args.port)
        server.start()
    except ConfigError as exc:
        print(f"broker: configuration error: {exc}", file=sys.stderr)
        return 2
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
