"""HTTP handlers of the mock Snowflake accounts (thin: requests in, model calls, JSON out).

Session endpoints speak Snowflake's GS envelope: **HTTP 200** with ``success``, ``code`` (a
string) and ``message`` even for a rejected login (§B.3, §E.6: a 401 would make the real
connector report "session expired"). Session calls authenticate with
``Authorization: Snowflake Token="…"``. OAuth endpoints speak RFC 6749 (Snowflake's own error
body is unverified, §F). The MCP endpoint lives in :mod:`mocks.snowflake.mcp`, runtime control
in :mod:`mocks.snowflake.admin`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from mocks.core import sts_variants as bad
from mocks.core.http import (
    OAuthFailure,
    form_params,
    json_response,
    oauth_error,
    repeated_params,
    token_response,
)
from mocks.core.jose import KeySet
from mocks.core.seed import IdSource
from mocks.core.server import host_of
from mocks.snowflake import admin, mcp, oauth, pages, sql
from mocks.snowflake.models import (
    PUBLIC,
    Account,
    GsError,
    OAuthClientIntegration,
    QueryRecord,
    Session,
    SnowflakeCloud,
    ident,
)
from mocks.snowflake.tokens import (
    ACCESS_TOKEN_TYPE,
    SUBJECT_TOKEN_TYPES,
    TOKEN_EXCHANGE,
    Identity,
    TokenAuthority,
    check_self_issued,
    role_not_authorized,
)
from mocks.snowflake.urls import url_map

SESSION_GONE = ("390111", "Session no longer exists.  New login required to access the service.")
SESSION_EXPIRED = ("390112", "Authentication token has expired.  The user must authenticate again.")
MASTER_EXPIRED = ("390114", "Authentication token has expired.  The user must authenticate again.")
BAD_REQUEST = "390400"
BAD_PASSWORD = ("390100", "Incorrect username or password was specified.")
_SNOWFLAKE_TOKEN = re.compile(r'^\s*Snowflake\s+Token="([^"]*)"\s*$', re.I)
EXCHANGE_SINGLE = (
    "grant_type",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "scope",
    "actor_token",
    "actor_token_type",
)


# -- GS envelope ---------------------------------------------------------------------------------
def gs_ok(data: Any) -> Response:
    return json_response({"data": data, "code": None, "message": None, "success": True})


def gs_error(
    code: str, message: str, data: Any = None, *, incident: IdSource | None = None
) -> Response:
    """``success: false`` with HTTP 200; login errors carry Snowflake's ``[<incident id>]``.

    The incident id (13 digits) is drawn from ``incident``, the sandbox's id source, so a
    seeded sandbox replays it.
    """
    if incident is not None:
        message = f"{message} [{_incident_number(incident)}]"
    return json_response(
        {"data": data, "code": code, "message": message, "success": False, "headers": None}
    )


def _incident_number(ids: IdSource) -> int:
    """Uniform in ``[10**12, 10**13)``, like ``secrets.randbelow(9 * 10**12) + 10**12``."""
    span = 9 * 10**12
    limit = 2**48 - 2**48 % span  # rejection sampling: no modulo bias
    while True:
        value = int.from_bytes(ids.token_bytes(6), "big")
        if value < limit:
            return value % span + 10**12


def _post_form(request: Request) -> MultiDict[str, str] | Response:
    """The form of a POST to an OAuth endpoint (token, exchange), or the error to answer."""
    if request.method != "POST":
        return oauth_error("invalid_request", "Use POST.", 405, {"Allow": "POST"})
    form = form_params(request)
    if form is None:
        return oauth_error(
            "invalid_request", "The request body must be application/x-www-form-urlencoded."
        )
    return form


def json_body(request: Request) -> dict[str, Any] | None:
    """The JSON object body (gzip-decoded when the connector compressed it), else ``None``."""
    raw = request.get_data()
    try:
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        data = json.loads(raw or b"{}")
    except (OSError, ValueError, EOFError):
        return None
    return data if isinstance(data, dict) else None


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``(client_id, secret)`` of an ``Authorization: Basic`` header (RFC 6749 §2.3.1 encoding)."""
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    raw_id, sep, raw_secret = decoded.partition(":")
    return (unquote(raw_id), unquote(raw_secret)) if sep else None


