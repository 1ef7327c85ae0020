"""``--broker docker:<image> [command…]``: a broker the harness runs as a container.

The same contract as ``cmd:`` (:class:`harness.started_target.StartedTarget`) through the
docker SDK (``pip install 'mcp-broker-harness[docker]'``, imported only when a docker target is
used). The container runs on the host network (``network_mode="host"``) so the broker reaches
the sandbox at ``127.0.0.1`` and the harness reaches the broker on ``HARNESS_BROKER_PORT``,
exactly as a local process would; its environment is the ``HARNESS_*`` values only (not the
harness's own). With ``--tls`` the sandbox CA file is mounted read-only at the same path.
The container's logs become the report's ``target_log``; it is removed afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import shlex
from typing import Any

from harness.started_target import DEFAULT_START_TIMEOUT, StartedTarget
from harness.targets import TargetError
from mocks.sandbox import Sandbox

INSTALL_HINT = "install mcp-broker-harness[docker] (pip install 'mcp-broker-harness[docker]')"
#: Label on every container the harness starts (``docker ps --filter label=mcp-harness``).
LABEL = "mcp-harness"


def _sdk() -> Any:
    """The docker SDK module. Looked up by name: from a checkout, ``docker/`` (the image build
    script's directory) would otherwise pass for it as an empty namespace package."""
    try:
        module = importlib.import_module("docker")
    except ImportError:
        module = None
    if not hasattr(module, "from_env"):
        raise TargetError(f"--broker docker: needs the docker SDK: {INSTALL_HINT}")
    return module


def docker_client() -> Any:
    """A client for the daemon ``DOCKER_HOST`` (or the default socket) names, or one line."""
    docker = _sdk()
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise TargetError(f"--broker docker: cannot reach the Docker daemon: {exc}") from None
    return client


class DockerTarget(StartedTarget):
    def __init__(
        self,
        image: str,
        sandbox: Sandbox,
        *,
        health: str | None = None,
        timeout: float = DEFAULT_START_TIMEOUT,
        port: int | None = None,
        restart: str = "scenario",
        client: Any = None,
    ) -> None:
        try:
            words = shlex.split(image)
        except ValueError as exc:
            raise TargetError(f"--broker docker: cannot split {image!r}: {exc}") from None
        if not words:
            raise TargetError(
                "--broker docker: needs an image, e.g. docker:mcp-harness-broker:test"
            )
        self.image, self.command = words[0], words[1:] or None
        self.client = client if client is not None else docker_client()
        super().__init__(
            f"docker:{image}", sandbox, health=health, timeout=timeout, port=port, restart=restart
        )
        self.container: Any = None

    def _launch(self, env: dict[str, str]) -> None:
        errors = importlib.import_module("docker.errors")
        volumes = {}
        ca_bundle = env.get("HARNESS_CA_BUNDLE")
        if ca_bundle:
            volumes[ca_bundle] = {"bind": ca_bundle, "mode": "ro"}
        # the state directory is a host path: the container gets its own (empty) one instead
        env = {**env, "HARNESS_BROKER_STATE_DIR": "/tmp"}
        self._ensure_image(errors)
        try:
            self.container = self.client.containers.run(
                self.image,
                self.command,
                detach=True,
                network_mode="host",
                # an init as PID 1 forwards SIGTERM: a bare PID 1 ignores it, and every stop
                # would wait for the grace period and end in SIGKILL
                init=True,
                environment=env,
                volumes=volumes,
                labels={LABEL: "broker"},
            )
        except errors.DockerException as exc:
            raise TargetError(f"broker {self.spec} cannot be started: {exc}") from None
        self.log.follow(self.container.logs(stream=True, follow=True))

    def _ensure_image(self, errors: Any) -> None:
        """A local image is used as it is; a missing one is pulled once, as ``docker run``
        would, and a failed pull is one line (offline CI builds its image instead)."""
        try:
            self.client.images.get(self.image)
            return
        except errors.ImageNotFound:
            pass
        try:
            self.client.images.pull(self.image)
        except errors.DockerException as exc:
            reason = " ".join(str(exc).split())[:200]
            raise TargetError(
                f"broker {self.spec}: image {self.image!r} is not available locally and cannot "
                f"be pulled ({reason}); docker/build-broker-image.sh builds "
                "mcp-harness-broker:test offline"
            ) from None

    def _exit_status(self) -> int | None:
        if self.container is None:
            return None
        try:
            self.container.reload()
        except Exception:  # removed behind our back: it is not running
            return -1
        if self.container.status in ("exited", "dead"):
            code: int = self.container.attrs.get("State", {}).get("ExitCode", -1)
            return code
        return None

    def _terminate(self, grace: float) -> None:
        container, self.container = self.container, None
        if container is None:
            return
        with contextlib.suppress(Exception):  # already gone
            container.stop(timeout=int(grace))  # SIGTERM, SIGKILL after the grace period
        with contextlib.suppress(Exception):
            container.remove(force=True)
