"""Shared fixtures for the project's own tests: a real sandbox on a loopback port.

The sandbox is started once per session (key generation and server start are paid once) and
reset before every test, so tests see only the default data and a real-time clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from mocks.sandbox import Sandbox


@pytest.fixture(scope="session")
def _sandbox_session() -> Iterator[Sandbox]:
    from mocks.sandbox import Sandbox

    sandbox = Sandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(_sandbox_session: Sandbox) -> Sandbox:
    """The running sandbox, reset to its default data."""
    _sandbox_session.reset()
    return _sandbox_session


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An HTTP client that reaches sandbox hosts through the sandbox server as a proxy.

    Redirects are not followed, so tests see every 302 of an OAuth flow.
    """
    with httpx.Client(proxy=sandbox.proxy_url, trust_env=False, follow_redirects=False) as client:
        yield client
