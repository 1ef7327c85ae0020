"""The mock Okta's HTML: the sign-in form, error pages and the signed-out page.

Kept minimal so a scripted client can drive them with ``html.parser``: one POST form with
``username``/``password``, a hidden ``txn`` and two buttons (sign in; ``action=deny`` to
cancel, which sends the user back to the client with ``error=access_denied``). Everything
echoed is escaped. Errors that must not go to an untrusted redirect URI are pages, not
redirects.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from mocks.core.http import html_response

STATUS_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Not Allowed"}


def redirect(uri: str, params: dict[str, str | None]) -> Response:
    """A 302 to ``uri`` with ``params`` (``None`` values left out) added to its query."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in uri else "?"
    location = f"{uri}{separator}{query}" if query else uri
    return Response(
        status=302,
        headers={"Location": location, "Cache-Control": "no-store"},
        content_type="text/html; charset=utf-8",
    )


def error_page(status: int, error: str, description: str) -> Response:
    title = STATUS_TITLES.get(status, "Error")
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Error</title></head><body>"
        f"<h1>{status} {title}</h1><p id='error-code'>{html.escape(error)}</p>"
        f"<p id='error-summary'>{html.escape(description)}</p></body></html>"
    )
    return html_response(body, status, {"Cache-Control": "no-store"})


def signed_out_page() -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Signed out</title></head>"
        "<body><h1>You have been signed out</h1></body></html>"
    )
    return html_response(body, 200, {"Cache-Control": "no-store"})


def login_page(
    action: str, txn: str, *, username: str = "", error: str | None = None, status: int = 200
) -> Response:
    """The sign-in page; ``action`` is the authorize endpoint the form posts back to."""
    message = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign In</title></head>
<body>
<main>
<h1>Sign In</h1>
{message}
<form method="post" action="{html.escape(action)}">
  <input type="hidden" name="txn" value="{html.escape(txn)}">
  <label>Username <input type="text" name="username" value="{html.escape(username)}"
    autocomplete="username"></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit" name="action" value="signin">Sign In</button>
  <button type="submit" name="action" value="deny" formnovalidate>Cancel</button>
</form>
</main>
</body></html>
"""
    return html_response(body, status, {"Cache-Control": "no-store"})
