"""IT rows: the issued token itself (RFC 9068 shape, audience, probes, lifetime).

Probes are GETs with the issued token as a Bearer credential: ``--probe`` should answer 200
(IT-03), ``--probe-other`` (another workspace or tenant) must refuse it (IT-04)."""

from __future__ import annotations

from harness.verify.context import CheckContext, HappyPath, Skip, check, decoded

RFC9068_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")


def _happy(c: CheckContext) -> HappyPath:
    assert c.run.happy is not None
    return c.run.happy


def _jwt(c: CheckContext) -> tuple[dict[str, object], dict[str, object]]:
    parsed = decoded(_happy(c).access_token)
    if parsed is None:
        raise Skip("issued token is opaque")
    return parsed


@check("IT-01")
def it01(c: CheckContext) -> None:
    header, claims = _jwt(c)
    typ = str(header.get("typ", ""))
    claimed = typ.lower() in ("at+jwt", "application/at+jwt") or c.run.settings.rfc9068
    if not claimed:
        c.info(f"a JWT, but not an RFC 9068 access token (typ={typ or None!r}); not scored")
        return
    if str(header.get("alg", "none")).lower() == "none":
        c.violation("the issued RFC 9068 token is unsigned (alg none)")
    if typ.lower() not in ("at+jwt", "application/at+jwt"):
        c.violation(f"header typ is {typ!r}, RFC 9068 §2.1 requires at+jwt")
    missing = [name for name in RFC9068_CLAIMS if name not in claims]
    if missing:
        c.violation(f"RFC 9068 §2.2 claims missing: {', '.join(missing)}")
    if not any(f.violation for f in c.findings):
        c.passed(f"at+jwt, {header.get('alg')}, claims {', '.join(RFC9068_CLAIMS)} present")


@check("IT-02")
def it02(c: CheckContext) -> None:
    _, claims = _jwt(c)
    aud = claims.get("aud")
    if aud in (None, "", []):
        c.violation("the issued token has no aud (RFC 9068 §3: use a default resource)")
        return
    c.passed(f"aud={aud!r} (no resource was requested: a default audience is used)")


@check("IT-03", needs=("happy", "probe"))
def it03(c: CheckContext) -> None:
    url = c.run.config.probe
    assert url is not None
    response = c.send(
        method="GET",
        url=url,
        auth=False,
        headers={"Authorization": f"Bearer {_happy(c).access_token}"},
    )
    if response is not None and response.status_code == 200:
        c.passed(f"GET {url}: 200 with the issued token")
    else:
        code = response.status_code if response is not None else "no answer"
        c.minor(f"GET {url}: HTTP {code} with the issued token")  # derived row: violation = INFO


@check("IT-04", needs=("happy", "probe_other"))
def it04(c: CheckContext) -> None:
    url = c.run.config.probe_other
    assert url is not None
    response = c.send(
        method="GET",
        url=url,
        auth=False,
        headers={"Authorization": f"Bearer {_happy(c).access_token}"},
    )
    if response is None:
        c.passed(f"GET {url}: no answer")
    elif response.status_code in (401, 403):
        c.passed(f"GET {url}: HTTP {response.status_code} (the token is refused elsewhere)")
    elif 200 <= response.status_code < 300:
        c.violation(f"GET {url}: HTTP {response.status_code}: the token works at another target")
    else:
        c.minor(f"GET {url}: HTTP {response.status_code}; expected 401/403")


@check("IT-05")
def it05(c: CheckContext) -> None:
    happy = _happy(c)
    exp = (happy.subject_claims or {}).get("exp")
    expires_in = happy.body.get("expires_in")
    if not isinstance(exp, int | float):
        raise Skip("the subject token's exp is unknown (opaque subject token)")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        raise Skip("the response has no numeric expires_in")
    remaining = exp - happy.sent_at
    skew = c.run.settings.lifetime_skew
    if expires_in > remaining + skew:
        c.violation(
            f"expires_in={expires_in} s outlives the subject token ({remaining:.0f} s left)"
        )
    else:
        c.passed(f"expires_in={expires_in} s ≤ the subject token's {remaining:.0f} s (+{skew:.0f})")
