"""JV rows: subject tokens with one defect each, minted by the harness issuer (contract C1).

Security axis only: was the token refused? Any 4xx passes; how it was refused (status,
``error``) is ER-01's business, so a vendor answering 401 fails ER-01 once, not every JV row.
Every defect token is otherwise valid for the vendor's policy (issuer, audience, subject).
"""

from __future__ import annotations

import base64
import json

from harness.verify.context import CheckContext, check

JV = ("happy", "issuer")
DAY = 86400


def _try(c: CheckContext, token: str, what: str, *, server_error: str = "minor") -> bool:
    return c.rejected(c.exchange(subject_token=token), what, server_error=server_error)


@check("JV-01", needs=JV)
def jv01(c: CheckContext) -> None:
    _try(c, c.run.mint(defect="tampered"), "one payload byte changed, signature kept")


@check("JV-02", needs=JV)
def jv02(c: CheckContext) -> None:
    for defect in ("alg-none", "alg-None", "alg-NONE", "alg-none-signed"):
        _try(c, c.run.mint(defect=defect), defect)


@check("JV-03", needs=JV)
def jv03(c: CheckContext) -> None:
    for defect in ("hs256-public-pem", "hs256-public-jwk"):
        _try(c, c.run.mint(defect=defect), defect)


@check("JV-04", needs=JV)
def jv04(c: CheckContext) -> None:
    documented = set(c.run.settings.algorithms)
    for defect in ("alg-PS256", "alg-RS384", "alg-ES512", "alg-HS256-secret"):
        alg = defect.removeprefix("alg-").removesuffix("-secret")
        if alg in documented:
            c.info(f"{alg} is documented as supported by this profile: not probed")
            continue
        _try(c, c.run.mint(defect=defect), f"signed with {alg} (unpublished key)")
    for defect in ("alg-PS256-published-key", "alg-RS384-published-key"):
        alg = defect.removeprefix("alg-").removesuffix("-published-key")
        if alg in documented:
            continue
        _try(c, c.run.mint(defect=defect), f"signed with {alg} by the published RSA key")


@check("JV-05", needs=JV)
def jv05(c: CheckContext) -> None:
    _try(c, c.run.mint(defect="unknown-kid"), "fresh key, random kid")
    _try(c, c.run.mint(defect="foreign-key-real-kid"), "fresh key reusing a published kid")
    c.info("another trusted issuer's key not probed: needs a second trusted test issuer")


@check("JV-06", needs=JV)
def jv06(c: CheckContext) -> None:
    _try(c, c.run.mint(defect="embedded-jwk"), "attacker key in the jwk header")
    token = c.run.mint(defect="jku")
    _try(c, token, "attacker key behind a jku header")
    issuer = c.run.issuer
    assert issuer is not None
    payload = _claims(token)
    nonce = str(payload.get("jti", ""))
    if nonce and issuer.jku_fetched(nonce):
        c.minor("the endpoint fetched the jku URL from the token (SSRF; RFC 8725 §3.10)")
    else:
        c.passed("the jku URL was not fetched")


def _claims(token: str) -> dict[str, object]:
    try:
        segment = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@check("JV-07", needs=JV)
def jv07(c: CheckContext) -> None:
    for defect, what in (
        ("kid-traversal", "kid ../../../../dev/null"),
        ("kid-sql", "kid ' OR '1'='1"),
        ("kid-huge", "kid of 10 KB"),
    ):
        response = c.exchange(subject_token=c.run.mint(defect=defect))
        if response is not None and 400 <= response.status_code < 500:
            c.passed(f"{what}: HTTP {response.status_code}")
        else:
            code = response.status_code if response is not None else "no answer"
            c.minor(f"{what}: HTTP {code}; expected 4xx")


@check("JV-08", needs=JV)
def jv08(c: CheckContext) -> None:
    issuer = c.run.issuer
    assert issuer is not None
    _try(c, c.run.mint(claims={"iss": "https://untrusted.harness.invalid"}), "untrusted iss")
    variants = [(issuer.issuer + "/", "iss with a trailing slash added")]
    scheme, rest = issuer.issuer.split("://", 1)
    host, sep, path = rest.partition("/")
    changed = f"{scheme}://{host.upper()}{sep}{path}"
    if changed == issuer.issuer:  # an IP-literal host has no case: change the scheme's
        changed = f"{scheme.upper()}://{rest}"
    variants.append((changed, "iss with the scheme/host case changed"))
    for value, what in variants:
        response = c.exchange(subject_token=c.run.mint(claims={"iss": value}))
        if response is not None and response.status_code == 200:
            c.minor(f"{what}: accepted (issuer not compared exactly)")
        else:
            code = response.status_code if response is not None else "no answer"
            c.passed(f"{what}: HTTP {code}")


