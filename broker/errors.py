"""OAuth error values shared by every endpoint.

Handlers raise :class:`OAuthError`; the application turns it into the RFC 6749 §5.2 JSON body
(token and registration endpoints) or a redirect / error page (authorization endpoint). Keeping
one exception type means no handler can forget ``Cache-Control: no-store`` on an error.
"""

from __future__ import annotations


class OAuthError(Exception):
    """An OAuth error response: ``error`` code, human description, HTTP status, extra headers.

    ``error_description`` must never contain a token: it is shown to clients and logged.
    """

    def __init__(
        self,
        error: str,
        description: str = "",
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})
        #: Upstream request id when the error came from an upstream answer (for the audit).
        self.request_id = request_id

    def body(self) -> dict[str, str]:
        """The JSON body of the error (RFC 6749 §5.2)."""
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class PolicyDenied(OAuthError):
    """The policy gate refused (or could not evaluate, failing closed): 403 ``access_denied``.

    ``policy`` is the one-line decision summary kept in the audit record.
    """

    def __init__(self, description: str, policy: str) -> None:
        super().__init__("access_denied", description, status=403)
        self.policy = policy


def invalid_target(description: str) -> OAuthError:
    """RFC 8707 §2: the requested resource is invalid, unknown or malformed."""
    return OAuthError("invalid_target", description)


class ConfigError(ValueError):
    """The configuration is invalid; the message names the setting and the reason."""
