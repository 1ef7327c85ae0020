"""AC rows (RFC 8693 §4): delegation with an actor token, ``may_act``, re-exchange of a
token that already carries ``act``. The issued token must be a readable JWT to judge ``act``;
an opaque token makes the row SKIPPED (no introspection is assumed)."""

from __future__ import annotations

from typing import Any

import httpx

from harness.verify.context import CheckContext, Skip, check, decoded, json_body, oauth_error

JWT = "urn:ietf:params:oauth:token-type:jwt"
ACTOR = "harness-actor"


def _actor_token(c: CheckContext, subject: str = ACTOR) -> tuple[str, str]:
    cfg = c.run.config
    if cfg.actor_token:
        return cfg.actor_token, cfg.actor_token_type
    if c.run.issuer is None:
        raise Skip("needs an actor token (--actor-token) or the harness issuer")
    return c.run.mint(subject=subject), JWT


def _issued_claims(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    token = body.get("access_token") if isinstance(body, dict) else None
    parsed = decoded(token) if isinstance(token, str) else None
    if parsed is None:
        raise Skip("issued token is opaque: act cannot be read (no introspection)")
    return parsed[1]


@check("AC-01")
def ac01(c: CheckContext) -> None:
    actor, actor_type = _actor_token(c)
    response = c.exchange([("actor_token", actor), ("actor_token_type", actor_type)])
    if response is None or response.status_code != 200:
        code = response.status_code if response is not None else "no answer"
        c.run.actor_supported = False
        error = oauth_error(response) if response is not None else None
        raise Skip(f"the endpoint does not accept actor tokens (HTTP {code} {error or ''})")
    c.run.actor_supported = True
    claims = _issued_claims(response)
    act = claims.get("act")
    expected = None if c.run.config.actor_token else ACTOR
    if not isinstance(act, dict):
        c.violation(f"delegation accepted, but the issued token has no act object (act={act!r})")
        return
    if expected is not None and act.get("sub") != expected:
        c.violation(f"act.sub={act.get('sub')!r}, expected the actor token's subject {expected!r}")
    else:
        c.passed(f"act={act}")
    inner = [k for k in ("exp", "nbf", "aud") if k in act]
    if inner:
        c.minor(f"act carries identity-unrelated claims {inner}")


@check("AC-02", needs=())
def ac02(c: CheckContext) -> None:
    c.skip(
        "an access-decision rule for resource servers and brokers: not observable at an "
        "STS (the broker scenarios cover it)"
    )


@check("AC-03", needs=("happy", "issuer"))
def ac03(c: CheckContext) -> None:
    if c.run.actor_supported is False:
        raise Skip("the endpoint does not accept actor tokens (AC-01)")
    subject = c.run.mint(claims={"may_act": {"sub": "agent-A"}})
    actor, actor_type = _actor_token(c, subject="agent-B")
    response = c.exchange(
        [("actor_token", actor), ("actor_token_type", actor_type)], subject_token=subject
    )
    if response is not None and response.status_code == 200:
        c.info("may_act names agent-A, the actor is agent-B: accepted (may_act ignored)")
    else:
        code = response.status_code if response is not None else "no answer"
        c.passed(f"may_act names agent-A, the actor is agent-B: refused, HTTP {code}")


@check("AC-04", needs=("happy", "issuer"))
def ac04(c: CheckContext) -> None:
    subject = c.run.mint(claims={"act": {"sub": "harness-prior-actor"}})
    response = c.exchange(subject_token=subject)
    if response is None or response.status_code != 200:
        code = response.status_code if response is not None else "no answer"
        c.info(f"a subject token carrying act was refused: HTTP {code}")
        return
    act = _issued_claims(response).get("act")
    if isinstance(act, dict):
        c.info(f"re-exchange kept act: {act}")
    else:
        c.info("re-exchange without actor_token dropped the existing act (audit trail lost)")
