"""The verify catalog: one :class:`CheckSpec` per row of REQUIREMENTS.md §1-§7.

Severity belongs to the catalog, never to the check code (the OpenID Foundation lesson,
REQUIREMENTS §18): a check reports *what it saw* (a violation, a minor deviation, a
recorded fact), and the row's level turns a violation into a verdict — MUST/REQUIRED/MUST
NOT → FAILED, SHOULD/RECOMMENDED/SHOULD NOT → WARNING, MAY/``—``/derived/profile → INFO.
A level that mixes keywords ("SHOULD / MUST") takes its strongest one; the row's own text
names which sub-case is the weaker one and the check reports that as a minor deviation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.results import Status

AREAS = {
    "TX": "§1 RFC 8693 request processing",
    "TR": "§2 RFC 8693 success response",
    "ER": "§3 Error responses",
    "HT": "§4 Token endpoint HTTP rules",
    "JV": "§5 JWT subject-token validation",
    "AC": "§6 act and may_act",
    "IT": "§7 Issued token",
}

_FAIL = re.compile(r"\b(MUST|REQUIRED|SHALL)\b")
_WARN = re.compile(r"\b(SHOULD|RECOMMENDED)\b")


def default_verdict(level: str) -> Status:
    """The verdict a violated row gets: the strongest BCP 14 keyword of its level."""
    if _FAIL.search(level):
        return Status.FAILED
    if _WARN.search(level):
        return Status.WARNING
    return Status.INFO


@dataclass(frozen=True)
class CheckSpec:
    """One catalog row: stable ``id``, short ``title``, ``area`` (report grouping),
    ``source`` (spec sections) and ``level`` (the BCP 14 keyword as the catalog gives it)."""

    id: str
    title: str
    area: str
    source: str
    level: str

    @property
    def verdict(self) -> Status:
        return default_verdict(self.level)


_8693 = "RFC 8693 "
_ROWS: tuple[tuple[str, str, str, str], ...] = (
    # §1
    (
        "TX-01",
        "Well-formed exchange is processed (happy path, gate)",
        "RFC 8693 §2.1, §2.2",
        "REQUIRED",
    ),
    ("TX-02", "subject_token is required", _8693 + "§2.1", "REQUIRED"),
    (
        "TX-03",
        "subject_token_type is required; empty counts as omitted",
        _8693 + "§2.1; RFC 6749 §3.2",
        "REQUIRED",
    ),
    ("TX-04", "Validation fits the declared token type", _8693 + "§2.1", "MUST"),
    (
        "TX-05",
        "Unsupported subject_token_type is an invalid request",
        _8693 + "§2.2.2; RFC 6749 §5.2",
        "MUST (code)",
    ),
    (
        "TX-06",
        "actor_token_type required with actor_token, forbidden without",
        _8693 + "§2.1",
        "REQUIRED / MUST NOT",
    ),
    (
        "TX-07",
        "resource must be an absolute URI without fragment",
        _8693 + "§2.1; RFC 8707 §2",
        "MUST",
    ),
    (
        "TX-08",
        "Several audience values are not a repeated-parameter error",
        _8693 + "§2.1, §2.1.1, §2.2.2",
        "MAY (client) / SHOULD (code)",
    ),
    ("TX-09", "A target the client may not get answers invalid_target", _8693 + "§2.2.2", "SHOULD"),
    (
        "TX-10",
        "requested_token_type optional; unsupported type is invalid",
        _8693 + "§2.1, §2.2.1, §2.2.2",
        "OPTIONAL / derived",
    ),
    (
        "TX-11",
        "Excess scope refused (invalid_scope) or reduced and reported",
        "RFC 6749 §5.2; RFC 8693 §2.2.1",
        "MUST (report reduced scope)",
    ),
    (
        "TX-12",
        "Unknown parameters ignored; empty parameters count as omitted",
        "RFC 6749 §3.2; OAuth 2.1 §3.2",
        "MUST",
    ),
    (
        "TX-13",
        "Repeated single-valued parameters are rejected",
        "RFC 6749 §3.2, §5.2",
        "MUST NOT (sender); rejection derived",
    ),
    (
        "TX-14",
        "Client authentication is a deployment choice (recorded)",
        _8693 + "§2.1",
        "— (deployment choice)",
    ),
    ("TX-15", "Unknown grant type answers unsupported_grant_type", "RFC 6749 §5.2", "MUST (codes)"),
    # §2
    ("TR-01", "Success is 200 with one JSON object", _8693 + "§2.2.1; RFC 6749 §5.1", "MUST"),
    ("TR-02", "access_token carries the issued token", _8693 + "§2.2.1", "REQUIRED"),
    ("TR-03", "issued_token_type is present and an absolute URI", _8693 + "§2.2.1, §3", "REQUIRED"),
    (
        "TR-04",
        "token_type present (Bearer, or N_A for non-access tokens)",
        _8693 + "§2.2.1; RFC 6749 §7.1",
        "REQUIRED",
    ),
    (
        "TR-05",
        "expires_in recommended, a JSON number",
        _8693 + "§2.2.1; RFC 6749 §5.1",
        "RECOMMENDED / —",
    ),
    (
        "TR-06",
        "scope present when the issued scope differs",
        _8693 + "§2.2.1; RFC 8707 §2.2",
        "REQUIRED (when different)",
    ),
    (
        "TR-07",
        "refresh_token optional (recorded)",
        _8693 + "§2.2.1; ID-JAG §4.3.4; chaining §5.4",
        "OPTIONAL / SHOULD NOT (profiles)",
    ),
    # §3
    (
        "ER-01",
        "Rejected subject tokens get 400 invalid_request",
        "RFC 8693 §2.2.2; RFC 6749 §5.2",
        "MUST",
    ),
    (
        "ER-02",
        "Error body: JSON object, error required, restricted characters",
        "RFC 6749 §5.2",
        "REQUIRED / MUST NOT",
    ),
    (
        "ER-03",
        "error values come from the token-endpoint registry",
        "RFC 6749 §5.2, §8.5; RFC 8707 §2",
        "—",
    ),
    (
        "ER-04",
        "Failed client authentication answers invalid_client (401 + WWW-Authenticate)",
        "RFC 6749 §5.2",
        "MUST",
    ),
    ("ER-05", "Errors do not leak the submitted token", "RFC 8693 §6; ID-JAG §8.4", "derived"),
    (
        "ER-06",
        "Malformed input yields a 4xx OAuth error, never 5xx or HTML",
        "derived (robustness)",
        "derived",
    ),
    # §4
    ("HT-01", "The token endpoint requires TLS", "RFC 6749 §3.2, §1.6; OAuth 2.1 §1.5", "MUST"),
    (
        "HT-02",
        "Token responses carry Cache-Control: no-store",
        "RFC 6749 §5.1; OAuth 2.1 §3.2.3",
        "MUST",
    ),
    (
        "HT-03",
        "Token responses carry Pragma: no-cache",
        "RFC 6749 §5.1 (dropped in OAuth 2.1)",
        "MUST in RFC 6749",
    ),
    (
        "HT-04",
        "A GET with query parameters yields no token",
        "RFC 6749 §3.2; OAuth 2.1 §3.2",
        "MUST (client) / derived (STS)",
    ),
    ("HT-05", "Body is form-urlencoded UTF-8", "RFC 8693 §2.1; RFC 6749 App. B", "MUST (client)"),
    (
        "HT-06",
        "Client credentials are not accepted in the request URI",
        "RFC 6749 §2.3.1",
        "MUST NOT (client)",
    ),
    (
        "HT-07",
        "Only one client-authentication method per request",
        "RFC 6749 §2.3, §5.2",
        "MUST NOT (client)",
    ),
    (
        "HT-08",
        "HTTP Basic with form-urlencoded credentials is supported",
        "RFC 6749 §2.3.1",
        "MUST",
    ),
    # §5
    (
        "JV-01",
        "Reject a JWT whose signature does not verify",
        "RFC 7515 §5.2; RFC 7519 §7.2; RFC 8725 §3.3; RFC 7523 §3 (9)",
        "MUST",
    ),
    (
        "JV-02",
        "Reject unsecured JWTs (alg none, any spelling)",
        "RFC 8725 §3.1-3.2; RFC 7523 §3 (9); OIDC Core §2; RFC 9068 §4",
        "MUST",
    ),
    ("JV-03", "No RS→HS algorithm confusion", "RFC 8725 §3.1", "MUST"),
    ("JV-04", "Only the algorithms the STS accepts", "RFC 8725 §3.2; RFC 7519 §7.2", "MUST"),
    ("JV-05", "Verification keys belong to the issuer", "RFC 8725 §3.8", "MUST"),
    (
        "JV-06",
        "Keys are not taken from the token (jwk, jku)",
        "RFC 8725 §3.10, §3.8",
        "MUST / SHOULD",
    ),
    ("JV-07", "kid is untrusted input", "RFC 8725 §3.10", "— (lower-case should)"),
    ("JV-08", "Issuer trusted and matched exactly", "RFC 8725 §3.8; RFC 7523 §3 (1)", "MUST"),
    ("JV-09", "Expired token rejected", "RFC 7519 §4.1.4; RFC 7523 §3 (4)", "MUST"),
    ("JV-10", "Missing exp rejected", "RFC 7523 §3 (4); OIDC Core §2", "MUST (those profiles)"),
    ("JV-11", "Future nbf rejected", "RFC 7519 §4.1.5", "MUST"),
    ("JV-12", "Unreasonable lifetimes may be refused (recorded)", "RFC 7523 §3 (4), (6)", "MAY"),
    ("JV-13", "Wrong or missing aud rejected", "RFC 7519 §4.1.3; RFC 8725 §3.9", "MUST"),
    ("JV-14", "Multi-valued aud (recorded)", "RFC 7519 §4.1.3; ID-JAG §4.4.1", "— / MUST (ID-JAG)"),
    ("JV-15", "Subject present and a valid principal", "RFC 8725 §3.8; RFC 7523 §3 (2)", "MUST"),
    ("JV-16", "Unknown critical header extensions rejected", "RFC 7515 §4.1.11", "MUST"),
    (
        "JV-17",
        "JWTs of another kind (typ) are not identity tokens",
        "RFC 8725 §3.11, §3.12",
        "SHOULD / MUST",
    ),
    ("JV-18", "jti replay may be blocked (recorded)", "RFC 7523 §3 (7)", "MAY"),
    (
        "JV-19",
        "Malformed serialisation rejected without 5xx",
        "RFC 7519 §7.2, §4; RFC 8725 §3.7",
        "MUST",
    ),
    # §6
    ("AC-01", "act is an object naming the actor", _8693 + "§4.1, §4.4", "— (format)"),
    ("AC-02", "Access decisions use only the current actor", _8693 + "§4.1", "MUST"),
    ("AC-03", "may_act limits who may act for the subject", _8693 + "§4.4", "MAY (usage)"),
    (
        "AC-04",
        "Re-exchange keeps an existing act (recorded)",
        _8693 + "§1.1, §4.1",
        "— (semantics)",
    ),
    # §7
    (
        "IT-01",
        "RFC 9068 JWT access token shape (if claimed)",
        "RFC 9068 §2.1, §2.2",
        "MUST / REQUIRED (only if the vendor claims RFC 9068)",
    ),
    (
        "IT-02",
        "Issued token audience-restricted to the target",
        "RFC 8707 §2; RFC 9068 §3",
        "SHOULD / MUST",
    ),
    ("IT-03", "Issued token works at the intended target", "derived", "derived"),
    (
        "IT-04",
        "Issued token refused at another target",
        "RFC 9700 §2.3; RFC 8707 §2",
        "MUST (RS) / SHOULD (issuer)",
    ),
    (
        "IT-05",
        "Issued token does not outlive the subject token",
        "derived; Databricks docs",
        "profile",
    ),
)

#: Every row by id, in catalog order (the order checks run and reports list them).
CATALOG: dict[str, CheckSpec] = {
    row[0]: CheckSpec(row[0], row[1], AREAS[row[0][:2]], row[2], row[3]) for row in _ROWS
}
