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

    from mocks.core.seed import seeded_rsa_key

    started = time.perf_counter()
    for n in range(3):
        seeded_rsa_key(1000 + n, "bench")
    per_key = (time.perf_counter() - started) / 3
    print(f"{'seeded RSA-2048 derivation':<40} {per_key * 1000:>10.0f} ms")
    sandbox_requests(args.seconds)

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


def sandbox_requests(seconds: float) -> None:
    """Requests per second a client gets from the sandbox, plain proxying and CONNECT + TLS."""
    import ssl

    import httpx

    from mocks.sandbox import Sandbox

    keys = "acme.okta.test/oauth2/default/v1/keys"
    with Sandbox() as plain, httpx.Client(proxy=plain.proxy_url, trust_env=False) as client:
        rate("sandbox GET via proxy (http)", lambda: client.get(f"http://{keys}"), seconds)
    with Sandbox(tls=True) as tls:
        verify = ssl.create_default_context(cafile=str(tls.ca_bundle))
        with httpx.Client(proxy=tls.proxy_url, verify=verify, trust_env=False) as client:
            rate("sandbox GET via CONNECT (https)", lambda: client.get(f"https://{keys}"), seconds)


if __name__ == "__main__":
    main()
