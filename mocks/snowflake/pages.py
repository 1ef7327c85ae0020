"""The few HTML pages and redirects of Snowflake OAuth's ``/oauth/authorize``.

Errors about the client or its redirect URI are an HTML page, never a redirect (an attacker
must not bounce users to an unregistered URI); every later error goes back on the redirect.
The login form is a single POST form simple enough for a scripted client.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from mocks.core.http import html_response

NO_STORE = {"Cache-Control": "no-store"}


def redirect(uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in uri else "?"
    return Response(
        status=302,
        headers={"Location": f"{uri}{separator}{query}", **NO_STORE},
        content_type="text/html; charset=utf-8",
    )


def error_page(status: int, error: str, description: str) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Snowflake OAuth</title></head>"
        f"<body><h1>Invalid consent request</h1><p id='error-code'>{html.escape(error)}</p>"
        f"<p id='error-summary'>{html.escape(description)}</p></body></html>"
    )
    return html_response(body, status, NO_STORE)


def login_page(
    action: str, txn: str, *, username: str = "", error: str | None = None, status: int = 200
) -> Response:
    message = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to Snowflake</title></head>
<body><main>
<h1>Sign in to Snowflake</h1>
{message}
<form method="post" action="{html.escape(action)}">
  <input type="hidden" name="txn" value="{html.escape(txn)}">
  <label>Username <input type="text" name="username" value="{html.escape(username)}"></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit">Sign in</button>
</form>
</main></body></html>
"""
    return html_response(body, status, NO_STORE)
