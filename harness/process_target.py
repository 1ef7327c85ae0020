"""``--broker cmd:<command>``: a broker the harness starts as a local process.

The command is split like a shell would (:func:`shlex.split`) but run without one, so no
quoting surprises and no shell in the process tree. It inherits the harness's environment
plus the ``HARNESS_*`` values (:meth:`StartedTarget.environment`) and runs in its own process
group: stopping it signals the whole group, so a wrapper script's children die too.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess

from harness.started_target import DEFAULT_START_TIMEOUT, StartedTarget
from harness.targets import TargetError
from mocks.sandbox import Sandbox


class ProcessTarget(StartedTarget):
    def __init__(
        self,
        command: str,
        sandbox: Sandbox,
        *,
        health: str | None = None,
        timeout: float = DEFAULT_START_TIMEOUT,
        port: int | None = None,
        restart: str = "scenario",
    ) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise TargetError(f"--broker cmd: cannot split {command!r}: {exc}") from None
        if not self.argv:
            raise TargetError("--broker cmd: needs a command, e.g. cmd:'python -m broker'")
        super().__init__(
            f"cmd:{command}", sandbox, health=health, timeout=timeout, port=port, restart=restart
        )
        self.process: subprocess.Popen[bytes] | None = None

    def _launch(self, env: dict[str, str]) -> None:
        try:
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group (see _terminate)
            )
        except OSError as exc:
            raise TargetError(f"broker {self.spec} cannot be started: {exc}") from None
        assert self.process.stdout is not None
        self.log.follow(iter(self.process.stdout.readline, b""))

    def _exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def _terminate(self, grace: float) -> None:
        process = self.process
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)  # the group: pid == pgid with start_new_session
            except ProcessLookupError:  # the group has no member left
                break
            try:
                process.wait(timeout=grace)
                if sig is signal.SIGTERM:
                    # the leader is gone; children that ignored SIGTERM still get SIGKILL
                    os.killpg(process.pid, signal.SIGKILL)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        process.wait()
        self.log.join()
        if process.stdout is not None and not self.log.following():
            # not while the reader is blocked on it (a child that escaped the group still
            # holds the pipe): closing would wait for that read; the reader ends at its EOF
            process.stdout.close()
