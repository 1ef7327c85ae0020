"""What one ``verify`` run is pointed at (contract C2): the endpoint, the profile, where the
subject tokens come from, and how the harness reaches and authenticates to the endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.issuer import TestIssuer

JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
CLIENT_AUTH_METHODS = ("basic", "post", "none")


@dataclass
class VerifyConfig:
    """One run. Either ``issuer`` (a started :class:`~harness.issuer.TestIssuer` the vendor
    trusts; ``subject`` and ``audiences`` say what its tokens must carry to pass the vendor's
    policy) or ``subject_token`` (an operator-supplied token the endpoint accepts; every check
    that needs a token with a defect is then SKIPPED)."""

    endpoint: str
    profile: str = "generic"
    issuer: TestIssuer | None = None
    subject: str | None = None
    audiences: list[str] = field(default_factory=list)
    subject_token: str | None = None
    subject_token_type: str = JWT_TYPE
    client_id: str | None = None
    client_secret: str | None = None
    client_auth: str = "none"
    scope: str | None = None
    probe: str | None = None
    probe_other: str | None = None
    only: list[str] | None = None
    proxy: str | None = None
    ca_bundle: str | None = None
    clock: Callable[[], float] = time.time
    #: Claim that names the subject in the vendor's policy (Databricks ``subject_claim``).
    subject_claim: str = "sub"
    #: Extra claims every harness-minted subject token carries (e.g. Snowflake's ``scp``);
    #: they extend the profile's ``subject_claims``.
    extra_claims: Mapping[str, Any] = field(default_factory=dict)
    #: An operator-supplied actor token (else the harness issuer mints one) for AC rows.
    actor_token: str | None = None
    actor_token_type: str = JWT_TYPE
    timeout: float = 10.0
    #: Accept a plain ``http://`` endpoint (a local sandbox, which serves plain HTTP next to
    #: HTTPS): HT-01 is then SKIPPED with that reason instead of FAILED. Off by default, so a
    #: real vendor endpoint is always scored on TLS; no profile can switch it on.
    allow_plain_http: bool = False
