"""The workspace exchange against scripted upstream answers (httpx MockTransport, no sockets).

Checks BR-02 (lenient parsing, fail closed), BR-04 (upstream status/error/request id surfaced,
no token leaked) and the Okta-session rules, one answer shape at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from broker.app import Broker
from broker.config import BrokerConfig
from broker.errors import OAuthError
from broker.storage import Session

BASE = "http://broker.example"
RESOURCE = f"{BASE}/v1/databricks-sql/dbc-aaa/mcp"
HOST = "dbc-aaa.cloud.databricks.test"
SECRET_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
NOW = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def make(
    handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock | None = None
) -> tuple[Broker, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    clock = clock or FakeClock()
    config = BrokerConfig(
        okta_issuer="http://okta.test/oauth2/default",
        okta_client_id="cid",
        okta_client_secret="s",
        storage=":memory:",
        databricks_host_template="http://%s.cloud.databricks.test",
    )
    broker = Broker(
        config, clock=clock, base_url=BASE, http=httpx.Client(transport=httpx.MockTransport(record))
    )
    broker.storage.upsert_session(
        Session("00u1", "a@example.com", SECRET_JWT, NOW + 3600, None, NOW)
    )
    return broker, seen


def answer(status: int, body: object, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **headers},
        )

    return handler


def exchange(broker: Broker) -> str:
    token = broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE, BASE))
    return token.access_token


def test_request_shape_and_lenient_response() -> None:
    broker, seen = make(
        answer(
            200,
            {"access_token": "at-1", "token_type": "bearer", "expires_in": "3600", "extra": True},
        )
    )
    assert exchange(broker) == "at-1"
    [request] = seen
    assert str(request.url) == f"http://{HOST}/oidc/v1/token"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": SECRET_JWT,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "scope": "sql",
    }
    stored = broker.storage.get_upstream_token("00u1", f"databricks-sql-{HOST}")
    assert stored is not None and stored.expires_at == NOW + 3600


def test_missing_expires_in_uses_the_id_token_lifetime() -> None:
    broker, _ = make(answer(200, {"access_token": "at-1", "token_type": "Bearer"}))
    exchange(broker)
    stored = broker.storage.get_upstream_token("00u1", f"databricks-sql-{HOST}")
    assert stored is not None and stored.expires_at == NOW + 3600


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "Bearer", "expires_in": 3600},
        {"access_token": "", "token_type": "Bearer"},
        {"access_token": "at", "token_type": "mac"},
        {"access_token": "at"},
    ],
)
def test_fail_closed_on_unusable_answers(body: dict[str, object]) -> None:
    broker, _ = make(answer(200, body))
    with pytest.raises(OAuthError) as info:
        exchange(broker)
    assert (info.value.status, info.value.error) == (502, "server_error")
    assert broker.audit_records()[-1]["outcome"] == "error"
    assert broker.storage.get_upstream_token("00u1", f"databricks-sql-{HOST}") is None


def test_upstream_error_is_surfaced_without_tokens() -> None:
    broker, _ = make(
        answer(
            400,
            {"error": "invalid_request", "error_description": f"bad subject {SECRET_JWT}"},
            **{"X-Request-Id": "req-77"},
        )
    )
    with pytest.raises(OAuthError) as info:
        exchange(broker)
    error = info.value
    assert (error.status, error.error) == (400, "invalid_grant")
    assert error.description.startswith(f"upstream {HOST} answered 400 invalid_request: ")
    assert SECRET_JWT not in error.description
    record = broker.audit_records()[-1]
    assert record["outcome"] == "error" and record["request_id"] == "req-77"
    assert SECRET_JWT not in json.dumps(broker.audit_records())


def test_upstream_401_is_invalid_grant() -> None:
    broker, _ = make(answer(401, {"error_code": 401, "message": "Invalid credentials."}))
    with pytest.raises(OAuthError) as info:
        exchange(broker)
    assert info.value.error == "invalid_grant" and "401" in info.value.description
    assert "Invalid credentials." in info.value.description


@pytest.mark.parametrize("status", [500, 503, 429])
def test_upstream_5xx_is_temporarily_unavailable(status: int) -> None:
    broker, _ = make(answer(status, {"error": "server_error"}))
    with pytest.raises(OAuthError) as info:
        exchange(broker)
    assert (info.value.status, info.value.error) == (502, "temporarily_unavailable")


def test_unreachable_upstream_is_temporarily_unavailable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    broker, _ = make(down)
    with pytest.raises(OAuthError) as info:
        exchange(broker)
    assert (info.value.status, info.value.error) == (502, "temporarily_unavailable")
    assert HOST in info.value.description


def test_reuse_margin_and_expiry() -> None:
    clock = FakeClock()
    counter = iter(range(100))

    def fresh(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"access_token": f"at-{next(counter)}", "token_type": "Bearer", "expires_in": 600},
        )

    broker, seen = make(fresh, clock)
    assert exchange(broker) == "at-0"
    clock.now += 600 - 61
    assert exchange(broker) == "at-0"  # 61 s left > 60 s margin
    clock.now += 1
    assert exchange(broker) == "at-1"  # 60 s left: exchanged again
    assert len(seen) == 2
    assert [r["outcome"] for r in broker.audit_records()] == ["ok", "cached", "ok"]


def test_expiring_id_token_without_refresh_token_needs_sign_in() -> None:
    clock = FakeClock()
    broker, seen = make(answer(200, {"access_token": "at", "token_type": "Bearer"}), clock)
    clock.now += 3600 - 60
    with pytest.raises(OAuthError) as info:
        exchange(broker)
    assert info.value.error == "invalid_grant" and "sign in again" in info.value.description
    assert seen == []


def test_no_session_needs_sign_in() -> None:
    broker, seen = make(answer(200, {}))
    with pytest.raises(OAuthError) as info:
        broker.tokens.token_for("00u-nobody", "c", broker.target(RESOURCE, BASE))
    assert info.value.error == "invalid_grant" and seen == []
