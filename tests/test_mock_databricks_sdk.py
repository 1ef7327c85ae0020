"""The real ``databricks-sdk`` against the mock: the fidelity test of issue #3.

Auth types ``env-oidc`` without ``client_id`` (account-wide federation, in
``test_mock_databricks.py``) and with it (workload identity federation), ``oauth-m2m`` at a
workspace and at the account host, and the SDK's federation-policy APIs. The SDK reaches the
sandbox through ``HTTP_PROXY``, so it keeps the production-shaped host names.
"""

from __future__ import annotations

import pytest

from mocks import defaults as d
from mocks.core.issuer import JwtIssuer
from mocks.sandbox import Sandbox

WS = "http://dbc-aaa.cloud.databricks.test"
ACCOUNT = "http://accounts.cloud.databricks.test"
WIF_SUBJECT = "repo:acme/app:environment:prod"


@pytest.fixture
def via_proxy(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in ("NO_PROXY", "no_proxy", "DATABRICKS_OIDC_TOKEN", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, sandbox.proxy_url)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")
    return sandbox


def ci_issuer(sandbox: Sandbox) -> JwtIssuer:
    """A CI-style workload issuer (like GitHub Actions), registered once per session."""
    for service in sandbox.server.services():
        if isinstance(service, JwtIssuer) and service.host == "ci.example.test":
            return service
    idp = JwtIssuer("ci.example.test", sandbox.clock)
    sandbox.server.add(idp)
    return idp


def test_env_oidc_with_client_id_is_workload_identity_federation(
    via_proxy: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from databricks.sdk import WorkspaceClient

    sandbox = via_proxy
    idp = ci_issuer(sandbox)
    sp, _ = sandbox.databricks.add_service_principal(display_name="ci-deployer")
    sandbox.databricks.add_federation_policy(
        "github-prod", issuer=idp.issuer, subject=WIF_SUBJECT, service_principal_id=sp.id
    )
    token = idp.mint({"sub": WIF_SUBJECT, "aud": d.DATABRICKS_ACCOUNT_ID})
    monkeypatch.setenv("DATABRICKS_OIDC_TOKEN", token)
    client = WorkspaceClient(host=WS, auth_type="env-oidc", client_id=sp.application_id)
    me = client.current_user.me()
    assert me.user_name == sp.application_id and me.display_name == "ci-deployer"
    [exchange] = sandbox.journal.entries(
        host="dbc-aaa.cloud.databricks.test", path="/oidc/v1/token"
    )
    assert exchange.form["client_id"] == sp.application_id
    assert exchange.form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert exchange.form["scope"] == "all-apis"


def test_env_oidc_with_client_id_and_a_foreign_subject_fails(
    via_proxy: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from databricks.sdk import WorkspaceClient

    sandbox = via_proxy
    idp = ci_issuer(sandbox)
    sp, _ = sandbox.databricks.add_service_principal()
    sandbox.databricks.add_federation_policy(
        "github-prod", issuer=idp.issuer, subject=WIF_SUBJECT, service_principal_id=sp.id
    )
    other = idp.mint({"sub": "repo:acme/app:environment:dev", "aud": d.DATABRICKS_ACCOUNT_ID})
    monkeypatch.setenv("DATABRICKS_OIDC_TOKEN", other)
    client = WorkspaceClient(host=WS, auth_type="env-oidc", client_id=sp.application_id)
    with pytest.raises(Exception, match="invalid_request: The subject token's subject does not"):
        client.current_user.me()


def test_oauth_m2m_at_a_workspace(via_proxy: Sandbox) -> None:
    from databricks.sdk import WorkspaceClient

    sandbox = via_proxy
    client = WorkspaceClient(
        host=WS,
        auth_type="oauth-m2m",
        client_id=d.DATABRICKS_ADMIN_SP_APPLICATION_ID,
        client_secret=d.DATABRICKS_ADMIN_SP_SECRET,
    )
    me = client.current_user.me()
    assert me.user_name == d.DATABRICKS_ADMIN_SP_APPLICATION_ID
    [request] = sandbox.journal.entries(host="dbc-aaa.cloud.databricks.test", path="/oidc/v1/token")
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert str(headers["authorization"]).startswith("Basic ")  # secret redacted by the journal
    assert request.form == {"grant_type": "client_credentials", "scope": "all-apis"}


def test_oauth_m2m_with_a_wrong_secret_fails(via_proxy: Sandbox) -> None:
    from databricks.sdk import WorkspaceClient

    client = WorkspaceClient(
        host=WS,
        auth_type="oauth-m2m",
        client_id=d.DATABRICKS_ADMIN_SP_APPLICATION_ID,
        client_secret="not-the-secret",
    )
    with pytest.raises(Exception, match="invalid_client: Client authentication failed"):
        client.current_user.me()


def test_account_client_manages_federation_policies(via_proxy: Sandbox) -> None:
    from databricks.sdk import AccountClient
    from databricks.sdk.errors import InvalidParameterValue, NotFound
    from databricks.sdk.service.oauth2 import FederationPolicy, OidcFederationPolicy

    sandbox = via_proxy
    account = AccountClient(
        host=ACCOUNT,
        account_id=d.DATABRICKS_ACCOUNT_ID,
        auth_type="oauth-m2m",
        client_id=d.DATABRICKS_ADMIN_SP_APPLICATION_ID,
        client_secret=d.DATABRICKS_ADMIN_SP_SECRET,
    )
    created = account.federation_policy.create(
        policy=FederationPolicy(
            description="CI users",
            oidc_policy=OidcFederationPolicy(issuer="https://idp.example.com", audiences=["dbx"]),
        ),
        policy_id="sdk-policy",
    )
    assert created.name == f"accounts/{d.DATABRICKS_ACCOUNT_ID}/federationPolicies/sdk-policy"
    assert created.oidc_policy is not None and created.oidc_policy.subject_claim == "sub"
    ids = [p.policy_id for p in account.federation_policy.list(page_size=1)]
    assert ids == [d.FEDERATION_POLICY_ID, "sdk-policy"]  # followed next_page_token
    updated = account.federation_policy.update(
        "sdk-policy", FederationPolicy(description="renamed"), update_mask="description"
    )
    assert updated.description == "renamed" and updated.oidc_policy.audiences == ["dbx"]
    with pytest.raises(InvalidParameterValue, match="must not be set for account"):
        account.federation_policy.create(
            policy=FederationPolicy(
                oidc_policy=OidcFederationPolicy(issuer="https://idp.example.com", subject="x")
            )
        )
    sp, _ = sandbox.databricks.add_service_principal()
    sp_policy = account.service_principal_federation_policy.create(
        service_principal_id=sp.id,
        policy=FederationPolicy(
            oidc_policy=OidcFederationPolicy(issuer="https://ci.example.com", subject=WIF_SUBJECT)
        ),
        policy_id="ci",
    )
    assert sp_policy.service_principal_id == sp.id
    assert sp_policy.oidc_policy.audiences == [d.DATABRICKS_ACCOUNT_ID]
    got = account.service_principal_federation_policy.get(sp.id, "ci")
    assert got.uid == sp_policy.uid
    account.federation_policy.delete("sdk-policy")
    with pytest.raises(NotFound, match="sdk-policy does not exist"):
        account.federation_policy.get("sdk-policy")
    [token] = sandbox.journal.entries(
        host=d.DATABRICKS_ACCOUNT_HOST, path=f"/oidc/accounts/{d.DATABRICKS_ACCOUNT_ID}/v1/token"
    )
    assert token.form == {"grant_type": "client_credentials", "scope": "all-apis"}


def test_env_oidc_at_the_account_host_requests_the_account_audience(
    via_proxy: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No workspace id in the account host's metadata: the SDK uses the account id as
    audience, which is also the policy default, and exchanges at the account endpoint."""
    from databricks.sdk import AccountClient

    sandbox = via_proxy
    idp = ci_issuer(sandbox)
    sp, _ = sandbox.databricks.add_service_principal(account_admin=True)
    sandbox.databricks.add_federation_policy(
        "ci", issuer=idp.issuer, subject=WIF_SUBJECT, service_principal_id=sp.id
    )
    monkeypatch.setenv(
        "DATABRICKS_OIDC_TOKEN", idp.mint({"sub": WIF_SUBJECT, "aud": d.DATABRICKS_ACCOUNT_ID})
    )
    account = AccountClient(
        host=ACCOUNT,
        account_id=d.DATABRICKS_ACCOUNT_ID,
        auth_type="env-oidc",
        client_id=sp.application_id,
    )
    assert account.config.token_audience == d.DATABRICKS_ACCOUNT_ID
    assert [p.policy_id for p in account.federation_policy.list()] == [d.FEDERATION_POLICY_ID]
