"""Signing defects: tokens a correct verifier must refuse, each wrong in exactly one way.

Every defect starts from the clean token (same claims, same header) and changes one thing, so
a vendor that accepts it has the named bug and no other explanation. The claims stay valid
(the subject is still a provisioned user, ``exp`` is in the future): a verifier that skips the
check under test accepts the token, which is what makes the check able to fail (JV-01..07,
JV-16, JV-17 of REQUIREMENTS.md §5).

Keys that sign defective tokens without being published ("attacker" keys) come from the
issuer's :class:`~harness.issuer.keys.KeyStore` and are never in its JWKS; the ``jku`` defect's
key set is served only at the recording URL :meth:`DefectContext.jku_url` names.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.issuer.jws import b64url, b64url_decode, compact, hs256, json_bytes
from harness.issuer.keys import IssuerKey

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
KID_TRAVERSAL = "../../../../dev/null"
KID_SQL = "' OR '1'='1"
KID_HUGE_LENGTH = 10 * 1024

SIGNING_DEFECTS: dict[str, str] = {
    "tampered": "one payload byte changed after signing (header and signature kept)",
    "alg-none": "unsecured JWT: alg 'none', empty signature",
    "alg-None": "unsecured JWT: alg 'None', empty signature",
    "alg-NONE": "unsecured JWT: alg 'NONE', empty signature",
    "alg-none-signed": "alg 'none' in the header, the original signature kept",
    "hs256-public-pem": "HS256 MAC keyed with the issuer's public key PEM (RS->HS confusion)",
    "hs256-public-jwk": "HS256 MAC keyed with the issuer's public JWK JSON",
    "unknown-kid": "signed by an unpublished key under a random kid",
    "foreign-key-real-kid": "signed by an unpublished key under a published kid",
    "embedded-jwk": "signed by an unpublished key carried in the header 'jwk'",
    "jku": "signed by an unpublished key; header 'jku' points at a URL that records fetches",
    "crit": "unknown critical header extension: crit ['x-unknown'], x-unknown true",
    "typ-at+jwt": "typ 'at+jwt' (an access token, RFC 9068)",
    "typ-dpop+jwt": "typ 'dpop+jwt' (a DPoP proof, RFC 9449)",
    "typ-oauth-id-jag+jwt": "typ 'oauth-id-jag+jwt' (an identity assertion grant)",
    "logout-token": "an OIDC back-channel logout token: typ 'logout+jwt' with 'events'",
    "alg-PS256": "PS256, an algorithm outside RS256/ES256, with an unpublished RSA key",
    "alg-RS384": "RS384, an algorithm outside RS256/ES256, with an unpublished RSA key",
    "alg-ES512": "ES512, an algorithm outside RS256/ES256, with an unpublished P-521 key",
    "alg-HS256-secret": "HS256 with a random secret the verifier cannot know",
    "alg-PS256-published-key": "PS256 signed with the published RSA key and its kid: accepted "
    "only by a verifier that lets the header choose the algorithm",
    "alg-RS384-published-key": "RS384 signed with the published RSA key and its kid: accepted "
    "only by a verifier that lets the header choose the algorithm",
    "kid-traversal": f"kid {KID_TRAVERSAL!r} (path traversal), real signature",
    "kid-sql": f"kid {KID_SQL!r} (SQL injection), real signature",
    "kid-huge": f"kid of {KID_HUGE_LENGTH} characters, real signature",
}


@dataclass
class Draft:
    """The clean token before signing: its header, its claims, and the published key."""

    header: dict[str, Any]
    claims: dict[str, Any]
    key: IssuerKey


@dataclass
class DefectContext:
    """What defects need from the issuer besides the draft."""

    attacker: Callable[[str], IssuerKey]
    """An unpublished key for ``RS256``, ``ES256``, ``PS256``, ``RS384`` or ``ES512``."""
    hs_secret: bytes
    """The HMAC secret of ``alg-HS256-secret``: random, known to nobody else."""
    jku_url: Callable[[str], str]
    """The recording URL for a nonce (the token's ``jti``)."""
    published: Callable[[str], IssuerKey]
    """A published signing key by algorithm (``RS256`` or ``ES256``)."""


def check_defect(defect: str | None) -> None:
    """Raise :class:`ValueError` naming the valid defects unless ``defect`` is one (or None)."""
    if defect is not None and defect not in SIGNING_DEFECTS:
        raise ValueError(f"unknown signing defect {defect!r}; valid: {', '.join(SIGNING_DEFECTS)}")


def sign(draft: Draft, defect: str | None, context: DefectContext) -> str:
    """The compact token of ``draft`` with ``defect`` applied (None: the clean token)."""
    check_defect(defect)
    if defect is None:
        return _clean(draft)
    if defect.startswith("typ-"):
        return _signed(draft, {"typ": defect[len("typ-") :]})
    return _BUILDERS[defect](draft, context)


def _clean(draft: Draft) -> str:
    return compact(draft.header, draft.claims, draft.key.alg, draft.key.private_key)


def _signed(draft: Draft, header: dict[str, Any], claims: dict[str, Any] | None = None) -> str:
    """Signed by the published key, with header members (and claims) changed."""
    return compact(
        {**draft.header, **header},
        draft.claims if claims is None else claims,
        draft.key.alg,
        draft.key.private_key,
    )


def _by(key: IssuerKey, draft: Draft, header: dict[str, Any]) -> str:
    """Signed by ``key`` (not published), with its algorithm and ``kid`` unless overridden."""
    merged = {**draft.header, "alg": key.alg, "kid": key.kid, **header}
    return compact(merged, draft.claims, key.alg, key.private_key)


# -- JV-01: signature --------------------------------------------------------------------------
def _tampered(draft: Draft, context: DefectContext) -> str:
    head, payload, sig = _clean(draft).split(".")
    return f"{head}.{b64url(_tamper(b64url_decode(payload), draft.claims))}.{sig}"


def _tamper(raw: bytes, claims: dict[str, Any]) -> bytes:
    """``raw`` (the payload JSON) with one character of a claim value changed.

    ``jti`` first, as it changes nothing a verifier checks besides the signature; then
    ``sub``; if neither is a plain string, a claim is added instead.
    """
    for name in ("jti", "sub"):
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            continue
        member = json_bytes({name: value})[1:-1]  # "jti":"..."
        start = raw.find(member)
        pos = start + len(member) - 2  # the last character of the value
        if start < 0 or not chr(raw[pos]).isalnum() or raw[pos - 1] == ord("\\"):
            continue
        replacement = b"0" if raw[pos] != ord("0") else b"1"
        changed = raw[:pos] + replacement + raw[pos + 1 :]
        try:
            json.loads(changed)
        except ValueError:
            continue
        return changed
    return json_bytes({**claims, "x-tampered": True})


# -- JV-02: unsecured --------------------------------------------------------------------------
def _unsecured(alg: str) -> Callable[[Draft, DefectContext], str]:
    def build(draft: Draft, context: DefectContext) -> str:
        header = {**draft.header, "alg": alg}
        return f"{b64url(json_bytes(header))}.{b64url(json_bytes(draft.claims))}."

    return build


def _none_signed(draft: Draft, context: DefectContext) -> str:
    _, payload, sig = _clean(draft).split(".")
    return f"{b64url(json_bytes({**draft.header, 'alg': 'none'}))}.{payload}.{sig}"


# -- JV-03: RS -> HS confusion -----------------------------------------------------------------
def _hs256_keyed(secret_of: Callable[[IssuerKey], bytes]) -> Callable[[Draft, DefectContext], str]:
    def build(draft: Draft, context: DefectContext) -> str:
        header = {**draft.header, "alg": "HS256"}
        message = f"{b64url(json_bytes(header))}.{b64url(json_bytes(draft.claims))}"
        return f"{message}.{hs256(secret_of(draft.key), message)}"

    return build


# -- JV-05 / JV-06: keys that are not the issuer's ---------------------------------------------
def _unknown_kid(draft: Draft, context: DefectContext) -> str:
    return _by(context.attacker(draft.key.alg), draft, {"kid": b64url(secrets.token_bytes(32))})


def _foreign_real_kid(draft: Draft, context: DefectContext) -> str:
    return _by(context.attacker(draft.key.alg), draft, {"kid": draft.key.kid})


def _embedded_jwk(draft: Draft, context: DefectContext) -> str:
    key = context.attacker(draft.key.alg)
    return _by(key, draft, {"jwk": key.public_jwk()})


def _jku(draft: Draft, context: DefectContext) -> str:
    jti = draft.claims.get("jti")
    nonce = jti if isinstance(jti, str) and jti else secrets.token_hex(16)
    return _by(context.attacker(draft.key.alg), draft, {"jku": context.jku_url(nonce)})


# -- JV-16 / JV-17: headers and token kinds ----------------------------------------------------
def _crit(draft: Draft, context: DefectContext) -> str:
    return _signed(draft, {"crit": ["x-unknown"], "x-unknown": True})


def _logout_token(draft: Draft, context: DefectContext) -> str:
    claims = {k: v for k, v in draft.claims.items() if k != "nonce"}  # forbidden in logout
    claims["events"] = {BACKCHANNEL_LOGOUT_EVENT: {}}
    return _signed(draft, {"typ": "logout+jwt"}, claims)


# -- JV-04: algorithms outside the accepted set ------------------------------------------------
def _other_alg(alg: str) -> Callable[[Draft, DefectContext], str]:
    def build(draft: Draft, context: DefectContext) -> str:
        return _by(context.attacker(alg), draft, {})

    return build


def _published_other_alg(alg: str) -> Callable[[Draft, DefectContext], str]:
    """The published RSA key signing under another RSA algorithm: the key (found by its real
    ``kid``) verifies the signature, so only an algorithm allow-list refuses the token."""

    def build(draft: Draft, context: DefectContext) -> str:
        key = context.published("RS256")
        header = {**draft.header, "alg": alg, "kid": key.kid}
        return compact(header, draft.claims, alg, key.private_key)

    return build


def _hs256_secret(draft: Draft, context: DefectContext) -> str:
    kid = "hs-" + hashlib.sha256(context.hs_secret).hexdigest()[:16]
    header = {**draft.header, "alg": "HS256", "kid": kid}
    message = f"{b64url(json_bytes(header))}.{b64url(json_bytes(draft.claims))}"
    return f"{message}.{hs256(context.hs_secret, message)}"


# -- JV-07: kid as untrusted input -------------------------------------------------------------
def _kid(value: str) -> Callable[[Draft, DefectContext], str]:
    def build(draft: Draft, context: DefectContext) -> str:
        return _signed(draft, {"kid": value})

    return build


_BUILDERS: dict[str, Callable[[Draft, DefectContext], str]] = {
    "tampered": _tampered,
    "alg-none": _unsecured("none"),
    "alg-None": _unsecured("None"),
    "alg-NONE": _unsecured("NONE"),
    "alg-none-signed": _none_signed,
    "hs256-public-pem": _hs256_keyed(lambda key: key.public_pem()),
    "hs256-public-jwk": _hs256_keyed(lambda key: json_bytes(key.public_jwk())),
    "unknown-kid": _unknown_kid,
    "foreign-key-real-kid": _foreign_real_kid,
    "embedded-jwk": _embedded_jwk,
    "jku": _jku,
    "crit": _crit,
    "logout-token": _logout_token,
    "alg-PS256": _other_alg("PS256"),
    "alg-RS384": _other_alg("RS384"),
    "alg-ES512": _other_alg("ES512"),
    "alg-HS256-secret": _hs256_secret,
    "alg-PS256-published-key": _published_other_alg("PS256"),
    "alg-RS384-published-key": _published_other_alg("RS384"),
    "kid-traversal": _kid(KID_TRAVERSAL),
    "kid-sql": _kid(KID_SQL),
    "kid-huge": _kid("k" * KID_HUGE_LENGTH),
}
assert set(_BUILDERS) | {n for n in SIGNING_DEFECTS if n.startswith("typ-")} == set(SIGNING_DEFECTS)

__all__ = ["SIGNING_DEFECTS", "DefectContext", "Draft", "check_defect", "sign"]