class SnowflakeService:
    """Every account of the mock Snowflake as sandbox virtual hosts (Administered, Keyed)."""

    name = "snowflake"

    def __init__(self, cloud: SnowflakeCloud) -> None:
        self.cloud = cloud
        self.authority = TokenAuthority(cloud.context)

    @property
    def hosts(self) -> Iterable[str]:
        return self.cloud.hosts()

    def reset(self) -> None:
        self.cloud.reset()
        self.authority.reset()

    def keyset(self, host: str) -> KeySet | None:
        account = self.cloud.by_host(host)
        return account.keys if account is not None else None

    def describe(self) -> dict[str, Any]:
        return admin.describe(self.cloud)

    def admin(self, request: Request, path: str) -> Response:
        return admin.handle(self.cloud, request, path)

    def handle(self, request: Request) -> Response:
        account = self.cloud.by_host(host_of(request))
        if account is None:
            return _not_found(request)
        exchange_path = account.settings.token_exchange_path
        if request.path == exchange_path and exchange_path != "/oauth/token-request":
            return self._exchange(request, account)
        adapter = url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed as exc:
            allowed = ", ".join(exc.valid_methods or ["POST"])
            return json_response(
                {"code": None, "message": "Method not allowed.", "success": False},
                405,
                {"Allow": allowed},
            )
        except NotFound:
            return _not_found(request)
        if endpoint == "mcp":
            return mcp.handle(self.authority, request, account, **args)
        if endpoint == "mcp_metadata":
            return mcp.metadata(request, account, **args)
        response: Response = getattr(self, f"_{endpoint}")(request, account)
        return response

    # -- login and session ---------------------------------------------------------------
    def _login(self, request: Request, account: Account) -> Response:
        body = json_body(request)
        data = body.get("data") if body is not None else None
        if not isinstance(data, dict):
            return gs_error(BAD_REQUEST, "The login request body is not valid JSON.")
        authenticator = str(data.get("AUTHENTICATOR") or "SNOWFLAKE").upper()
        failure = {"nextAction": "RETRY_LOGIN", "authnMethod": authenticator, "signInOptions": {}}
        role = request.args.get("roleName") or None
        try:
            if authenticator == "OAUTH":
                token = data.get("TOKEN")
                if not isinstance(token, str) or not token:
                    raise GsError("390303", "Invalid OAuth access token.")
                identity = self.authority.identify(account, token, requested_role=role)
            elif authenticator == "SNOWFLAKE":
                identity = self._password_login(account, data, role)
            else:
                raise GsError(
                    BAD_REQUEST, f"The authenticator '{authenticator}' is not supported here."
                )
        except GsError as exc:
            return gs_error(exc.code, exc.message, failure, incident=account.context.ids)
        session = self._open_session(account, identity, request.args)
        token, master = self._session_tokens(account, session)
        return gs_ok(
            {
                "masterToken": master,
                "token": token,
                "validityInSeconds": account.settings.session_validity,
                "masterValidityInSeconds": account.settings.master_validity,
                "displayUserName": identity.user.name,
                "serverVersion": sql.SERVER_VERSION,
                "firstLogin": False,
                "remMeToken": None,
                "remMeValidityInSeconds": 0,
                "healthCheckInterval": 45,
                "newClientForUpgrade": None,
                "sessionId": session.session_id,
                "parameters": [],
                "sessionInfo": {
                    "databaseName": session.database,
                    "schemaName": session.schema,
                    "warehouseName": session.warehouse,
                    "roleName": session.role,
                },
                "idToken": None,
                "idTokenValidityInSeconds": 0,
                "responseData": None,
                "mfaToken": None,
                "mfaTokenValidityInSeconds": 0,
            }
        )

    @staticmethod
    def _password_login(account: Account, data: dict[str, Any], role: str | None) -> Identity:
        user = oauth.authenticate(
            account, str(data.get("LOGIN_NAME") or ""), str(data.get("PASSWORD") or "")
        )
        if user is None:
            raise GsError(*BAD_PASSWORD)
        chosen = ident(role) if role else (user.default_role or PUBLIC)
        if chosen not in account.roles or not user.has_role(chosen):
            raise role_not_authorized(chosen)
        return Identity(user, chosen, "PASSWORD", account.now() + account.settings.master_validity)

    @staticmethod
    def _open_session(account: Account, identity: Identity, args: MultiDict[str, str]) -> Session:
        session = Session(
            session_id=account.new_session_id(),
            user=identity.user.name,
            role=identity.role,
            token_jti="",
            master_jti="",
            source=identity.source,
            database=ident(args["databaseName"]) if args.get("databaseName") else None,
            schema=ident(args["schemaName"]) if args.get("schemaName") else None,
            warehouse=ident(args["warehouse"]) if args.get("warehouse") else None,
        )
        with account.lock:
            account.sessions[session.session_id] = session
        return session

    @staticmethod
    def _session_tokens(
        account: Account, session: Session, *, master: bool = True
    ) -> tuple[str, str]:
        token, record = account.issue(
            "session",
            session.user,
            session.role,
            account.settings.session_validity,
            session_id=session.session_id,
        )
        master_token = ""
        with account.lock:
            account.tokens.pop(session.token_jti, None)
            session.token_jti = record.jti
        if master:
            master_token, master_record = account.issue(
                "master",
                session.user,
                session.role,
                account.settings.master_validity,
                session_id=session.session_id,
            )
            session.master_jti = master_record.jti
        return token, master_token

    def _session_of(
        self, request: Request, account: Account, kind: str = "session"
    ) -> Session | Response:
        """The live session of a ``Snowflake Token="…"`` header, else the GS error to send."""
        match = _SNOWFLAKE_TOKEN.match(request.headers.get("Authorization", ""))
        gone = gs_error(*SESSION_GONE)
        if match is None:
            return gone
        try:
            record = check_self_issued(account, match.group(1), (kind,))  # type: ignore[arg-type]
        except GsError as exc:
            if exc.code == "390318":
                return gs_error(*(SESSION_EXPIRED if kind == "session" else MASTER_EXPIRED))
            return gone
        with account.lock:
            session = account.sessions.get(record.session_id or -1)
        if session is None or account.user(session.user) is None:
            return gone
        return session

    def _renew(self, request: Request, account: Account) -> Response:
        """Master token → new session token, as the connector does on ``390112``."""
        session = self._session_of(request, account, "master")
        if isinstance(session, Response):
            return session
        body = json_body(request) or {}
        if body.get("requestType", "RENEW") != "RENEW":
            return gs_error(BAD_REQUEST, "Unsupported requestType.")
        token, _ = self._session_tokens(account, session, master=False)
        master = _SNOWFLAKE_TOKEN.match(request.headers["Authorization"])
        assert master is not None
        return gs_ok(
            {
                "sessionToken": token,
                "validityInSecondsST": account.settings.session_validity,
                "masterToken": master.group(1),
                "validityInSecondsMT": account.settings.master_validity,
                "sessionId": session.session_id,
            }
        )

    def _session(self, request: Request, account: Account) -> Response:
        if request.args.get("delete", "").lower() != "true":
            return gs_error(BAD_REQUEST, "Only POST /session?delete=true is supported.")
        session = self._session_of(request, account)
        if isinstance(session, Response):
            return session
        with account.lock:
            account.sessions.pop(session.session_id, None)
            account.tokens.pop(session.token_jti, None)
            account.tokens.pop(session.master_jti, None)
        return json_response({"code": 200, "message": "done", "success": True})

    def _telemetry(self, request: Request, account: Account) -> Response:
        session = self._session_of(request, account)
        if isinstance(session, Response):
            return session
        return json_response(
            {"data": "Log Received", "code": None, "message": None, "success": True}
        )

    def _query(self, request: Request, account: Account) -> Response:
        session = self._session_of(request, account)
        if isinstance(session, Response):
            return session
        body = json_body(request)
        statement = body.get("sqlText") if body is not None else None
        if not isinstance(statement, str) or not statement.strip():
            return gs_error("000900", "SQL compilation error:\nEmpty SQL statement.")
        query_id = str(account.context.ids.uuid4())
        user = account.user(session.user)
        assert user is not None
        record = QueryRecord(
            query_id, session.user, session.role, statement, "SUCCESS", account.now(),
            client="SESSION", session_id=session.session_id,
        )  # fmt: skip
        try:
            if not user.has_role(session.role):
                raise sql.SqlError(
                    "390189", "08004", f"Role '{session.role}' is no longer granted to the user."
                )
            result = sql.run(statement, user=session.user, role=session.role, account=account.name)
        except sql.SqlError as exc:
            record.status, record.error_code = "FAILED_WITH_ERROR", exc.code
            account.record_query(record)
            return json_response(
                {
                    "data": {
                        "internalError": False,
                        "errorCode": exc.code,
                        "age": 0,
                        "sqlState": exc.sql_state,
                        "queryId": query_id,
                        "line": -1,
                        "pos": -1,
                        "type": "COMPILATION",
                    },
                    "code": exc.code,
                    "message": exc.message,
                    "success": False,
                    "headers": None,
                }
            )
        account.record_query(record)
        return gs_ok(
            {
                "parameters": [],
                "rowtype": [c.rowtype() for c in result.columns],
                "rowset": result.rows,
                "total": len(result.rows),
                "returned": len(result.rows),
                "queryId": query_id,
                "databaseProvider": None,
                "finalDatabaseName": session.database,
                "finalSchemaName": session.schema,
                "finalWarehouseName": session.warehouse,
                "finalRoleName": session.role,
                "numberOfBinds": 0,
                "arrayBindSupported": False,
                "statementTypeId": 4096,
                "version": 1,
                "sendResultTime": int(account.now() * 1000),
                "queryResultFormat": "json",
            }
        )

    # -- Snowflake OAuth -----------------------------------------------------------------
    def _authorize(self, request: Request, account: Account) -> Response:
        if request.method == "POST" and "txn" in request.form:
            return self._login_form(request, account)
        params = request.args if request.method == "GET" else request.form
        client = account.oauth_client(params.get("client_id", ""))
        if client is None:
            return pages.error_page(400, "invalid_client", "The client_id is not valid.")
        redirect_uri = params.get("redirect_uri") or client.redirect_uri
        if not oauth.redirect_allowed(client, redirect_uri):
            return pages.error_page(
                400, "invalid_request", "The redirect_uri does not match the integration's."
            )
        state = params.get("state")
        try:
            request_ = oauth.validate_authorize(account, client, params)
        except OAuthFailure as exc:
            return pages.redirect(
                redirect_uri,
                {"error": exc.error, "error_description": exc.description, "state": state},
            )
        txn = oauth.start(account, request_)
        if account.settings.auto_approve:
            user = account.find_user("LOGIN_NAME", account.settings.auto_approve)
            if user is not None and not user.disabled:
                return self._approve(account, txn, user)
        return pages.login_page(f"{account.url}/oauth/authorize", txn)

    def _login_form(self, request: Request, account: Account) -> Response:
        txn = request.form.get("txn", "")
        if oauth.pending(account, txn) is None:
            return pages.error_page(400, "invalid_request", "The sign-in transaction has expired.")
        username = request.form.get("username", "")
        user = oauth.authenticate(account, username, request.form.get("password", ""))
        if user is None:
            return pages.login_page(
                f"{account.url}/oauth/authorize",
                txn,
                username=username,
                error=BAD_PASSWORD[1],
                status=401,
            )
        return self._approve(account, txn, user)

    @staticmethod
    def _approve(account: Account, txn: str, user: Any) -> Response:
        request_ = oauth.pending(account, txn)
        assert request_ is not None
        try:
            code, request_ = oauth.issue_code(account, txn, user)
        except OAuthFailure as exc:
            return pages.redirect(
                request_.redirect_uri,
                {"error": exc.error, "error_description": exc.description, "state": request_.state},
            )
        return pages.redirect(request_.redirect_uri, {"code": code, "state": request_.state})

    def _token_request(self, request: Request, account: Account) -> Response:
        form = _post_form(request)
        if isinstance(form, Response):
            return form
        if repeated_params(form):
            return oauth_error("invalid_request", "A parameter was repeated.")
        grant = form.get("grant_type")
        if (
            grant == TOKEN_EXCHANGE
            and account.settings.token_exchange_path == "/oauth/token-request"
        ):
            return self._exchange(request, account)
        try:
            client = self._client(request, account, form, required=True)
            assert client is not None
            if grant == "authorization_code":
                body = oauth.redeem_code(account, client, form)
            elif grant == "refresh_token":
                body = oauth.refresh(account, client, form)
            elif not grant:
                raise OAuthFailure("invalid_request", "The parameter 'grant_type' is missing.")
            else:
                raise OAuthFailure("unsupported_grant_type", f"Unsupported grant type '{grant}'.")
        except OAuthFailure as exc:
            return self._oauth_failure(request, account, exc)
        return token_response(body)

    @staticmethod
    def _oauth_failure(request: Request, account: Account, exc: OAuthFailure) -> Response:
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = f'Basic realm="{account.host}"'
        return oauth_error(exc.error, exc.description, exc.status, headers)

    @staticmethod
    def _client(
        request: Request, account: Account, form: MultiDict[str, str], *, required: bool
    ) -> OAuthClientIntegration | None:
        """HTTP Basic client authentication, the only method Snowflake OAuth accepts (§B.2)."""
        header = request.headers.get("Authorization", "")
        if "client_secret" in form:
            raise OAuthFailure(
                "invalid_client", "Send client credentials with HTTP Basic authentication.", 401
            )
        if not header:
            if required:
                raise OAuthFailure("invalid_client", "Client authentication is required.", 401)
            return None
        credentials = basic_credentials(header)
        client = account.oauth_client(credentials[0]) if credentials else None
        if (
            credentials is None
            or client is None
            or not secrets.compare_digest(credentials[1].encode(), client.client_secret.encode())
        ):
            raise OAuthFailure("invalid_client", "Client authentication failed.", 401)
        return client

    # -- RFC 8693 ------------------------------------------------------------------------
    def _exchange(self, request: Request, account: Account) -> Response:
        variant = bad.variant(account.context, account.host)  # a known-bad mock (selftest)
        response = self._exchange_answer(request, account, variant)
        if variant == "401-not-400" and response.status_code == 400:
            response.status_code = 401
        if variant == "no-cache-control":
            bad.strip_no_store(response)
        return response

    def _exchange_answer(self, request: Request, account: Account, variant: str | None) -> Response:
        params: MultiDict[str, str] | Response
        if request.method == "GET" and variant == "accepts-get":
            params = request.args  # the known-bad mock reads the query string
        else:
            params = _post_form(request)
        if isinstance(params, Response):
            return params
        repeated = repeated_params(params, EXCHANGE_SINGLE)
        if repeated:
            return oauth_error("invalid_request", f"The parameter '{repeated[0]}' was repeated.")
        form = {k: v for k, v in params.items() if v != ""}
        if form.get("grant_type") != TOKEN_EXCHANGE:
            if "grant_type" not in form:
                return oauth_error("invalid_request", "The parameter 'grant_type' is missing.")
            return oauth_error("unsupported_grant_type", "Only token exchange is served here.")
        for name in ("subject_token", "subject_token_type"):
            if name not in form:
                return oauth_error("invalid_request", f"The parameter '{name}' is missing.")
        if form["subject_token_type"] not in SUBJECT_TOKEN_TYPES:
            return oauth_error("invalid_request", "The subject_token_type is not supported.")
        if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            return oauth_error("invalid_request", "The requested_token_type is not supported.")
        if "actor_token" in form or "actor_token_type" in form:
            return oauth_error("invalid_request", "Actor tokens are not supported.")
        try:
            client = self._client(
                request,
                account,
                params,
                required=account.settings.exchange_requires_client_auth,
            )
        except OAuthFailure as exc:
            return self._oauth_failure(request, account, exc)
        form.pop("client_id", None)
        if client is not None:
            form["client_id"] = client.client_id
        try:
            body = self.authority.exchange(account, form)
        except bad.MalformedTokenCrash:
            return bad.crash_page()
        except GsError as exc:
            message = exc.message
            if variant == "leaks-subject-token":
                message = bad.leak(message, form.get("subject_token"))
            return oauth_error(exc.oauth_error, message, 400)
        if variant == "no-issued-token-type":
            body.pop("issued_token_type", None)
        return token_response(body)


def _not_found(request: Request) -> Response:
    return json_response(
        {
            "data": None,
            "code": None,
            "message": f"No such resource: {request.method} {request.path}",
            "success": False,
        },
        404,
    )
