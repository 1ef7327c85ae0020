"""The MCP client the harness plays against a broker, over real HTTP.

It does what Claude, Cursor or the MCP SDK do: dynamic client registration (RFC 7591), an
authorization request with PKCE S256 and a ``resource`` indicator (RFC 8707), the user's
login at the IdP through its HTML form, the code redemption, and refresh-token grants that ask
for a token per resource. Broker hosts are reached directly; sandbox hosts (``*.test``) through
the sandbox server as an HTTP proxy, as a browser or client would reach them over the network.
"""

from __future__ import annotations

import functools
import secrets
import ssl
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from harness.evidence import EvidenceRecorder

REDIRECT_URI = "http://127.0.0.1:53682/callback"


class FlowError(Exception):
    """The broker (or IdP) did not let a client flow proceed; a conformance failure."""


@dataclass
class ClientRegistration:
    client_id: str
    redirect_uri: str
    client_secret: str | None = None


@dataclass
class Session:
    """A user's grant at the broker, as the MCP client holds it."""

    user: str
    client: ClientRegistration
    refresh_token: str | None = None
    tokens: list[dict[str, Any]] = field(default_factory=list)


class _FormParser(HTMLParser):
    """Finds the first form of a page with its action, inputs and named submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}
        #: (name, value) of every named submit button, in page order.
        self.buttons: list[tuple[str, str]] = []
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done:
            self._in_form = True
            self.action = attributes.get("action", "")
        elif not self._in_form or not attributes.get("name"):
            return
        elif tag == "button" or (tag == "input" and attributes.get("type") == "submit"):
            if attributes.get("type", "submit") == "submit":
                self.buttons.append((attributes["name"], attributes.get("value", "")))
        elif tag == "input":
            self.inputs[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def parse_login_form(html: str) -> tuple[str, dict[str, str]]:
    parser = _FormParser()
    parser.feed(html)
    if parser.action is None:
        raise FlowError("the IdP login page has no form")
    return parser.action, parser.inputs


def parse_form(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    if parser.action is None:
        raise FlowError("the page has no form")
    return parser


#: Submit-button values a consent page uses for yes and no (the broker's, and common ones).
APPROVE_VALUES = ("approve", "allow", "accept", "consent", "yes", "true")
DENY_VALUES = ("deny", "reject", "cancel", "decline", "no", "false")


@dataclass
class Authorization:
    """The authorization step as the client saw it.

    ``query`` is the authorization response (the redirect to the client), ``consent_shown``
    whether a consent page of the broker came before any request to another host (the MCP
    confused-deputy rule: the broker asks before it forwards to the IdP), ``hosts`` every host
    the browser visited, in order.
    """

    query: dict[str, str]
    state: str
    code_verifier: str | None
    redirect_uri: str
    client_id: str
    consent_shown: bool = False
    hosts: list[str] = field(default_factory=list)
    #: Hidden values of the consent forms submitted (secrets for the report's redaction).
    consent_tickets: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return self.query.get("error")

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": dict(self.query),
            **{k: v for k, v in self.query.items()},
            "state_sent": self.state,
            "code_verifier": self.code_verifier,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "consent_shown": self.consent_shown,
            "hosts": list(self.hosts),
        }


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """One verifying context per CA file, shared by every scenario's clients.

    Loading the system or certifi bundle costs ~60 ms per context and a scenario needs two
    (the client and its proxy mount): it was a third of a full run's time. A context is safe
    to share between clients and threads once configured.
    """
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    return httpx.create_ssl_context()


def make_http_client(proxy_url: str, ca_bundle: str | None = None) -> httpx.Client:
    """Direct for the broker (loopback), through the sandbox proxy for ``*.test`` hosts.

    With a TLS sandbox, ``ca_bundle`` is its CA: the sandbox hosts are trusted and nothing else
    changes, as for a browser whose administrator installed a corporate CA.
    """
    verify = _ssl_context(ca_bundle)
    return httpx.Client(
        trust_env=False,
        follow_redirects=False,
        timeout=15.0,
        verify=verify,
        mounts={"all://*.test": httpx.HTTPTransport(proxy=proxy_url, verify=verify)},
    )


class McpClient:
    """One MCP client's view of a broker; every request goes through the evidence recorder."""

    def __init__(self, broker_url: str, recorder: EvidenceRecorder) -> None:
        self.broker_url = broker_url.rstrip("/")
        self.http = recorder
        self._metadata: dict[str, Any] | None = None

    # -- discovery and registration -----------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.broker_url}/.well-known/oauth-authorization-server"
            response = self.http.request("GET", url)
            if response.status_code != 200:
                raise FlowError(f"authorization server metadata: HTTP {response.status_code}")
            self._metadata = _json_object(response, "authorization server metadata")
        return self._metadata

    def endpoint(self, name: str, default_path: str) -> str:
        value = self.metadata().get(name)
        return value if isinstance(value, str) and value else f"{self.broker_url}{default_path}"

    def register(self, redirect_uri: str = REDIRECT_URI) -> ClientRegistration:
        body = {
            "client_name": "mcp-broker-harness",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        response = self.http.request(
            "POST", self.endpoint("registration_endpoint", "/register"), json=body
        )
        if response.status_code not in (200, 201):
            raise FlowError(f"client registration: HTTP {response.status_code}")
        data = _json_object(response, "client registration")
        client_id = data.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise FlowError("client registration: no client_id in the response")
        return ClientRegistration(client_id, redirect_uri, data.get("client_secret"))

    # -- authorization code flow --------------------------------------------------------
    def login(
        self, client: ClientRegistration, user: str, password: str, resource: str
    ) -> tuple[httpx.Response, Session]:
        """Authorize at the broker, sign in at the IdP's form, redeem the code."""
        authorization = self.authorize(client, user, password, resource)
        if authorization.error:
            raise FlowError(
                f"authorization failed: {authorization.error}: "
                f"{authorization.query.get('error_description', '')}"
            )
        return self.redeem(client, authorization, resource, user)

    def authorize(
        self,
        client: ClientRegistration,
        user: str,
        password: str,
        resource: str,
        *,
        pkce: bool = True,
        consent: str = "approve",
        scope: str | None = None,
    ) -> Authorization:
        """Run the authorization request to its response at the client's redirect URI.

        ``pkce=False`` sends no ``code_challenge`` (a broker must refuse that, PK-02);
        ``consent`` is what the user answers on a consent page: ``approve`` or ``deny``. An
        error response is returned, not raised; a missing or wrong ``state`` is a FlowError.
        """
        verifier = secrets.token_urlsafe(48) if pkce else None
        state = secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "state": state,
            "resource": resource,
        }
        if scope:
            params["scope"] = scope
        if verifier is not None:
            params["code_challenge"] = create_s256_code_challenge(verifier)
            params["code_challenge_method"] = "S256"
        authorization = Authorization({}, state, verifier, client.redirect_uri, client.client_id)
        authorize = self.endpoint("authorization_endpoint", "/authorize")
        response = self.http.request("GET", f"{authorize}?{urlencode(params)}")
        location = self._follow_to_client(
            response, user, password, client.redirect_uri, consent, authorization
        )
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        authorization.query = query
        if query.get("state") != state:
            raise FlowError("the authorization response does not carry the request's state")
        if not authorization.error and not query.get("code"):
            raise FlowError("the authorization response has no code")
        return authorization

    def redeem(
        self,
        client: ClientRegistration,
        authorization: Authorization,
        resource: str,
        user: str = "",
    ) -> tuple[httpx.Response, Session]:
        """The authorization_code grant for a successful authorization."""
        data = {
            "grant_type": "authorization_code",
            "code": authorization.query.get("code", ""),
            "redirect_uri": client.redirect_uri,
            "client_id": client.client_id,
            "resource": resource,
        }
        if authorization.code_verifier is not None:
            data["code_verifier"] = authorization.code_verifier
        token = self.http.request("POST", self.endpoint("token_endpoint", "/token"), data=data)
        session = Session(user=user, client=client)
        self._remember(session, token)
        return token, session

    def _follow_to_client(
        self,
        response: httpx.Response,
        user: str,
        password: str,
        redirect_uri: str,
        consent: str = "approve",
        seen: Authorization | None = None,
    ) -> str:
        """Follow redirects, the broker's consent page and the IdP's login form until a
        redirect targets the client."""
        client_prefix = redirect_uri.split("?")[0]
        broker_host = urlsplit(self.broker_url).netloc
        left_broker = False
        for _ in range(12):
            host = response.request.url.netloc.decode("ascii")
            if seen is not None:
                seen.hosts.append(host)
            left_broker = left_broker or host != broker_host
            if response.status_code in (301, 302, 303, 307, 308):
                location = urljoin(str(response.request.url), response.headers.get("location", ""))
                if location.startswith(client_prefix):
                    return location
                response = self.http.request("GET", location)
                continue
            if response.status_code == 200 and "text/html" in response.headers.get(
                "content-type", ""
            ):
                form = parse_form(response.text)
                target = urljoin(str(response.request.url), form.action or "")
                inputs = dict(form.inputs)
                if "password" in inputs or "username" in inputs:
                    inputs.update({"username": user, "password": password})
                    response = self.http.request("POST", target, data=inputs)
                    if response.status_code == 200:
                        raise FlowError("the IdP rejected the login (the form came back)")
                    continue
                button = _consent_button(form.buttons, consent)
                if button is None:
                    raise FlowError(
                        f"a page at {host} is neither a login form nor a consent form "
                        f"with an {consent} button"
                    )
                if seen is not None:
                    seen.consent_shown = seen.consent_shown or (
                        host == broker_host and not left_broker
                    )
                    seen.consent_tickets.extend(v for v in inputs.values() if len(v) >= 16)
                inputs[button[0]] = button[1]
                response = self.http.request("POST", target, data=inputs)
                continue
            raise FlowError(
                f"authorization flow stopped at {response.request.url.host}"
                f"{response.request.url.path}: HTTP {response.status_code}"
            )
        raise FlowError("too many redirects in the authorization flow")

    # -- tokens per resource -------------------------------------------------------------
    def token_for(self, session: Session, resource: str) -> httpx.Response:
        """Refresh-token grant asking for a token for ``resource`` (RFC 8707 §2.2)."""
        if session.refresh_token is None:
            raise FlowError("the broker issued no refresh token at login")
        response = self.http.request(
            "POST",
            self.endpoint("token_endpoint", "/token"),
            data={
                "grant_type": "refresh_token",
                "refresh_token": session.refresh_token,
                "client_id": session.client.client_id,
                "resource": resource,
            },
        )
        self._remember(session, response)
        return response

    @staticmethod
    def _remember(session: Session, response: httpx.Response) -> None:
        if response.status_code != 200:
            return
        try:
            data = response.json()
        except ValueError:
            return
        if isinstance(data, dict):
            session.tokens.append(data)
            if isinstance(data.get("refresh_token"), str):
                session.refresh_token = data["refresh_token"]

    # -- MCP ---------------------------------------------------------------------------
    def mcp_call(
        self,
        url: str,
        token: str,
        method: str,
        params: dict[str, Any] | None,
        request_id: int,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            body["params"] = params
        return self.http.request(
            "POST",
            url,
            json=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
                **(headers or {}),
            },
        )


def consent_tickets(html: str) -> list[str]:
    """Hidden values of a consent page's form: CSRF tickets, to be masked in reports."""
    try:
        form = parse_form(html)
    except FlowError:
        return []
    if any(name in form.inputs for name in ("password", "username")):
        return []
    return [v for v in form.inputs.values() if len(v) >= 16]


def _consent_button(buttons: list[tuple[str, str]], decision: str) -> tuple[str, str] | None:
    values = APPROVE_VALUES if decision == "approve" else DENY_VALUES
    for name, value in buttons:
        if value.lower() in values:
            return name, value
    return None


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise FlowError(f"{what}: the body is not JSON") from exc
    if not isinstance(data, dict):
        raise FlowError(f"{what}: the body is not a JSON object")
    return data
