"""The broker's own consent step (MCP Security Best Practices, "Confused Deputy"; MC-10).

The broker signs users in at Okta with ONE static client id. Once a user has an Okta session,
Okta would send them straight back for any authorization request the broker forwards, so a
malicious, dynamically registered MCP client could obtain a code for the user without the
user ever seeing its name. The MCP specification therefore requires a proxy like this one to
ask the user itself, per dynamically registered client, before forwarding to the third-party
authorization server. ``/authorize`` shows this page (client name, client id, the redirect
URI with its host highlighted, the resource) instead of redirecting to Okta; the form posts to
``/consent``; *Allow* continues to Okta, *Deny* returns ``error=access_denied`` (with ``state``
and ``iss``) to the client's redirect URI.

Where approval is remembered (the specifications are silent; this follows what peer MCP
OAuth proxies do, FastMCP's OAuth proxy since the GHSA-c2jp-c369-7pvx fix and Cloudflare's
``workers-oauth-provider`` examples, which both remember approvals in a browser cookie): per
*browser* and per (client id, exact redirect URI). No user is known before Okta, so the
browser is the only principal available. The cookie ``broker_browser`` holds a random id
(HttpOnly, SameSite=Lax, ``Secure`` when the broker is served over https); only its SHA-256
is stored. A new redirect URI, another browser, or a broker reset asks again. The form carries
a single-use ticket bound to the browser that was shown the page, which is the CSRF defence:
a POST from another browser, or a second POST, is refused. The page may not be framed
(clickjacking).
"""

from __future__ import annotations

import html
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from broker.errors import OAuthError
from broker.http_util import NO_STORE, json_response, redirect
from broker.storage import Client, Transaction, secret_hash

if TYPE_CHECKING:
    from broker.app import Broker

COOKIE = "broker_browser"
COOKIE_MAX_AGE = 365 * 24 * 3600
TICKET_FIELD = "consent_ticket"
DECISION_FIELD = "decision"


def browser_id(request: Request) -> str:
    """The browser's random id from its cookie, or a new one (set when the page is shown)."""
    value = request.cookies.get(COOKIE, "")
    if 20 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return secrets.token_urlsafe(24)


def browser_hash(browser: str) -> str:
    return secret_hash(browser)


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **NO_STORE,
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'",
        **(extra or {}),
    }


def page(
    broker: Broker,
    client: Client,
    transaction: Transaction,
    browser: str,
    issuer: str,
    request: Request,
) -> Response:
    """The consent form for ``transaction`` (already stored), bound to ``browser``."""
    ticket = secrets.token_urlsafe(24)
    broker.storage.add_consent_ticket(
        secret_hash(ticket), transaction.id, browser_hash(browser), transaction.expires_at
    )
    e = html.escape
    name = client.metadata.get("client_name") or "An unnamed application"
    host = urlsplit(transaction.redirect_uri).netloc
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow access?</title></head>
<body>
<h1>Allow {e(str(name))} to use your Databricks SQL data?</h1>
<p>The application <strong>{e(str(name))}</strong> (client id <code>{e(client.client_id)}</code>)
asks to act as you on <code>{e(transaction.resource)}</code>.</p>
<p>After you sign in, you will be sent to <strong>{e(host)}</strong>
(<code>{e(transaction.redirect_uri)}</code>). Only allow it if you started this sign-in and
trust that address.</p>
<form method="post" action="{e(issuer)}/consent" data-broker-consent="1">
<input type="hidden" name="{TICKET_FIELD}" value="{e(ticket)}">
<button type="submit" name="{DECISION_FIELD}" value="approve">Allow</button>
<button type="submit" name="{DECISION_FIELD}" value="deny">Deny</button>
</form>
</body></html>
"""
    response = Response(body, status=200, content_type="text/html; charset=utf-8")
    for key, value in _headers().items():
        response.headers[key] = value
    if request.cookies.get(COOKIE) != browser:
        response.set_cookie(
            COOKIE,
            browser,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=issuer.startswith("https://"),
        )
    return response


def _refuse(description: str) -> Response:
    """Shown, never redirected: without a valid ticket the redirect URI is not trusted."""
    return json_response({"error": "invalid_request", "error_description": description}, 400)


def submit(broker: Broker, request: Request) -> Response:
    """``POST /consent``: the user's decision on one consent ticket."""
    from broker.authorize import error_redirect, to_okta  # cycle: authorize imports us

    issuer = broker.base(request)
    ticket = request.form.get(TICKET_FIELD, "")
    decision = request.form.get(DECISION_FIELD, "")
    if not ticket:
        return _refuse(f"{TICKET_FIELD} is required")
    found = broker.storage.pop_consent_ticket(secret_hash(ticket))
    if found is None or found[2] <= broker.clock():
        return _refuse("unknown, used or expired consent request; start again")
    transaction_id, expected_browser, _ = found
    cookie = request.cookies.get(COOKIE, "")
    if not cookie or not secrets.compare_digest(browser_hash(cookie), expected_browser):
        return _refuse("the consent must be given in the browser that was asked")
    transaction = broker.storage.get_transaction(transaction_id)
    if transaction is None or transaction.expires_at <= broker.clock():
        return _refuse("unknown or expired login transaction; start again")
    if decision not in ("approve", "deny"):
        broker.storage.pop_transaction(transaction_id)
        return _refuse(f"{DECISION_FIELD} must be approve or deny")
    if decision == "deny":
        broker.storage.pop_transaction(transaction_id)
        denied = OAuthError("access_denied", "the user denied the application access")
        return redirect(
            error_redirect(broker, transaction.redirect_uri, denied, transaction.state, issuer)
        )
    try:
        location = to_okta(broker, transaction, issuer)
    except OAuthError as exc:
        broker.storage.pop_transaction(transaction_id)
        return redirect(
            error_redirect(broker, transaction.redirect_uri, exc, transaction.state, issuer)
        )
    broker.storage.add_consent(
        expected_browser, transaction.client_id, transaction.redirect_uri, broker.clock()
    )
    response = redirect(location)
    return response
