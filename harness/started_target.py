"""Brokers the harness starts itself (``cmd:`` and ``docker:`` targets, DESIGN §3).

What both share lives here: choosing a free port, the ``HARNESS_*`` environment the broker
is configured from, waiting for its health URL, keeping its output for the report and
stopping it. :mod:`harness.process_target` and :mod:`harness.docker_target` only say how to
start, watch and stop their kind of process.

Such a broker runs in another process (or container), so it cannot share the sandbox clock
(``shares_clock = False``: clock scenarios are SKIPPED with the reason), its settings belong to
its command line (``can_configure = False``) and its audit log stays in its own process.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Self

import httpx

from harness.sandbox_env import SandboxFacts, harness_env
from harness.targets import DEFAULT_START_TIMEOUT, TargetError, _publishes_discovery, trust_broker
from mocks.core.redact import mask, redact_text
from mocks.sandbox import Sandbox

#: What the harness polls until it answers 200 (every OAuth broker publishes RFC 8414).
DEFAULT_HEALTH_PATH = "/.well-known/oauth-authorization-server"
#: Seconds between SIGTERM and SIGKILL when the broker is stopped.
STOP_GRACE = 5.0
#: Output lines quoted in a start-up error message.
ERROR_TAIL = 5
#: ``--broker-restart``: a fresh broker before every scenario, or one for the whole run.
RESTART_POLICIES = ("scenario", "run")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class OutputLog:
    """A started broker's output: redacted lines, bounded, read by a background thread.

    :meth:`drain` hands the lines since the last call to the scenario that just ran
    (``ScenarioResult.target_log``); :meth:`tail` keeps the last lines for error messages even
    after a drain. Redaction happens on arrival, so no whole token is ever stored: JWTs, and
    the secrets the harness itself handed the broker (a broker printing its configuration
    must not put the client secret into the report).
    """

    def __init__(self, limit: int = 2000, secrets: Iterable[str] = ()) -> None:
        #: Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._lines: deque[str] = deque(maxlen=limit)
        self._tail: deque[str] = deque(maxlen=ERROR_TAIL)
        self._lock = threading.Lock()
        self._partial = ""
        self._thread: threading.Thread | None = None

    def add(self, line: str) -> None:
        text = redact_text(line.rstrip("\r\n"))
        for secret in self.secrets:
            text = text.replace(secret, mask(secret))
        if not text.strip():
            return
        with self._lock:
            self._lines.append(text)
            self._tail.append(text)

    def feed(self, chunk: str) -> None:
        """Text that may end mid-line (docker log chunks)."""
        parts = (self._partial + chunk).split("\n")
        self._partial = parts.pop()
        for part in parts:
            self.add(part)

    def close(self) -> None:
        if self._partial:
            self.add(self._partial)
            self._partial = ""

    def follow(self, chunks: Iterable[bytes | str]) -> None:
        """Read ``chunks`` in a daemon thread until they end (the process closed its output)."""

        def pump() -> None:
            with contextlib.suppress(Exception):  # a stream torn down at stop
                for chunk in chunks:
                    self.feed(
                        chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
                    )
            self.close()

        self._thread = threading.Thread(target=pump, name="broker-output", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def following(self) -> bool:
        """Whether the reader thread still waits for output."""
        return self._thread is not None and self._thread.is_alive()

    def drain(self) -> list[str]:
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
        return lines

    def tail(self) -> str:
        """The last lines on one line (start-up errors are one line, DESIGN §5)."""
        with self._lock:
            lines = list(self._tail)
        return " | ".join(line.strip() for line in lines) or "(no output)"


class StartedTarget:
    """A broker started by the harness, configured through ``HARNESS_*`` variables.

    Subclasses implement :meth:`_launch`, :meth:`_exit_status` and :meth:`_terminate`. The
    broker is told its port (``HARNESS_BROKER_PORT``), its base URL (``HARNESS_BROKER``, what
    the harness probes) and a fresh directory for its files (``HARNESS_BROKER_STATE_DIR``,
    removed afterwards, so runs and parallel workers never share a database).

    ``restart="scenario"`` (the default) starts a fresh broker, on the same port, before every
    scenario but the first: the sandbox reset forgets every token the mocks issued, and a
    broker still caching one would fail the next scenario for a reason that is not its own
    (the in-process reference broker is reset instead). ``restart="run"`` keeps one process
    for the whole run: faster, for brokers that cope with upstream state vanishing.
    """

    shares_clock = False
    can_configure = False

    def __init__(
        self,
        spec: str,
        sandbox: Sandbox,
        *,
        health: str | None = None,
        timeout: float = DEFAULT_START_TIMEOUT,
        port: int | None = None,
        restart: str = "scenario",
    ) -> None:
        if restart not in RESTART_POLICIES:
            raise TargetError(
                f"--broker-restart must be one of {', '.join(RESTART_POLICIES)}, got {restart!r}"
            )
        self.spec = spec
        self.restart = restart
        self.sandbox = sandbox
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health_url = _health_url(self.url, health)
        self.timeout = timeout
        self.log = OutputLog(secrets=_secrets(harness_env(SandboxFacts.of(sandbox), self.url)))
        self.state_dir = tempfile.mkdtemp(prefix="mcp-harness-broker-")
        self.is_issuer: bool | None = None
        self._stopped = False
        #: Whether a scenario ran against the current process (it restarts before the next).
        self._served = False
        self._exit_reported = False

    # -- lifecycle ---------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The variables the broker is started with: ``serve --env-file``'s set
        (:func:`harness.sandbox_env.harness_env`, ``HARNESS_BROKER`` = the URL the harness
        probes) and the port, state directory it is given."""
        return {
            **harness_env(SandboxFacts.of(self.sandbox), self.url),
            "HARNESS_BROKER_PORT": str(self.port),
            "HARNESS_BROKER_STATE_DIR": self.state_dir,
        }

    def start(self) -> Self:
        """Start the broker and wait until its health URL answers 200 (or fail in one line)."""
        try:
            self._launch(self.environment())
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        last = "no answer"
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                status = self._exit_status()
                if status is not None:
                    self.log.join()
                    raise TargetError(
                        f"broker {self.spec} exited with status {status} before "
                        f"{self.health_url} answered; last output: {self.log.tail()}"
                    )
                try:
                    code = client.get(self.health_url).status_code
                    if code == 200:
                        return
                    last = f"HTTP {code}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                if time.monotonic() > deadline:
                    raise TargetError(
                        f"broker {self.spec} did not answer {self.health_url} with 200 within "
                        f"{self.timeout:g} s (last: {last}); last output: {self.log.tail()}"
                    )
                time.sleep(0.1)  # start-up polling, not expiry waiting

    def _restart(self) -> None:
        """A new process with a new, empty state directory: nothing the last scenario left."""
        self._terminate(STOP_GRACE)
        self.log.join()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir = tempfile.mkdtemp(prefix="mcp-harness-broker-")
        self._launch(self.environment())
        self._wait_healthy()

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after :data:`STOP_GRACE`) and clean up."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._terminate(STOP_GRACE)
        finally:
            self.log.join()
            shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- Target protocol ---------------------------------------------------------------
    def reset(self) -> None:
        """Restart the broker if a scenario used it (see ``restart``). A broker that died
        since the last scenario makes the next one ERROR, with its last output, and is
        started again for the one after; one that is an issuer is trusted again after the
        sandbox reset."""
        status = self._exit_status()
        if status is not None and not self._exit_reported:
            self._exit_reported = True  # this scenario ERRORs; the next one gets a new broker
            raise TargetError(
                f"broker {self.spec} exited with status {status}; last output: {self.log.tail()}"
            )
        if status is not None or (self._served and self.restart == "scenario"):
            self._restart()
            self._exit_reported = False
        self._served = True
        if self.is_issuer is None:
            self.is_issuer = _publishes_discovery(self.url)
        if self.is_issuer:
            trust_broker(self.sandbox, self.url)

    def configure(self, settings: dict[str, object]) -> None:
        """Its settings are its command line's (scenarios needing others are skipped)."""
        raise TargetError(f"broker {self.spec} cannot be reconfigured by the harness")

    def restore(self) -> None:
        """Nothing was changed."""

    def drain_log(self) -> list[str]:
        return self.log.drain()

    def audit_records(self) -> list[dict[str, Any]] | None:
        """Its audit log stays in its process (audit scenarios SKIP: AUDIT-01)."""
        return None

    # -- what subclasses provide -------------------------------------------------------
    def _launch(self, env: dict[str, str]) -> None:
        raise NotImplementedError

    def _exit_status(self) -> int | None:
        """The exit status once the broker has ended, ``None`` while it runs."""
        raise NotImplementedError

    def _terminate(self, grace: float) -> None:
        raise NotImplementedError


def _secrets(environment: dict[str, str]) -> list[str]:
    """The values among the broker's variables that are secrets (client secret, password)."""
    return [v for k, v in environment.items() if k.endswith(("_SECRET", "_PASSWORD"))]


def _health_url(base: str, health: str | None) -> str:
    """``--broker-health``: a path on the broker, or a whole URL."""
    if not health:
        return base + DEFAULT_HEALTH_PATH
    if health.startswith(("http://", "https://")):
        return health
    return base + ("" if health.startswith("/") else "/") + health
