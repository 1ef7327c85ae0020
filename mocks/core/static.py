"""A static document host (``apps.example.test``): the web server of a make-believe MCP client.

Client ID metadata documents (MCP 2025-11-25, draft-ietf-oauth-client-id-metadata-document)
live at the client's own https URL, and the authorization server fetches them. Scenarios need
such URLs whose answers they control byte for byte (a mismatched ``client_id``, a wrong content
type, an oversized body, cache headers), so this mock serves whatever was put at a path, and
nothing else. Documents are put with :meth:`StaticDocuments.put` or the admin API::

    POST /_harness/tenants/apps/documents
         {"path": "/cimd/app.json", "document": {...}}            -> 201 {"url": ...}
         (or "body": "<raw text>", "content_type": ..., "headers": {...}, "status": 200)
    GET  /_harness/tenants/apps/documents                        -> {"documents": [paths]}
    GET  /_harness/tenants/apps/raw/<path>                       -> the document itself

``raw`` serves a document on the sandbox server's own loopback address, which is how a
scenario shows that a broker fetches client metadata from a private address (it must not).
``reset`` forgets every document.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from mocks.core.admin import admin_params, bad_request, method_not_allowed, not_found
from mocks.core.http import json_response

if TYPE_CHECKING:
    from mocks.core.server import SandboxContext

DEFAULT_HOST = "apps.example.test"
MAX_DOCUMENT_BYTES = 1024 * 1024  # room for an "oversized document" case, not for abuse


@dataclass(frozen=True)
class Document:
    """What one path answers: status, content type, extra headers and the exact body."""

    body: bytes
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        return Response(
            self.body,
            status=self.status,
            headers={**self.headers, "Content-Type": self.content_type},
        )


class StaticDocuments:
    """The mock service (``MockService`` and ``AdministeredService``) of one static host."""

    name = "apps"

    def __init__(self, context: SandboxContext, host: str = DEFAULT_HOST) -> None:
        self.context = context
        self.host = host
        self._documents: dict[str, Document] = {}
        self._lock = threading.Lock()

    @property
    def hosts(self) -> Iterable[str]:
        return (self.host,)

    @property
    def url(self) -> str:
        """Base URL of the host in the sandbox's scheme (``https://`` in TLS mode)."""
        return self.context.url_for(self.host)

    # -- Python API ------------------------------------------------------------------------
    def put(
        self,
        path: str,
        document: Any = None,
        *,
        body: str | bytes | None = None,
        content_type: str = "application/json",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve ``document`` (JSON-encoded) or the raw ``body`` at ``path``; its URL."""
        if not path.startswith("/") or "?" in path or "#" in path:
            raise ValueError("path must start with '/' and carry no query or fragment")
        if body is None:
            raw = json.dumps(document).encode()
        else:
            raw = body.encode() if isinstance(body, str) else body
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"documents are limited to {MAX_DOCUMENT_BYTES} bytes")
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        with self._lock:
            self._documents[path] = Document(raw, content_type, status, dict(headers or {}))
        return self.url + path

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._documents)

    def reset(self) -> None:
        with self._lock:
            self._documents.clear()

    # -- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed("GET, HEAD")
        return self._serve(request.path)

    def _serve(self, path: str) -> Response:
        with self._lock:
            document = self._documents.get(path)
        if document is None:
            return not_found(f"no document at {path}")
        return document.response()

    # -- admin API -----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"host": self.host, "url": self.url, "documents": self.paths()}

    def admin(self, request: Request, path: str) -> Response:
        if path.startswith("raw/"):
            return self._serve("/" + path[len("raw/") :])
        if path != "documents":
            return not_found(f"no apps admin endpoint {path!r}")
        if request.method == "GET":
            return json_response({"documents": self.paths()})
        if request.method != "POST":
            return method_not_allowed("GET, POST")
        params = admin_params(request) if request.mimetype == "application/json" else None
        if params is None:
            return bad_request("POST a JSON object: path, and document or body")
        return self._put(params)

    def _put(self, params: dict[str, Any]) -> Response:
        path = params.get("path")
        body = params.get("body")
        headers = params.get("headers", {})
        if not isinstance(path, str):
            return bad_request("'path' must be a string")
        if ("document" in params) == (body is not None):
            return bad_request("give exactly one of 'document' (JSON) and 'body' (text)")
        if body is not None and not isinstance(body, str):
            return bad_request("'body' must be a string")
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            return bad_request("'headers' must be an object of strings")
        content_type = params.get("content_type", "application/json")
        status = params.get("status", 200)
        if (
            not isinstance(content_type, str)
            or isinstance(status, bool)
            or not isinstance(status, int)
        ):
            return bad_request("'content_type' must be a string and 'status' an integer")
        try:
            url = self.put(
                path,
                params.get("document"),
                body=body,
                content_type=content_type,
                status=status,
                headers=headers,
            )
        except ValueError as exc:
            return bad_request(str(exc))
        return json_response({"path": path, "url": url}, 201)
