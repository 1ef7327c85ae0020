"""``--broker docker:<image>``: the same contract as ``cmd:`` through a real Docker daemon.

The image is the reference broker built offline by ``docker/build-broker-image.sh``
(``mcp-harness-broker:test``). Without a reachable daemon or without that image the daemon
tests are SKIPPED with the reason; ``HARNESS_REQUIRE_DOCKER=1`` (set by CI, which starts
``dockerd`` and builds the image) turns that skip into a failure, so CI proves they ran.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from harness.docker_target import LABEL, DockerTarget, docker_client
from harness.results import Status
from harness.scenario import default_scenario_dir, load_paths
from harness.session import HarnessSession
from harness.targets import TargetError
from mocks.sandbox import Sandbox

IMAGE = os.environ.get("HARNESS_DOCKER_IMAGE", "mcp-harness-broker:test")
REQUIRED = os.environ.get("HARNESS_REQUIRE_DOCKER") == "1"


def _unavailable() -> str | None:
    """Why the daemon tests cannot run here (None: they can)."""
    try:
        client = docker_client()
    except TargetError as exc:
        return str(exc)
    try:
        client.images.get(IMAGE)
    except Exception:
        return f"image {IMAGE} missing: build it with docker/build-broker-image.sh"
    return None


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    reason = _unavailable()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"HARNESS_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    yield docker_client()


def _scenarios(*ids: str) -> list[Any]:
    chosen = [s for s in load_paths([default_scenario_dir()]) if s.id in ids]
    assert sorted(s.id for s in chosen) == sorted(ids)
    return chosen


def _gone(client: Any, container_id: str) -> bool:
    import docker.errors

    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False


def test_the_reference_broker_image_passes_and_skips_clock_scenarios(docker: Any) -> None:
    scenarios = _scenarios("token-isolation", "invalid-segment[evil]", "expiry")
    with HarnessSession(f"docker:{IMAGE}") as session:
        target = session.target
        assert isinstance(target, DockerTarget)
        first = target.container.id
        labels = target.container.labels
        results = {s.id: session.run_scenario(s) for s in scenarios}
        last = target.container.id
    assert labels == {LABEL: "broker"}
    assert {k: r.status for k, r in results.items()} == {
        "token-isolation": Status.PASSED,
        "invalid-segment[evil]": Status.PASSED,
        "expiry": Status.SKIPPED,
    }, {k: [c.message for c in r.failed_checks()] for k, r in results.items()}
    (clock,) = results["expiry"].checks
    assert clock.id == "CLOCK-01" and "cannot share the sandbox clock" in clock.message
    log = results["token-isolation"].target_log
    assert any("broker: serving at" in line for line in log)
    assert any("dbc-bbb.cloud.databricks.test" in line for line in log)
    assert not any("eyJ" in line for r in results.values() for line in r.target_log)
    assert first != last  # a fresh container per scenario
    assert _gone(docker, first) and _gone(docker, last)  # removed afterwards


def test_a_known_bad_broker_image_fails_the_scenario_that_catches_it(docker: Any) -> None:
    (scenario,) = _scenarios("multi-workspace")
    with HarnessSession(f"docker:{IMAGE} python -m broker --defect shared-cache") as session:
        result = session.run_scenario(scenario)
    assert result.status is Status.FAILED
    assert {"MW-02", "MW-03"} <= {c.id for c in result.failed_checks()}


def test_a_container_that_exits_at_once_is_one_line_with_its_logs(
    docker: Any, sandbox: Sandbox
) -> None:
    target = DockerTarget(
        f"{IMAGE} python -c \"print('broker: bad setting y'); raise SystemExit(3)\"", sandbox
    )
    launched: list[str] = []
    launch = target._launch

    def recording(env: dict[str, str]) -> None:
        launch(env)
        launched.append(target.container.id)

    target._launch = recording  # type: ignore[method-assign]
    with pytest.raises(TargetError) as info:
        target.start()
    message = str(info.value)
    assert "\n" not in message
    assert "exited with status 3" in message and "broker: bad setting y" in message
    assert len(launched) == 1 and _gone(docker, launched[0])


def test_a_missing_image_is_one_line(docker: Any, sandbox: Sandbox) -> None:
    with pytest.raises(TargetError, match="not available locally"):
        DockerTarget("mcp-harness-no-such-image:0", sandbox).start()


# -- without a daemon -------------------------------------------------------------------------
def test_without_the_sdk_the_error_names_the_extra(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.import_module

    def no_docker(name: str, package: str | None = None) -> Any:
        if name == "docker":
            raise ImportError("No module named 'docker'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_docker)
    with pytest.raises(TargetError, match=r"install mcp-broker-harness\[docker\]"):
        DockerTarget(IMAGE, sandbox)


def test_an_unreachable_daemon_is_one_line(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    pytest.importorskip("docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with pytest.raises(TargetError, match="cannot reach the Docker daemon"):
        DockerTarget(IMAGE, sandbox)
