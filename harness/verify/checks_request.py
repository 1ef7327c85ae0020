"""Request-shape checks: TX (RFC 8693 §2.1 processing), TR (success response), ER (errors),
HT (token-endpoint HTTP rules). Each function is one catalog row; what it sends and how it
scores follows the row's "black-box test" column in REQUIREMENTS.md."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from harness.verify.context import (
    TOKEN_EXCHANGE,
    CheckContext,
    HappyPath,
    check,
    decoded,
    json_body,
    oauth_error,
)

AT = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TYPES = (AT, JWT)
SAML1 = "urn:ietf:params:oauth:token-type:saml1"
SAML2 = "urn:ietf:params:oauth:token-type:saml2"
#: RFC 6749 §5.2 + RFC 8707 (invalid_target) + RFC 9396 + RFC 8628 + the generic ones.
REGISTERED = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
        "invalid_authorization_details",
        "authorization_pending",
        "slow_down",
        "access_denied",
        "expired_token",
        "invalid_dpop_proof",
        "use_dpop_nonce",
        "server_error",
        "temporarily_unavailable",
    }
)
SMELLS = {
    "unsupported_token_type": "an RFC 7009 revocation-endpoint code",
    "invalid_token": "an RFC 6750 resource-server code",
}
#: RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E.
ERROR_CHARS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def _opaque() -> str:
    return "harness-opaque-" + secrets.token_urlsafe(24)


# -- §1 -------------------------------------------------------------------------------------
@check("TX-01", needs=())
def tx01(c: CheckContext) -> None:
    run = c.run
    try:
        token = run.subject_token()
    except Exception as exc:  # the issuer could not mint: the gate cannot even start
        run.happy_failed = f"no subject token: {exc}"
        c.violation(run.happy_failed)
        return
    sent_at = run.now()
    response = c.exchange(subject_token=token)
    if response is None:
        c.violation("no HTTP answer from the endpoint (connection failed)")
        return
    body = json_body(response)
    if response.status_code != 200 or not isinstance(body, dict):
        error = oauth_error(response)
        c.violation(
            f"HTTP {response.status_code} {error or ''} for a well-formed exchange"
            + (f": {body.get('error_description')}" if isinstance(body, dict) else "")
        )
        return
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        c.violation("200 without an access_token")
        return
    parsed = decoded(token)
    run.happy = HappyPath(
        response.status_code,
        body,
        response.headers,
        access,
        parsed[1] if parsed else None,
        sent_at,
    )
    c.passed(
        f"200: issued_token_type={body.get('issued_token_type')!r}, "
        f"token_type={body.get('token_type')!r}, expires_in={body.get('expires_in')!r}"
    )


@check("TX-02")
def tx02(c: CheckContext) -> None:
    c.expect_error(c.exchange(drop=["subject_token"]), "subject_token omitted")


@check("TX-03")
def tx03(c: CheckContext) -> None:
    c.expect_error(c.exchange(drop=["subject_token_type"]), "subject_token_type omitted")
    c.expect_error(
        c.exchange([("subject_token_type", "")], drop=["subject_token_type"]),
        "subject_token_type empty",
    )


@check("TX-04")
def tx04(c: CheckContext) -> None:
    garbage = _replace(
        _replace(c.base_params(), "subject_token_type", JWT), "subject_token", _opaque()
    )
    c.rejected(c.send(garbage), "random opaque string declared as JWT")
    accepted = c.run.settings.subject_token_types
    for other in (AT, SAML2):
        if other in accepted or other == c.run.config.subject_token_type:
            c.info(f"{other} is a documented subject-token type of this profile: not probed")
            continue
        c.rejected(
            c.send(_replace(c.base_params(), "subject_token_type", other)),
            f"valid subject token declared as {other.rsplit(':', 1)[-1]}",
        )


def _replace(params: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k == name else v) for k, v in params]


@check("TX-05")
def tx05(c: CheckContext) -> None:
    response = c.send(_replace(c.base_params(), "subject_token_type", "urn:example:unknown"))
    if response is not None and oauth_error(response) == "unsupported_token_type":
        c.minor(
            "unsupported subject_token_type: unsupported_token_type is an RFC 7009 code; "
            "RFC 8693 §2.2.2 names invalid_request"
        )
        return
    c.expect_error(response, "subject_token_type=urn:example:unknown")


def _actor(c: CheckContext) -> str:
    if c.run.config.actor_token:
        return c.run.config.actor_token
    if c.run.issuer is not None:
        return c.run.mint(subject="harness-actor")
    return _opaque()


@check("TX-06")
def tx06(c: CheckContext) -> None:
    c.expect_error(c.exchange([("actor_token", _actor(c))]), "actor_token without actor_token_type")
    c.expect_error(
        c.exchange([("actor_token_type", JWT)]),
        "actor_token_type without actor_token",
        accepted="minor",
    )


@check("TX-07")
def tx07(c: CheckContext) -> None:
    for value in ("relative/path", "https://x.example/#f"):
        c.expect_error(
            c.exchange([("resource", value)]),
            f"resource={value}",
            ("invalid_target", "invalid_request"),
        )


@check("TX-08")
def tx08(c: CheckContext) -> None:
    first = _origin(c.run.config.probe or c.run.config.endpoint)
    second = (
        _origin(c.run.config.probe_other)
        if c.run.config.probe_other
        else (c.run.settings.foreign_audience)
    )
    response = c.exchange([("audience", first), ("audience", second)])
    if response is None:
        c.minor("two audience values: no HTTP answer")
        return
    error = oauth_error(response)
    if response.status_code == 200:
        c.passed("two audience values: 200 (one token for both targets)")
    elif response.status_code == 400 and error == "invalid_target":
        c.passed("two audience values: 400 invalid_target")
    elif response.status_code == 400 and error == "invalid_request":
        c.minor(
            "two audience values rejected as invalid_request (a repeated parameter?); "
            "RFC 8693 §2.1 allows several, invalid_target if they cannot all be served"
        )
    else:
        c.minor(f"two audience values: HTTP {response.status_code} error={error!r}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


@check("TX-09")
def tx09(c: CheckContext) -> None:
    cfg = c.run.config
    target = _origin(cfg.probe_other) if cfg.probe_other else c.run.settings.foreign_audience
    response = c.exchange([("audience", target)])
    if response is None:
        c.minor("foreign audience: no HTTP answer")
        return
    error = oauth_error(response)
    if response.status_code == 400 and error == "invalid_target":
        c.passed(f"audience={target}: 400 invalid_target")
        return
    if response.status_code != 200:
        c.minor(
            f"audience={target}: HTTP {response.status_code} error={error!r}; "
            "RFC 8693 §2.2.2 suggests invalid_target"
        )
        return
    token = (json_body(response) or {}).get("access_token")
    if cfg.probe_other and isinstance(token, str):
        probe = c.send(
            method="GET",
            url=cfg.probe_other,
            auth=False,
            headers={"Authorization": f"Bearer {token}"},
        )
        if probe is not None and probe.status_code == 200:
            c.violation(f"audience={target}: issued, and the token works at {cfg.probe_other}")
            return
    c.minor(f"audience={target}: 200 (the audience was ignored, not refused)")


@check("TX-10")
def tx10(c: CheckContext) -> None:
    happy = c.run.happy
    assert happy is not None
    issued = happy.body.get("issued_token_type")
    c.info(f"without requested_token_type the endpoint chose issued_token_type={issued!r}")
    c.expect_error(c.exchange([("requested_token_type", SAML1)]), "requested_token_type=saml1")
    want = issued if isinstance(issued, str) else AT
    response = c.exchange([("requested_token_type", want)])
    body = json_body(response) if response is not None else None
    if response is not None and response.status_code == 200 and isinstance(body, dict):
        got = body.get("issued_token_type")
        if got == want:
            c.passed(f"requested_token_type={want}: issued_token_type matches")
        else:
            c.minor(f"requested_token_type={want}: issued_token_type={got!r}")
    else:
        c.info(
            f"requested_token_type={want}: HTTP "
            f"{response.status_code if response is not None else 'none'}"
        )


@check("TX-11")
def tx11(c: CheckContext) -> None:
    unknown = c.run.settings.unknown_scope
    scope = f"{c.run.scope} {unknown}" if c.run.scope else unknown
    response = c.exchange([("scope", scope)], drop=["scope"])
    if response is None:
        c.minor("unknown scope: no HTTP answer")
        return
    body = json_body(response)
    error = oauth_error(response)
    if response.status_code == 400 and error == "invalid_scope":
        c.passed(f"scope={scope}: 400 invalid_scope")
    elif response.status_code == 200 and isinstance(body, dict):
        granted = body.get("scope")
        if not isinstance(granted, str):
            c.violation(f"scope={scope}: 200 without a scope member (granted ≠ requested)")
        elif unknown in granted.split():
            c.minor(f"scope={scope}: 200 granting the unknown scope {unknown!r}")
        else:
            c.passed(f"scope={scope}: 200 with the reduced scope {granted!r} reported")
    else:
        c.minor(
            f"scope={scope}: HTTP {response.status_code} error={error!r}; "
            "expected 400 invalid_scope or a reduced scope"
        )


@check("TX-12")
def tx12(c: CheckContext) -> None:
    cases = [
        (
            [("foo", "bar"), ("return_original_token_if_authenticated", "true")],
            "unknown parameters foo, return_original_token_if_authenticated",
        ),
        (
            [("resource", ""), ("audience", ""), ("actor_token_type", "")],
            "empty resource, audience, actor_token_type",
        ),
    ]
    if not c.run.scope:
        cases.append(([("scope", "")], "empty scope"))
    for extra, what in cases:
        response = c.exchange(extra)
        if response is not None and response.status_code == 200:
            c.passed(f"{what}: 200 as for TX-01")
        else:
            status = response.status_code if response is not None else "no answer"
            error = oauth_error(response) if response is not None else None
            c.violation(f"{what}: HTTP {status} error={error!r}; TX-01 got 200")


@check("TX-13")
def tx13(c: CheckContext) -> None:
    token_b = c.run.subject_token()
    c.expect_error(
        c.exchange([("subject_token", token_b)]), "two subject_token values", accepted="minor"
    )
    c.expect_error(
        c.exchange([("grant_type", TOKEN_EXCHANGE)]), "two grant_type values", accepted="minor"
    )


@check("TX-14")
def tx14(c: CheckContext) -> None:
    cfg = c.run.config
    if cfg.client_auth == "none":
        c.info(
            "the endpoint exchanged without client authentication: anyone holding a "
            "subject token it accepts can exchange it (RFC 8693 §2.1 security note)"
        )
        return
    params = [p for p in c.base_params() if p[0] not in ("client_id", "client_secret")]
    response = c.send(params, auth=False)
    if response is not None and response.status_code == 200:
        c.info("accepted without client credentials: unauthenticated exchange")
    elif response is not None and oauth_error(response) == "invalid_client":
        c.passed(f"without client credentials: HTTP {response.status_code} invalid_client")
    else:
        code = response.status_code if response is not None else "no answer"
        c.info(f"without client credentials: HTTP {code}")


@check("TX-15")
def tx15(c: CheckContext) -> None:
    c.expect_error(
        c.send(_replace(c.base_params(), "grant_type", TOKEN_EXCHANGE + "X")),
        "grant_type=…:token-exchangeX",
        ("unsupported_grant_type",),
    )
    c.info(
        "unauthorized_client (a client without exchange permission) not probed: needs a "
        "second client"
    )


# -- §2 (judged on the TX-01 response) -------------------------------------------------------
def _happy(c: CheckContext) -> HappyPath:
    assert c.run.happy is not None
    return c.run.happy


@check("TR-01")
def tr01(c: CheckContext) -> None:
    happy = _happy(c)
    media = happy.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        c.passed("200, application/json, one JSON object")
    else:
        c.violation(f"success Content-Type is {media or '(none)'!r}, not application/json")


@check("TR-02")
def tr02(c: CheckContext) -> None:
    c.passed("access_token is a non-empty string")
    _ = _happy(c)


@check("TR-03")
def tr03(c: CheckContext) -> None:
    value = _happy(c).body.get("issued_token_type")
    if not isinstance(value, str) or not value:
        c.violation("issued_token_type is missing from the success response")
    elif not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
        c.violation(f"issued_token_type {value!r} is not an absolute URI")
    else:
        c.passed(f"issued_token_type={value}")


@check("TR-04")
def tr04(c: CheckContext) -> None:
    body = _happy(c).body
    kind, issued = body.get("token_type"), body.get("issued_token_type")
    if not isinstance(kind, str) or not kind:
        c.violation("token_type is missing")
        return
    if isinstance(issued, str) and issued not in ACCESS_TYPES and kind.lower() != "n_a":
        c.minor(f"token_type={kind!r} for issued_token_type={issued}; expected N_A")
        return
    c.passed(f"token_type={kind!r}")


@check("TR-05")
def tr05(c: CheckContext) -> None:
    value = _happy(c).body.get("expires_in")
    if value is None:
        c.violation("expires_in is absent")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        c.minor(f"expires_in is {type(value).__name__} {value!r}, not a JSON number")
    else:
        c.passed(f"expires_in={value}")


@check("TR-06")
def tr06(c: CheckContext) -> None:
    happy = _happy(c)
    requested = c.run.scope
    if isinstance(happy.body.get("scope"), str):
        c.passed(f"scope reported: {happy.body['scope']!r} (requested {requested!r})")
        return
    parsed = decoded(happy.access_token)
    claims = parsed[1] if parsed else {}
    issued: Any = claims.get("scope", claims.get("scp"))
    if isinstance(issued, list):
        issued = " ".join(str(s) for s in issued)
    if issued is None:
        c.info("no scope in the response and none readable from the token: not comparable")
    elif requested is not None and set(str(issued).split()) == set(requested.split()):
        c.passed("scope omitted; the issued scope equals the requested one")
    else:
        c.violation(f"scope omitted, but the token carries {issued!r} (requested {requested!r})")


@check("TR-07")
def tr07(c: CheckContext) -> None:
    if "refresh_token" not in _happy(c).body:
        c.passed("no refresh_token")
    elif c.run.settings.refresh_token_allowed:
        c.info("a refresh_token was issued")
    else:
        c.violation("a refresh_token was issued; the profile says none should be")


# -- §3 ---------------------------------------------------------------------------------------
@check("ER-01")
def er01(c: CheckContext) -> None:
    c.reject_scored(
        c.send(_replace(c.base_params(), "subject_token", _opaque())),
        "opaque garbage declared as JWT",
    )
    if c.run.issuer is None:
        c.info("token-defect cases need the harness issuer: only the garbage token was sent")
        return
    now = int(c.run.now())
    cases = [
        (c.run.mint(claims={"iat": now - 1200, "exp": now - 600}), "expired subject token"),
        (c.run.mint(audience="https://wrong-audience.harness.invalid"), "foreign audience"),
        (c.run.mint(defect="tampered"), "tampered signature"),
        (c.run.mint(claims={"iss": "https://untrusted.harness.invalid"}), "untrusted issuer"),
    ]
    for token, what in cases:
        c.reject_scored(c.exchange(subject_token=token), what)


@check("ER-02")
def er02(c: CheckContext) -> None:
    errors = c.run.errors
    if not errors:
        c.skip("no error response was seen")
        return
    bad = 0
    for seen in errors:
        problem = _error_body_problem(seen.body)
        if problem:
            bad += 1
            c.violation(f"{seen.check} HTTP {seen.status}: {problem}")
    if not bad:
        c.passed(f"{len(errors)} error bodies: JSON objects with a well-formed 'error'")


def _error_body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the error body is not a JSON object"
    error = body.get("error")
    if not isinstance(error, str) or not error:
        return "no string 'error' member"
    for name in ("error", "error_description"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name} is not a string"
        if not ERROR_CHARS.fullmatch(value):
            return f"{name} has characters outside %x20-21/%x23-5B/%x5D-7E"
    uri = body.get("error_uri")
    if uri is not None and not isinstance(uri, str):
        return "error_uri is not a string"
    return None


@check("ER-03")
def er03(c: CheckContext) -> None:
    codes: dict[str, str] = {}
    for seen in c.run.errors:
        if isinstance(seen.body, dict) and isinstance(seen.body.get("error"), str):
            codes.setdefault(seen.body["error"], seen.check)
    if not codes:
        c.skip("no OAuth error code was seen")
        return
    for code, where in sorted(codes.items()):
        if code in SMELLS:
            c.minor(f"{code} (first in {where}) is {SMELLS[code]}, not a token-endpoint code")
        elif code not in REGISTERED:
            c.minor(f"{code} (first in {where}) is not a registered token-endpoint error")
    if not any(f.violation for f in c.findings):
        c.passed(f"every error code is registered: {', '.join(sorted(codes))}")


@check("ER-04", needs=("happy", "client_secret"))
def er04(c: CheckContext) -> None:
    cfg = c.run.config
    wrong = (cfg.client_secret or "") + "-wrong"
    params = [p for p in c.base_params() if p[0] not in ("client_id", "client_secret")]
    response = c.send(params, auth=False, headers={"Authorization": c.basic_header(secret=wrong)})
    if response is None:
        c.minor("Basic with a wrong secret: no HTTP answer")
    elif response.status_code == 401 and oauth_error(response) == "invalid_client":
        challenge = response.headers.get("www-authenticate", "")
        if challenge.lower().startswith("basic"):
            c.passed("Basic with a wrong secret: 401 invalid_client + WWW-Authenticate: Basic")
        else:
            c.violation("Basic with a wrong secret: 401 without WWW-Authenticate: Basic")
    else:
        c.violation(
            f"Basic with a wrong secret: HTTP {response.status_code} "
            f"error={oauth_error(response)!r}; expected 401 invalid_client"
        )
    response = c.send(
        [*params, ("client_id", cfg.client_id or ""), ("client_secret", wrong)], auth=False
    )
    if (
        response is not None
        and response.status_code in (400, 401)
        and (oauth_error(response) == "invalid_client")
    ):
        c.passed(f"wrong client_secret in the body: {response.status_code} invalid_client")
    else:
        code = response.status_code if response is not None else "no answer"
        error = oauth_error(response) if response is not None else None
        c.violation(f"wrong client_secret in the body: HTTP {code} error={error!r}")


@check("ER-05")
def er05(c: CheckContext) -> None:
    if not c.run.errors:
        c.skip("no error response was seen")
        return
    leaks = 0
    for seen in c.run.errors:
        for token in seen.sent_tokens:
            pieces = [token, *[p for p in token.split(".") if len(p) >= 16]]
            if any(piece in seen.text for piece in pieces):
                leaks += 1
                c.minor(
                    f"{seen.check} HTTP {seen.status}: the error body echoes the submitted "
                    "token (or one of its segments)"
                )
                break
    if not leaks:
        c.passed(f"{len(c.run.errors)} error bodies: none echoes a submitted token")


@check("ER-06")
def er06(c: CheckContext) -> None:
    endpoint_form = "application/x-www-form-urlencoded"
    cases: list[tuple[str, bytes, str]] = [
        ("non-UTF-8 form body", b"grant_type=\xff\xfe&subject_token=\xc3\x28", endpoint_form),
        ("JSON body", b'{"grant_type": "' + TOKEN_EXCHANGE.encode() + b'"}', "application/json"),
        (
            "truncated form",
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-ex%2",
            endpoint_form,
        ),
    ]
    for what, body, ctype in cases:
        _judge_malformed(c, what, c.send(content=body, content_type=ctype))
    huge = "eyJhbGciOiJSUzI1NiJ9." + "A" * 65536 + ".sig"
    _judge_malformed(
        c, "64 KB subject token", c.send(_replace(c.base_params(), "subject_token", huge))
    )


def _judge_malformed(c: CheckContext, what: str, response: httpx.Response | None) -> None:
    if response is None:
        c.minor(f"{what}: no HTTP answer")
        return
    code = response.status_code
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if 200 <= code < 300:
        c.minor(f"{what}: accepted (HTTP {code})")
    elif code >= 500:
        c.minor(f"{what}: HTTP {code}")
    elif not media.endswith("json") or oauth_error(response) is None:
        c.minor(f"{what}: HTTP {code} but not a JSON OAuth error ({media or 'no type'})")
    else:
        c.passed(f"{what}: HTTP {code} {oauth_error(response)}")


# -- §4 ---------------------------------------------------------------------------------------
@check("HT-01")
def ht01(c: CheckContext) -> None:
    endpoint = c.run.config.endpoint
    parts = urlsplit(endpoint)
    if parts.scheme == "http" and c.run.config.allow_plain_http:
        c.skip(
            "plain http:// endpoint accepted by --allow-plain-http (a local sandbox); "
            "verify the https:// endpoint to score TLS"
        )
        return
    if parts.scheme == "http":
        c.violation("the endpoint issued a token over plain HTTP (TX-01 ran over http://)")
        return
    plain = urlunsplit(
        (
            "http",
            parts.netloc.rsplit(":", 1)[0] if ":" in parts.netloc else parts.netloc,
            parts.path,
            parts.query,
            "",
        )
    )
    response = c.send(c.base_params(), url=plain)
    if response is None:
        c.passed(f"{plain}: no plain-HTTP service")
        return
    body = json_body(response)
    if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
        c.violation(f"{plain}: a token was issued over plain HTTP")
    else:
        c.passed(f"{plain}: HTTP {response.status_code}, no token")


@check("HT-02")
def ht02(c: CheckContext) -> None:
    happy = _happy(c)
    if _no_store(happy.headers):
        c.passed("the success response has Cache-Control: no-store")
    else:
        c.violation(f"success response Cache-Control={happy.headers.get('cache-control')!r}")
    missing = [e for e in c.run.errors if not _no_store(e.headers)]
    if missing:
        first = missing[0]
        c.minor(
            f"{len(missing)} of {len(c.run.errors)} error responses lack no-store "
            f"(first: {first.check} HTTP {first.status})"
        )


def _no_store(headers: httpx.Headers) -> bool:
    values = ",".join(headers.get_list("cache-control"))
    return any(d.strip().lower() == "no-store" for d in values.split(","))


@check("HT-03")
def ht03(c: CheckContext) -> None:
    pragma = _happy(c).headers.get("pragma", "")
    if "no-cache" in pragma.lower():
        c.passed("Pragma: no-cache")
    else:
        c.minor("no Pragma: no-cache (RFC 6749 §5.1; OAuth 2.1 dropped it)")


@check("HT-04")
def ht04(c: CheckContext) -> None:
    response = c.send(c.base_params(), method="GET")
    body = json_body(response) if response is not None else None
    if (
        response is not None
        and response.status_code == 200
        and isinstance(body, dict)
        and (body.get("access_token"))
    ):
        c.minor("GET with query parameters issued a token (tokens in URLs end up in logs)")
    elif response is None:
        c.passed("GET: no answer")
    else:
        c.passed(f"GET with query parameters: HTTP {response.status_code}")


@check("HT-05")
def ht05(c: CheckContext) -> None:
    import json as _json

    form = dict(c.base_params())
    response = c.send(content=_json.dumps(form).encode(), content_type="application/json")
    if response is not None and 400 <= response.status_code < 500:
        c.passed(f"the same request as JSON: HTTP {response.status_code}")
    elif response is not None and response.status_code == 200:
        c.info("the same request as JSON was accepted")
    else:
        code = response.status_code if response is not None else "no answer"
        c.minor(f"the same request as JSON: HTTP {code}")


@check("HT-06", needs=("happy", "client_secret"))
def ht06(c: CheckContext) -> None:
    cfg = c.run.config
    params = [p for p in c.base_params() if p[0] not in ("client_id", "client_secret")]
    url = httpx.URL(cfg.endpoint).copy_merge_params(
        {"client_id": cfg.client_id or "", "client_secret": cfg.client_secret or ""}
    )
    response = c.send(params, url=str(url), auth=False)
    if response is not None and response.status_code == 200:
        c.minor("client_secret in the query string was accepted")
    else:
        code = response.status_code if response is not None else "no answer"
        c.passed(f"client_secret in the query string: HTTP {code}")


@check("HT-07", needs=("happy", "client_secret"))
def ht07(c: CheckContext) -> None:
    cfg = c.run.config
    params = [p for p in c.base_params() if p[0] not in ("client_id", "client_secret")]
    params += [("client_id", cfg.client_id or ""), ("client_secret", cfg.client_secret or "")]
    response = c.send(params, auth=False, headers={"Authorization": c.basic_header()})
    c.expect_error(
        response,
        "Basic header and client_secret in the body",
        ("invalid_request", "invalid_client"),
        accepted="minor",
    )


@check("HT-08", needs=("happy", "basic"))
def ht08(c: CheckContext) -> None:
    c.passed("TX-01 authenticated with HTTP Basic built from form-urlencoded parts")
    cfg = c.run.config
    import base64

    raw = base64.b64encode(f"{cfg.client_id}:{cfg.client_secret}".encode()).decode()
    response = c.exchange(headers={"Authorization": f"Basic {raw}"})
    code = response.status_code if response is not None else "no answer"
    c.info(f"Basic from raw (un-encoded) parts: HTTP {code}")
