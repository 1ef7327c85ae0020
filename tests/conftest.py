"""Shared fixtures for the project's own tests: a real sandbox on a loopback port.

The sandbox is started once per session (key generation and server start are paid once) and
reset before every test, so tests see only the default data and a real-time clock.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from mocks.sandbox import Sandbox

# Property tests are reproducible by default (``ci``: derandomized, no deadline on a shared
# machine); ``HYPOTHESIS_PROFILE=explore`` draws fresh random cases on every run.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


@pytest.fixture(scope="session")
def _tls_sandbox_session() -> Iterator[Sandbox]:
    from mocks.sandbox import Sandbox

    sandbox = Sandbox(tls=True).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def tls_sandbox(_tls_sandbox_session: Sandbox) -> Sandbox:
    """A second running sandbox serving HTTPS (``https://`` issuers), reset to default data.

    Its CA certificate is ``tls_sandbox.ca_bundle``; the plain ``sandbox`` stays plain HTTP.
    """
    _tls_sandbox_session.reset()
    return _tls_sandbox_session


@pytest.fixture
def https(tls_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client reaching the TLS sandbox's hosts through its proxy (CONNECT), trusting its CA."""
    verify = ssl.create_default_context(cafile=str(tls_sandbox.ca_bundle))
    with httpx.Client(
        proxy=tls_sandbox.proxy_url, verify=verify, trust_env=False, follow_redirects=False
    ) as client:
        yield client


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An HTTP client that reaches sandbox hosts through the sandbox server as a proxy.

    Redirects are not followed, so tests see every 302 of an OAuth flow.
    """
    with httpx.Client(proxy=sandbox.proxy_url, trust_env=False, follow_redirects=False) as client:
        yield client
