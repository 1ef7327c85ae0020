"""Benchmarks: speed is measured here, never asserted in timed tests.

Runs the JOSE operations the mocks rely on and, when the sandbox imports, the full scenario
suite against the reference broker, printing operations per second and wall time. Numbers
from this machine are in ``../shared/research/perf-anchors.md`` for comparison.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from mocks.core.jose import KeySet, fixture_key


def rate(label: str, fn: Callable[[], object], seconds: float) -> None:
    count = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        fn()
        count += 1
    elapsed = time.perf_counter() - started
    print(f"{label:<40} {count / elapsed:>10.0f} /s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per micro-benchmark")
    parser.add_argument("--skip-suite", action="store_true", help="JOSE only")
    args = parser.parse_args()

    rs = KeySet([fixture_key("bench-rs", "RS256")])
    es = KeySet([fixture_key("bench-es", "ES256")])
    claims = {"sub": "alice@example.com", "aud": "x", "exp": 2_000_000_000}
    rs_token, es_token = rs.sign(claims), es.sign(claims)
    rate("RS256 sign (cached key)", lambda: rs.sign(claims), args.seconds)
    rate("ES256 sign (cached key)", lambda: es.sign(claims), args.seconds)
    rate("RS256 verify", lambda: rs.verify(rs_token, audience="x"), args.seconds)
    rate("ES256 verify", lambda: es.verify(es_token, audience="x"), args.seconds)

    if args.skip_suite:
        return
    from harness.scenario import default_scenario_dir, load_paths
    from harness.session import HarnessSession

    scenarios = load_paths([default_scenario_dir()])
    started = time.perf_counter()
    with HarnessSession("reference") as session:
        ready = time.perf_counter()
        run = session.run(scenarios, "bench")
    done = time.perf_counter()
    print(f"{'sandbox + broker start-up':<40} {ready - started:>10.3f} s")
    label = f"full scenario suite ({len(scenarios)} scenarios)"
    print(f"{label:<40} {done - ready:>10.3f} s")
    print(f"{'verdict':<40} {run.summary}")


if __name__ == "__main__":
    main()