@check("JV-09", needs=JV)
def jv09(c: CheckContext) -> None:
    now = int(c.run.now())
    _try(c, c.run.mint(claims={"iat": now - 1200, "exp": now - 600}), "exp 10 minutes ago")
    response = c.exchange(subject_token=c.run.mint(claims={"iat": now - 600, "exp": now - 30}))
    code = response.status_code if response is not None else "no answer"
    c.info(f"exp 30 s ago (clock-skew tolerance): HTTP {code}")


@check("JV-10", needs=JV)
def jv10(c: CheckContext) -> None:
    response = c.exchange(subject_token=c.run.mint(omit=["exp"]))
    if response is None or response.status_code != 200:
        code = response.status_code if response is not None else "no answer"
        c.passed(f"no exp: rejected, HTTP {code}")
    elif c.run.config.subject_token_type.endswith(":id_token"):
        c.violation("an ID token without exp was accepted (OIDC Core §2 makes exp mandatory)")
    else:
        c.minor("a JWT without exp was accepted (RFC 7523 §3 makes exp mandatory for grants)")


@check("JV-11", needs=JV)
def jv11(c: CheckContext) -> None:
    now = int(c.run.now())
    _try(c, c.run.mint(claims={"nbf": now + 600}), "nbf 10 minutes ahead")


@check("JV-12", needs=JV)
def jv12(c: CheckContext) -> None:
    now = int(c.run.now())
    for claims, what in (
        ({"iat": now - 30 * DAY}, "iat 30 days ago"),
        ({"exp": now + 3650 * DAY}, "exp 10 years ahead"),
    ):
        response = c.exchange(subject_token=c.run.mint(claims=claims))
        code = response.status_code if response is not None else "no answer"
        c.info(f"{what}: HTTP {code}")


@check("JV-13", needs=JV)
def jv13(c: CheckContext) -> None:
    _try(c, c.run.mint(audience="https://other.harness.invalid"), "aud of another recipient")
    _try(c, c.run.mint(omit=["aud"]), "no aud")


@check("JV-14", needs=JV)
def jv14(c: CheckContext) -> None:
    accepted = c.run.config.audiences[0]
    token = c.run.mint(audience=[accepted, "https://other.harness.invalid"])
    response = c.exchange(subject_token=token)
    code = response.status_code if response is not None else "no answer"
    c.info(f"aud=[accepted, other]: HTTP {code}")


@check("JV-15", needs=JV)
def jv15(c: CheckContext) -> None:
    _try(c, c.run.mint(omit=["sub"]), "no subject claim")
    _try(c, c.run.mint(subject="nobody-unprovisioned@harness.invalid"), "unprovisioned subject")


@check("JV-16", needs=JV)
def jv16(c: CheckContext) -> None:
    _try(c, c.run.mint(defect="crit"), "crit: [x-unknown]")


@check("JV-17", needs=JV)
def jv17(c: CheckContext) -> None:
    for defect in ("typ-at+jwt", "typ-dpop+jwt", "typ-oauth-id-jag+jwt"):
        response = c.exchange(subject_token=c.run.mint(defect=defect))
        if response is not None and response.status_code == 200:
            c.minor(f"{defect.removeprefix('typ-')}: accepted as an identity JWT")
        else:
            code = response.status_code if response is not None else "no answer"
            c.passed(f"{defect.removeprefix('typ-')}: HTTP {code}")
    _try(c, c.run.mint(defect="logout-token"), "OIDC back-channel logout token")


@check("JV-18", needs=JV)
def jv18(c: CheckContext) -> None:
    token = c.run.mint()
    first = c.exchange(subject_token=token)
    second = c.exchange(subject_token=token)
    codes = [r.status_code if r is not None else "no answer" for r in (first, second)]
    if codes == [200, 200]:
        c.info("the same subject token (same jti) was exchanged twice: reuse allowed")
    else:
        c.info(f"the same subject token twice: HTTP {codes[0]} then {codes[1]}")


@check("JV-19", needs=JV)
def jv19(c: CheckContext) -> None:
    good = c.run.mint()
    header, payload, signature = good.split(".")
    garbage = base64.urlsafe_b64encode(b'{"sub":"\xff\xfe"}').decode().rstrip("=")
    cases = [
        (f"{header}.{payload}", "two segments"),
        (f"{header}.{payload}==.{signature}", "padded base64url payload"),
        (f"{header}.{payload[:-1]}*!.{signature}", "invalid base64url characters"),
        (f"{header}.{garbage}.{signature}", "non-UTF-8 JSON payload"),
    ]
    for token, what in cases:
        _try(c, token, what, server_error="violation")
    c.info(
        "duplicate claim names not probed: the issuer signs JSON objects, which cannot "
        "repeat a member"
    )
