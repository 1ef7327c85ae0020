"""The shared core: clock, redaction, journal, the vhost server and its admin API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from mocks.core.clock import Clock
from mocks.core.http import json_response
from mocks.core.issuer import JwtIssuer
from mocks.core.jose import KeySet, fixture_key, generate_key
from mocks.core.journal import Journal, make_entry
from mocks.core.redact import (
    decode_jwt_unverified,
    describe_secret,
    fingerprint,
    redact_header,
    redact_mapping,
    redact_text,
)
from mocks.core.server import SandboxContext, SandboxServer


@pytest.fixture
def server() -> Iterator[tuple[SandboxServer, JwtIssuer]]:
    context = SandboxContext()
    srv = SandboxServer(context).start()
    issuer = JwtIssuer("idp.example.test", context.clock)
    srv.add(issuer)
    yield srv, issuer
    srv.stop()


def test_clock_advance_set_reset() -> None:
    clock = Clock(frozen_at=1000.0)
    assert clock.now() == 1000.0
    assert clock.advance(60) == 1060.0
    assert clock.set(5000.0) == 5000.0
    running = Clock()
    before = running.now()
    running.advance(3600)
    assert running.now() - before >= 3600
    running.reset()
    assert abs(running.offset) < 1e-6


def test_fixture_keys_are_cached_and_distinct_per_tenant() -> None:
    assert fixture_key("tenant-a") is fixture_key("tenant-a")
    assert fixture_key("tenant-a").kid != fixture_key("tenant-b").kid


def test_keyset_rotation_keeps_old_key_verifiable() -> None:
    keys = KeySet([fixture_key("rotating")])
    old = keys.sign({"sub": "x"})
    keys.rotate(generate_key("ES256"))
    new = keys.sign({"sub": "y"})
    assert keys.verify(old)["sub"] == "x"
    assert keys.verify(new)["sub"] == "y"
    assert {k["kid"] for k in keys.jwks()["keys"]} == {k.kid for k in keys.keys()}
    assert all("key_ops" not in k for k in keys.jwks()["keys"])


def test_redaction_never_shows_a_whole_token() -> None:
    token = fixture_key("redact").sign({"sub": "alice", "exp": 1})
    described = describe_secret(token)
    assert isinstance(described, dict) and described["jwt"]["claims"]["sub"] == "alice"
    assert token not in str(described)
    assert token not in redact_text(f"the token {token} leaked")
    assert token not in str(redact_mapping({"form": {"subject_token": token}}))
    assert "opaque-secret-value" not in redact_header("Authorization", "Bearer opaque-secret-value")
    assert fingerprint(token) in redact_header("Authorization", f"Bearer {token}")
    assert decode_jwt_unverified("not.a.jwt") is None


def test_journal_is_bounded_and_queryable_by_fingerprint() -> None:
    journal = Journal(per_host=3)
    for i in range(5):
        journal.record(
            make_entry(
                seq=journal.next_seq(),
                time=0.0,
                method="POST",
                host="h.test",
                path="/t",
                query={},
                headers=[("Authorization", f"Bearer tok-{i}")],
                form={"code": f"c{i}"},
            )
        )
    entries = journal.entries(host="h.test")
    assert [e.seq for e in entries] == [3, 4, 5]
    assert journal.entries(token="tok-4")[0].seq == 5
    assert journal.entries(token=fingerprint("tok-0")) == []
    assert "tok-4" not in str(entries[-1].to_dict())
    assert journal.last_seq == 5


def test_proxy_and_host_header_routing(server: tuple[SandboxServer, JwtIssuer]) -> None:
    srv, issuer = server
    with httpx.Client(proxy=srv.url, trust_env=False) as client:
        doc = client.get("http://idp.example.test/.well-known/openid-configuration")
    assert doc.status_code == 200 and doc.json()["issuer"] == issuer.issuer
    direct = httpx.get(f"{srv.url}/keys", headers={"Host": "idp.example.test"})
    assert direct.status_code == 200 and direct.headers["content-type"] == "application/json"


def test_unknown_host_is_a_clear_502_and_is_journaled(
    server: tuple[SandboxServer, JwtIssuer],
) -> None:
    srv, _ = server
    with httpx.Client(proxy=srv.url, trust_env=False) as client:
        response = client.get("http://nowhere.test/x")
    assert response.status_code == 502
    assert "nowhere.test" in response.text and "does not exist" in response.text
    assert srv.context.journal.entries(host="nowhere.test")[0].status == 502


def test_admin_api_health_clock_journal_reset(server: tuple[SandboxServer, JwtIssuer]) -> None:
    srv, _ = server
    admin = f"{srv.url}/_harness"
    assert httpx.get(f"{admin}/health").json()["status"] == "ok"
    before = httpx.get(f"{admin}/clock").json()["now"]
    after = httpx.post(f"{admin}/clock", json={"advance": 3600}).json()["now"]
    assert after - before >= 3600
    assert httpx.post(f"{admin}/clock", json={"advance": "soon"}).status_code == 400
    assert httpx.post(f"{admin}/clock", json={}).json()["error"] == "invalid_request"
    assert httpx.get(f"{admin}/clock?advance=1").status_code == 200
    assert httpx.delete(f"{admin}/clock").status_code == 405
    httpx.get(f"{srv.url}/keys", headers={"Host": "idp.example.test"})
    entries = httpx.get(f"{admin}/journal", params={"host": "idp.example.test"}).json()["entries"]
    assert entries and entries[-1]["path"] == "/keys"
    assert httpx.get(f"{admin}/journal", params={"since": "x"}).status_code == 400
    assert httpx.get(f"{admin}/reset").status_code == 405
    assert httpx.post(f"{admin}/reset").json() == {"status": "reset"}
    assert httpx.get(f"{admin}/journal").json()["entries"] == []
    assert abs(httpx.get(f"{admin}/clock").json()["offset"]) < 1
    assert httpx.get(f"{admin}/nope").status_code == 404
    assert httpx.get(f"{srv.url}/other").status_code == 404


def test_admin_keys_list_rotate_remove(server: tuple[SandboxServer, JwtIssuer]) -> None:
    srv, issuer = server
    keys_url = f"{srv.url}/_harness/keys"
    first = issuer.keys.active.kid
    listed = httpx.get(keys_url, params={"host": "IDP.example.test"}).json()
    assert listed == {
        "host": "idp.example.test",
        "active": first,
        "keys": [{"kid": first, "alg": "RS256"}],
    }
    old_token = issuer.mint({"sub": "x"})
    rotated = httpx.post(keys_url, json={"host": "idp.example.test", "alg": "ES256"}).json()
    new = rotated["active"]
    assert new != first and [k["kid"] for k in rotated["keys"]] == [new, first]
    with httpx.Client(proxy=srv.url, trust_env=False) as client:
        published = client.get("http://idp.example.test/keys").json()["keys"]
    assert [k["kid"] for k in published] == [new, first]
    assert issuer.keys.verify(old_token)["sub"] == "x"  # the old key stays until removed
    removed = httpx.post(
        keys_url, json={"host": "idp.example.test", "action": "remove", "kid": first}
    )
    assert removed.status_code == 200 and removed.json()["keys"] == [{"kid": new, "alg": "ES256"}]
    last = httpx.post(keys_url, json={"host": "idp.example.test", "action": "remove", "kid": new})
    assert last.status_code == 400
    assert last.json()["error_description"] == "cannot remove the last key of a key set"


@pytest.mark.parametrize(
    ("method", "body", "status", "description"),
    [
        ("GET", None, 400, "give 'host': the tenant host whose keys to show or rotate"),
        ("POST", {"host": "nowhere.test"}, 404, "no signing keys for host 'nowhere.test'"),
        (
            "POST",
            {"host": "idp.example.test", "action": "shred"},
            400,
            "'action' must be 'rotate' or 'remove'",
        ),
        (
            "POST",
            {"host": "idp.example.test", "alg": "HS256"},
            400,
            "'alg' must be one of RS256, ES256",
        ),
        (
            "POST",
            {"host": "idp.example.test", "action": "remove", "kid": "nope"},
            400,
            "'remove' needs the 'kid' of a published key",
        ),
        ("DELETE", None, 405, "method not allowed; use GET, POST"),
    ],
)
def test_admin_keys_refusals_change_nothing(
    server: tuple[SandboxServer, JwtIssuer],
    method: str,
    body: dict[str, str] | None,
    status: int,
    description: str,
) -> None:
    srv, issuer = server
    before = [k.kid for k in issuer.keys.keys()]
    params = {"host": "idp.example.test"} if method == "DELETE" else None
    response = httpx.request(method, f"{srv.url}/_harness/keys", json=body, params=params)
    assert response.status_code == status
    assert response.json() == {"error": response.json()["error"], "error_description": description}
    assert [k.kid for k in issuer.keys.keys()] == before


def test_admin_tenants_routes_to_the_service(server: tuple[SandboxServer, JwtIssuer]) -> None:
    """The dispatch layer only: a service with ``name``/``describe``/``admin`` gets its prefix."""

    class Directory:
        name = "directory"
        hosts = ("dir.example.test",)

        def describe(self) -> dict[str, object]:
            return {"users": ["alice"]}

        def admin(self, request: Request, path: str) -> Response:
            return json_response({"method": request.method, "path": path})

        def handle(self, request: Request) -> Response:
            return json_response({})

        def reset(self) -> None:
            pass

    srv, _ = server
    srv.add(Directory())
    tenants = f"{srv.url}/_harness/tenants"
    assert httpx.get(tenants).json() == {"tenants": {"directory": {"users": ["alice"]}}}
    assert httpx.delete(f"{tenants}/directory/users/alice").json() == {
        "method": "DELETE",
        "path": "users/alice",
    }
    missing = httpx.get(f"{tenants}/nope")
    assert missing.status_code == 404
    assert missing.json()["error_description"] == "no service 'nope'; known: directory"
    assert httpx.post(tenants).status_code == 405


def test_frozen_block_stops_time_and_resumes_from_there() -> None:
    clock = Clock()
    with clock.frozen():
        first = clock.now()
        time.sleep(0.01)  # real time passing, not an expiry wait: the clock must ignore it
        assert clock.now() == first
        assert clock.advance(60) == first + 60
    assert clock.now() - (first + 60) < 1  # running again from where the block left it
    assert not clock.snapshot()["frozen"]
    fixed = Clock(frozen_at=100.0)
    with fixed.frozen():
        fixed.advance(5)
    assert fixed.now() == 105.0 and fixed.snapshot()["frozen"]
