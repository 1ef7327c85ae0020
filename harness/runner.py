"""Runs one scenario against a broker and the sandbox, producing a :class:`ScenarioResult`.

Steps are client actions (``register``, ``login``, ``token``, ``mcp``), admin actions
(``clock``, ``okta``, ``mark``) and expectations (``expect``, ``expect_journal``,
``expect_query_history``, and the ``expect`` block of an action). Every expectation is one
check with a stable ID. A broker that stops a client flow (``FlowError``) fails the scenario
with a FLOW check; an exception inside the harness makes it ERROR (exit code 3), so a harness
bug is never reported as a broker defect. ``finally`` steps always run.
"""

from __future__ import annotations

import copy
import json
import shlex
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from harness.client import (
    REDIRECT_URI,
    ClientRegistration,
    FlowError,
    McpClient,
    Session,
    consent_tickets,
    make_http_client,
)
from harness.coverage_gate import declared_checks
from harness.evidence import EvidenceRecorder, redact_url
from harness.reproduce import curl_command
from harness.results import CheckResult, ScenarioResult, Status, TokenRecord
from harness.scenario import Scenario
from harness.targets import Target
from harness.templating import TemplateError, render
from mocks import defaults
from mocks.core.faults import FaultError
from mocks.core.redact import decode_jwt_unverified, fingerprint, mask, redact_text
from mocks.sandbox import Sandbox

LEVEL_ON_FAILURE = {"MUST": Status.FAILED, "SHOULD": Status.WARNING, "MAY": Status.INFO}


class ScenarioAbort(Exception):
    """Stop the remaining steps (the failure is already recorded as a check)."""


#: The mock workspaces' managed MCP endpoint of each Databricks upstream (direct ``mcp`` steps).
UPSTREAM_MCP_PATHS = {
    "databricks-sql": "/api/2.0/mcp/sql",
    "databricks-genie": "/api/2.0/mcp/genie",
    "databricks-vector-search": "/api/2.0/mcp/vector-search/main/default",
    "databricks-functions": "/api/2.0/mcp/functions/main/default",
}


def user_login(name: str) -> str:
    """``alice`` → ``alice@example.com`` for the sandbox users; logins pass through."""
    for login, *_ in defaults.USERS:
        if name == login or name == login.split("@")[0]:
            return login
    return name


class ScenarioRunner:
    """Runs scenarios against one target; the sandbox and target are reset before each."""

    def __init__(self, sandbox: Sandbox, target: Target) -> None:
        self.sandbox = sandbox
        self.target = target

    def run(self, scenario: Scenario) -> ScenarioResult:
        result = ScenarioResult(
            id=scenario.id,
            name=scenario.name,
            file=scenario.file,
            line=scenario.line,
            requirements=scenario.requirements,
            description=scenario.description,
            reproduce=f"mcp-harness run -k {shlex.quote(scenario.id)} "
            f"--broker {shlex.quote(self.target.spec)}",
            declared_checks=declared_checks(scenario),
        )
        started = time.perf_counter()
        if "clock" in scenario.requires and not self.target.shares_clock:
            return _skipped(
                result,
                "CLOCK-01",
                "scenario needs the shared sandbox clock",
                f"broker {self.target.spec} runs in another process and cannot share the "
                "sandbox clock",
            )
        if "audit" in scenario.requires and self.target.audit_records() is None:
            return _skipped(
                result,
                "AUDIT-01",
                "scenario reads the broker's audit log",
                f"broker {self.target.spec} keeps its audit log in its own process; the "
                "harness reads the audit records of the reference broker only",
            )
        if scenario.broker_settings and not getattr(self.target, "can_configure", False):
            return _skipped(
                result,
                "CONFIG-01",
                "scenario needs broker settings the harness can apply",
                f"broker {self.target.spec} is configured by its owner; the scenario needs "
                f"{_settings_text(scenario.broker_settings)}",
            )
        try:
            if scenario.broker_settings:
                self.target.configure(scenario.broker_settings)
            self.sandbox.reset()
            self.target.reset()
        except Exception as exc:
            result.error = f"could not reset the sandbox or broker: {exc}"
            result.finish()
            return result
        execution = _Execution(self, scenario, result)
        try:
            if "clock" in scenario.requires:
                # Exact lifetimes: only the scenario's clock steps move time (Clock.frozen).
                with self.sandbox.clock.frozen():
                    execution.run()
            else:
                execution.run()
        finally:
            if scenario.broker_settings:
                self.target.restore()
        result.target_log = self.target.drain_log()
        result.duration_s = time.perf_counter() - started
        result.finish()
        return result


def _skipped(result: ScenarioResult, check_id: str, title: str, reason: str) -> ScenarioResult:
    """A scenario the target cannot run: one SKIPPED check carrying the reason (the report's)."""
    result.checks.append(
        CheckResult(id=check_id, title=title, status=Status.SKIPPED, message=reason)
    )
    result.status = Status.SKIPPED
    return result


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted(settings.items()))


class _Execution:
    """The state of one scenario run: saved values, sessions, marks, evidence."""

    def __init__(self, runner: ScenarioRunner, scenario: Scenario, result: ScenarioResult):
        self.sandbox = runner.sandbox
        self.target = runner.target
        self.scenario = scenario
        self.result = result
        ca = str(self.sandbox.ca_bundle) if self.sandbox.ca_bundle else None
        self.recorder = EvidenceRecorder(make_http_client(self.sandbox.proxy_url, ca))
        self.client = McpClient(self.target.url, self.recorder)
        self.sessions: dict[str, Session] = {}
        self.clients: dict[str, ClientRegistration] = {}
        self.marks: dict[str, int] = {"scenario": 0}
        #: Audit record counts at each mark (``expect_audit since``).
        self.audit_marks: dict[str, int] = {}
        self.audit_start = len(runner.target.audit_records() or [])
        self.secrets: set[str] = set()
        self.saved_names: set[str] = set()
        self.step_start_seq = 0
        self.previous_step_seq = 0
        self.context: dict[str, Any] = self._base_context()
        self._rpc_id = 0

    def _base_context(self) -> dict[str, Any]:
        sandbox = self.sandbox
        return {
            "params": self.scenario.params,
            "broker": {"url": self.target.url},
            "okta": {"issuer": sandbox.okta_issuer},
            # the static document host (client ID metadata documents) and the sandbox's own
            # loopback address, where its admin API serves documents too (a private address)
            "apps": {"url": sandbox.apps.url},
            "sandbox": {"url": sandbox.url},
            "workspaces": {
                name: {
                    "url": sandbox.workspace(name).url,
                    "host": sandbox.workspace(name).host,
                    "issuer": sandbox.workspace(name).issuer,
                }
                for name in defaults.WORKSPACES
            },
            "users": {
                login.split("@")[0]: {"login": login, "id": uid}
                for login, uid, *_ in defaults.USERS
            },
        }

    # -- driver ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run_steps(self.scenario.steps, offset=0)
        except ScenarioAbort:
            pass
        except Exception as exc:
            self.result.error = self._harness_error(exc)
        finally:
            # each finally step runs even when an earlier one stopped (cleanup must not hinge
            # on the step before it)
            for i, step in enumerate(self.scenario.finally_steps):
                try:
                    self._run_steps([step], offset=len(self.scenario.steps) + i)
                except ScenarioAbort:
                    pass
                except Exception as exc:
                    self.result.error = self.result.error or self._harness_error(exc)
            self._scrub_exchanges()
            self.result.exchanges = self.recorder.exchanges
            self.recorder.client.close()

    def _scrub_exchanges(self) -> None:
        """Mask every secret the scenario learnt (consent tickets, codes, tokens) wherever it
        still appears whole in the evidence: redaction by field name cannot know a broker's
        HTML form fields."""
        if not self.secrets:
            return
        scrub = self._scrub
        for exchange in self.recorder.exchanges:
            exchange.url = scrub(exchange.url)
            exchange.request_body = scrub(exchange.request_body)
            exchange.response_body = scrub(exchange.response_body)
            exchange.response_headers = scrub(exchange.response_headers)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in sorted(self.secrets, key=len, reverse=True):
                if secret in value:
                    value = value.replace(secret, mask(secret))
            return value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value

    def _reproduce_curl(self, seq: int) -> str:
        """The curl of exchange ``seq`` (C4), from a copy scrubbed of every secret known so
        far: the evidence itself is only scrubbed when the scenario ends. Sandbox hosts go
        through ``"$HARNESS_PROXY"`` (this run's proxy port is gone when the line is read;
        ``mcp-harness serve --env-file`` provides the variable)."""
        exchange = copy.deepcopy(self.recorder.exchanges[seq - 1])
        exchange.url = self._scrub(exchange.url)
        exchange.request_headers = self._scrub(exchange.request_headers)
        exchange.request_body = self._scrub(exchange.request_body)
        return self._show(curl_command(exchange))

    def _harness_error(self, exc: Exception) -> str:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return self._show(
            f"step {self.recorder.step}: harness error {type(exc).__name__}: {exc} "
            f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        )

    def _run_steps(self, steps: list[dict[str, Any]], offset: int) -> None:
        for position, step in enumerate(steps, start=offset + 1):
            self.recorder.step = position
            self.previous_step_seq = self.step_start_seq
            self.step_start_seq = self.sandbox.journal.last_seq
            ((kind, spec),) = step.items()
            handler: Callable[[Any], None] = getattr(self, f"_step_{kind}")
            try:
                handler(spec)
            except TemplateError as exc:
                if exc.root in self.saved_names:
                    # The value should have come from an earlier broker response: that
                    # response was deficient, which is the broker's failure, not the harness's.
                    self._add_check(
                        {"check": "FLOW-01", "title": "values saved from earlier responses exist"},
                        [
                            f"step {position} cannot run: {exc} (an earlier broker response "
                            "did not provide it)"
                        ],
                        "values saved from earlier responses exist",
                    )
                else:
                    self.result.error = f"step {position}: {exc}"
                raise ScenarioAbort() from exc

    # -- helpers -----------------------------------------------------------------------
    def _render(self, value: Any) -> Any:
        self.context["clock"] = {"now": self.sandbox.clock.now()}
        return render(value, self.context)

    def _show(self, value: Any) -> str:
        """Text for a report: known secrets masked, JWTs replaced by fingerprints."""
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, mask(secret))
        return redact_text(text)

    def _remember_secret(self, value: Any) -> None:
        if isinstance(value, str) and len(value) >= 8:
            self.secrets.add(value)

    def _resource(self, spec: dict[str, Any]) -> str:
        if "resource_url" in spec:
            return str(self._render(spec["resource_url"]))
        if "snowflake" in spec:
            upstream = self._render(spec.get("upstream", "snowflake"))
            return f"{self.target.url}/v1/{upstream}/{self._render(spec['snowflake'])}/mcp"
        upstream = self._render(spec.get("upstream", "databricks-sql"))
        segment = self._render(spec.get("workspace", spec.get("segment", "")))
        return f"{self.target.url}/v1/{upstream}/{segment}/mcp"

    def _step_exchanges(self) -> list[int]:
        return [e.seq for e in self.recorder.exchanges if e.step == self.recorder.step]

    def _add_check(
        self,
        spec: dict[str, Any],
        failures: list[str],
        default_title: str,
        *,
        reproduce: bool = True,
    ) -> None:
        level = spec.get("level", "MUST")
        status = Status.PASSED if not failures else LEVEL_ON_FAILURE[level]
        evidence = self._step_exchanges()
        check = CheckResult(
            id=spec.get("check", f"STEP-{self.recorder.step:02d}"),
            title=spec.get("title", default_title),
            status=status,
            message=self._show("; ".join(failures)) if failures else "",
            step=self.recorder.step,
            requirement=spec.get("requirement"),
            evidence=evidence,
        )
        if failures:
            lines = [self.result.reproduce or ""]
            if evidence:
                lines.insert(0, self._reproduce_curl(evidence[-1]))
            check.reproduce = "\n".join(lines)
        self.result.checks.append(check)

    def _flow_failed(self, what: str, exc: Exception, spec: dict[str, Any]) -> None:
        expects = _as_list(spec.get("expect"))
        check_id = expects[0]["check"] if expects else "FLOW-01"
        self._add_check(
            {"check": check_id, "title": f"{what} completes"},
            [f"{what}: {exc}"],
            f"{what} completes",
        )
        raise ScenarioAbort()

    def _save_response(
        self, name: str | None, response: httpx.Response, label: str
    ) -> dict[str, Any]:
        try:
            body = response_json(response)
        except ValueError:
            body = None
        saved: dict[str, Any] = {"status": response.status_code, "json": body}
        token = body.get("access_token") if isinstance(body, dict) else None
        if isinstance(body, dict):
            for key in ("access_token", "refresh_token", "id_token"):
                self._remember_secret(body.get(key))
        if isinstance(token, str):
            decoded = decode_jwt_unverified(token)
            saved.update(
                access_token=token,
                fingerprint=fingerprint(token),
                header=decoded[0] if decoded else None,
                claims=decoded[1] if decoded else None,
            )
            self.result.tokens.append(
                TokenRecord(
                    label=f"{name or label}: access_token",
                    fingerprint=fingerprint(token),
                    source=label,
                    header=decoded[0] if decoded else None,
                    claims=decoded[1] if decoded else None,
                )
            )
        self._record_upstream_lineage(name or label)
        if name:
            self.context[name] = saved
            self.saved_names.add(name)
        return saved

    def _record_upstream_lineage(self, label: str) -> None:
        """Subject tokens the broker sent upstream during this step (token lineage)."""
        for entry in self.sandbox.journal.entries(since=self.step_start_seq):
            claims = entry.jwt_claims.get("form.subject_token")
            if claims is not None and entry.path.endswith("/v1/token"):
                self.result.tokens.append(
                    TokenRecord(
                        label=f"{label}: subject_token sent to {entry.host}",
                        fingerprint=entry.tokens[0] if entry.tokens else "",
                        source=f"broker -> {entry.host}{entry.path} (HTTP {entry.status})",
                        claims=claims,
                    )
                )

    # -- response expectations ---------------------------------------------------------
    def _check_response(self, spec: Any, response: httpx.Response, default_title: str) -> None:
        for expect in _as_list(spec):
            self._add_check(expect, self._response_failures(expect, response), default_title)

    def _response_failures(self, expect: dict[str, Any], response: httpx.Response) -> list[str]:
        failures: list[str] = []
        expect = self._render(expect)
        if "status" in expect:
            wanted = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
            if response.status_code not in wanted:
                failures.append(
                    f"HTTP {response.status_code}, expected {' or '.join(map(str, wanted))}"
                    f"{_error_summary(response)}"
                )
        body: Any = None
        if any(k in expect for k in ("json", "json_absent", "claims")):
            try:
                body = response_json(response)
            except ValueError:
                failures.append("the response body is not JSON")
                return failures
        if "json" in expect:
            failures.extend(_subset_failures(expect["json"], body, "body"))
        for member in expect.get("json_absent", []):
            if isinstance(body, dict) and member in body:
                failures.append(f"body.{member} is present but must not be")
        if "claims" in expect:
            token = body.get("access_token") if isinstance(body, dict) else None
            decoded = decode_jwt_unverified(token) if isinstance(token, str) else None
            if decoded is None:
                failures.append("access_token is not a JWT, cannot check its claims")
            else:
                failures.extend(_subset_failures(expect["claims"], decoded[1], "claims"))
        for name, wanted in expect.get("headers", {}).items():
            actual = response.headers.get(name)
            if actual is None or not _header_matches(actual, str(wanted)):
                failures.append(f"header {name}: {actual!r}, expected {wanted!r}")
        if "location" in expect:
            failures.extend(_location_failures(expect["location"], response))
        for text in expect.get("body_contains", []):
            if str(text) not in response.text:
                failures.append(f"the body does not contain {str(text)!r}")
        for text in expect.get("body_absent", []):
            if str(text) in response.text:
                failures.append(f"the body contains {str(text)!r}")
        return failures

    # -- steps: client actions --------------------------------------------------------
    def _step_register(self, spec: dict[str, Any]) -> None:
        name = spec.get("client", "default")
        redirect_uri = self._render(spec.get("redirect_uri") or REDIRECT_URI)
        if "client_id" in spec:  # a client ID metadata document URL: nothing to register
            client_id = str(self._render(spec["client_id"]))
            self.clients[name] = ClientRegistration(client_id, str(redirect_uri))
            self.context.setdefault("clients", {})[name] = {
                "client_id": client_id,
                "redirect_uri": str(redirect_uri),
            }
            return
        try:
            self.clients[name] = self.client.register(str(redirect_uri))
        except (FlowError, httpx.HTTPError) as exc:
            self._flow_failed("client registration", exc, spec)
        registration = self.clients[name]
        self.context.setdefault("clients", {})[name] = {
            "client_id": registration.client_id,
            "redirect_uri": registration.redirect_uri,
        }

    def _client(self, name: str) -> ClientRegistration:
        if name not in self.clients:
            self._step_register({"client": name})
        return self.clients[name]

    def _step_login(self, spec: dict[str, Any]) -> None:
        """Authorize (consent page, IdP login) and redeem the code.

        ``pkce: false`` sends no challenge; ``consent: deny`` answers the broker's consent page
        with Deny; ``expect_authorization`` checks the authorization response itself (query
        parameters, whether the consent page came first). An authorization error with
        ``expect_authorization`` ends the step after the checks (nothing to redeem); without
        it, it is a FLOW failure as before. ``redeem: false`` stops after the authorization
        response (saved as ``<save>.authorization``: ``code``, ``code_verifier``, …) so later
        ``http`` steps can redeem the code themselves.
        """
        login = user_login(str(self._render(spec["user"])))
        password = str(self._render(spec.get("password", defaults.USER_PASSWORD)))
        session_name = spec.get("session", spec["user"])
        client = self._client(spec.get("client", "default"))
        resource = self._resource(spec)
        try:
            authorization = self.client.authorize(
                client,
                login,
                password,
                resource,
                pkce=bool(spec.get("pkce", True)),
                consent=str(spec.get("consent", "approve")),
                scope=self._render(spec["scope"]) if "scope" in spec else None,
            )
        except (FlowError, httpx.HTTPError) as exc:
            self._flow_failed(f"login of {login}", exc, spec)
            return
        for value in (
            authorization.query.get("code"),
            authorization.code_verifier,
            *authorization.consent_tickets,
        ):
            self._remember_secret(value)
        saved_authorization = authorization.as_dict()
        authorization_checks = _as_list(spec.get("expect_authorization"))
        for expect in authorization_checks:
            self._add_check(
                expect,
                self._authorization_failures(expect, authorization),
                "the authorization response is as expected",
            )
        if authorization.error or spec.get("redeem") is False:
            if spec.get("save"):
                self.context[spec["save"]] = {"status": None, "authorization": saved_authorization}
                self.saved_names.add(spec["save"])
            if authorization.error and not authorization_checks:
                self._flow_failed(
                    f"login of {login}",
                    FlowError(
                        f"authorization failed: {authorization.error}: "
                        f"{authorization.query.get('error_description', '')}"
                    ),
                    spec,
                )
            return
        try:
            response, session = self.client.redeem(client, authorization, resource, login)
        except httpx.HTTPError as exc:
            self._flow_failed(f"login of {login}", exc, spec)
            return
        self._remember_secret(session.refresh_token)
        self.sessions[session_name] = session
        saved = self._save_response(spec.get("save"), response, f"login {login}")
        saved["authorization"] = saved_authorization
        if "expect" in spec:
            self._check_response(spec["expect"], response, f"login of {login} returns a token")
        elif response.status_code != 200:
            self._flow_failed(
                f"login of {login}",
                FlowError(f"token endpoint HTTP {response.status_code}{_error_summary(response)}"),
                spec,
            )

    def _authorization_failures(self, expect: dict[str, Any], authorization: Any) -> list[str]:
        expect = self._render(expect)
        failures = _subset_failures(expect.get("query", {}), authorization.query, "response")
        for name in expect.get("query_absent", []):
            if name in authorization.query:
                failures.append(f"response.{name} is present but must not be")
        if "consent_shown" in expect and authorization.consent_shown != expect["consent_shown"]:
            failures.append(
                "the broker showed its consent page before the IdP"
                if authorization.consent_shown
                else "no consent page of the broker came before the IdP (visited: "
                + " -> ".join(dict.fromkeys(authorization.hosts))
                + ")"
            )
        return failures

    def _step_http(self, spec: dict[str, Any]) -> None:
        """One raw request to the broker (or any URL), with response expectations.

        ``path`` is relative to the broker's base URL, ``url`` is absolute; ``params``,
        ``form``, ``json`` and ``headers`` are sent as given. It shares the scenario's cookie
        jar (the browser), so it can act on a consent page the broker showed.
        """
        expects = spec.get("expect")
        save = spec.get("save")
        spec = self._render({k: v for k, v in spec.items() if k not in ("expect", "save")})
        url = spec.get("url") or f"{self.target.url}{spec.get('path', '/')}"
        kwargs: dict[str, Any] = {}
        for key in ("params", "json", "headers"):
            if key in spec:
                kwargs[key] = spec[key]
        if "form" in spec:
            kwargs["data"] = spec["form"]
        method = str(spec.get("method", "POST" if ("form" in spec or "json" in spec) else "GET"))
        try:
            response = self.recorder.request(method, str(url), **kwargs)
        except httpx.HTTPError as exc:
            self._flow_failed(f"{method} {url}", exc, {"expect": expects})
            return
        saved = self._save_response(save, response, f"{method} {url}")
        saved["headers"] = {k.lower(): v for k, v in response.headers.items()}
        location = response.headers.get("location")
        if location:
            saved["location"] = {
                "url": location,
                "query": {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()},
            }
        if isinstance(saved.get("json"), dict):
            for key in ("client_secret", "code"):
                self._remember_secret(saved["json"].get(key))
        if "text/html" in response.headers.get("content-type", ""):
            for ticket in consent_tickets(response.text):
                self._remember_secret(ticket)
        if expects is not None:
            self._check_response(expects, response, f"{method} {url}")

    def _step_token(self, spec: dict[str, Any]) -> None:
        session = self.sessions.get(spec["session"])
        if session is None:
            raise TemplateError(f"no session named {spec['session']!r} (log in first)")
        resource = self._resource(spec)
        try:
            response = self.client.token_for(session, resource)
        except (FlowError, httpx.HTTPError) as exc:
            self._flow_failed("token request", exc, spec)
            return
        self._remember_secret(session.refresh_token)
        self._save_response(spec.get("save"), response, f"token for {resource}")
        if "expect" in spec:
            self._check_response(spec["expect"], response, "token request")
        elif response.status_code != 200:  # without expectations a token step is a precondition
            self._flow_failed(
                "token request",
                FlowError(f"HTTP {response.status_code}{_error_summary(response)}"),
                spec,
            )

    def _step_mcp(self, spec: dict[str, Any]) -> None:
        token = str(self._render(spec["token"]))
        if spec.get("gateway"):
            # the broker's own resource URL: the broker forwards to the upstream
            url = self._resource(spec)
            workspace: Any = None
        elif "snowflake" in spec:
            # the account's managed MCP server (SALES.PUBLIC.SALES_MCP in the sandbox)
            server: Any = self.sandbox.snowflake_account(str(self._render(spec["snowflake"])))
            database, schema, name = defaults.SNOWFLAKE_MCP_SERVER
            url = f"{server.url}/api/v2/databases/{database}/schemas/{schema}/mcp-servers/{name}"
            workspace = server
        else:
            server = self.sandbox.workspace(str(self._render(spec["workspace"])))
            upstream = str(self._render(spec.get("upstream", "databricks-sql")))
            url = f"{server.url}{UPSTREAM_MCP_PATHS.get(upstream, '/api/2.0/mcp/sql')}"
            workspace = server
        self._rpc_id += 1
        try:
            response = self.client.mcp_call(
                url,
                token,
                str(self._render(spec["method"])),
                self._render(spec.get("params")),
                self._rpc_id,
                headers=self._render(spec.get("headers")),
            )
        except httpx.HTTPError as exc:
            self._flow_failed("MCP call", exc, spec)
            return
        where = workspace.host if workspace is not None else "the broker (gateway)"
        self._save_response(spec.get("save"), response, f"MCP {spec['method']} at {where}")
        if "expect" in spec:
            self._check_response(spec["expect"], response, "MCP call")

    # -- steps: admin actions ---------------------------------------------------------
    def _step_clock(self, spec: dict[str, Any]) -> None:
        if "advance" in spec:
            self.sandbox.clock.advance(float(spec["advance"]))
        else:
            self.sandbox.clock.set(float(spec["set"]))

    def _step_okta(self, spec: dict[str, Any]) -> None:
        self.sandbox.okta.revoke_refresh_tokens(
            user_login(str(self._render(spec["revoke_refresh_tokens"])))
        )

    def _step_fault(self, spec: dict[str, Any]) -> None:
        """Install a fault; ``workspace: dbc-aaa`` is shorthand for that workspace's host."""
        spec = dict(self._render(spec))
        if "workspace" in spec:
            spec["host"] = self.sandbox.workspace(str(spec.pop("workspace"))).host
        try:
            self.sandbox.context.faults.add(spec)
        except FaultError as exc:
            raise TemplateError(f"fault: {exc}") from exc

    def _step_admin(self, spec: dict[str, Any]) -> None:
        """Drive the sandbox through its admin API, exactly as a broker's own tests would.

        Scenarios use it for runtime control (deprovision a user, rotate keys, grant or revoke
        a role); the answer can be saved. An error answer is a scenario-data problem, not a
        broker failure, so it stops the scenario as an ERROR naming the admin endpoint.
        """
        spec = dict(self._render(spec))
        method = str(spec.get("method", "POST" if "json" in spec else "GET"))
        path = str(spec["path"]).strip("/")
        response = httpx.request(
            method, f"{self.sandbox.admin_url}/{path}", json=spec.get("json"), timeout=10.0
        )
        try:
            body = response_json(response)
        except ValueError:
            body = {}
        if response.status_code >= 400:
            description = body.get("error_description") if isinstance(body, dict) else None
            raise TemplateError(
                f"admin {method} /_harness/{path} answered {response.status_code}: "
                f"{description or response.text[:200]}"
            )
        if spec.get("save"):
            self.context[str(spec["save"])] = body

    def _step_mark(self, name: str) -> None:
        self.marks[name] = self.sandbox.journal.last_seq
        self.audit_marks[name] = len(self.target.audit_records() or [])

    # -- steps: expectations ------------------------------------------------------------
    def _step_expect(self, spec: dict[str, Any]) -> None:
        failures: list[str] = []
        for relation in spec["that"]:
            left = self._render(relation["left"])
            right = self._render(relation["right"])
            if not _compare(left, relation["op"], right):
                failures.append(
                    f"expected {relation['left']} {relation['op']} {relation['right']}, "
                    f"got {self._show(left)} and {self._show(right)}"
                )
        self._add_check(spec, failures, "relation holds")

    def _step_expect_journal(self, spec: dict[str, Any]) -> None:
        spec = self._render(spec)
        since_name = spec.get("since", "scenario")
        if since_name == "step":
            since = self.previous_step_seq
        elif since_name in self.marks:
            since = self.marks[since_name]
        else:
            raise TemplateError(f"expect_journal since: no mark named {since_name!r}")
        host = spec.get("host")
        if "workspace" in spec:
            host = self.sandbox.workspace(spec["workspace"]).host
        if "snowflake" in spec:
            host = self.sandbox.snowflake_account(spec["snowflake"]).host
        entries = self.sandbox.journal.entries(
            host=host,
            path=spec.get("path"),
            method=spec.get("method"),
            token=spec.get("token"),
            since=since,
        )
        where = f"{host or 'any host'}{spec.get('path', '')}"
        failures: list[str] = []
        count = len(entries)
        if "count" in spec and count != spec["count"]:
            seen = ", ".join(f"{e.method} {e.host}{e.path}" for e in entries[:5])
            failures.append(
                f"{count} request(s) to {where}, expected {spec['count']}"
                + (f" ({seen})" if seen else "")
            )
        if "min" in spec and count < spec["min"]:
            failures.append(f"{count} request(s) to {where}, expected at least {spec['min']}")
        if "max" in spec and count > spec["max"]:
            failures.append(f"{count} request(s) to {where}, expected at most {spec['max']}")
        for entry in entries:
            for field_name, wanted in spec.get("form", {}).items():
                actual = entry.form.get(field_name)
                if isinstance(actual, dict):  # a redacted secret: compare presence only
                    if wanted is None:
                        failures.append(f"#{entry.seq} form.{field_name} present, expected absent")
                    continue
                if actual != wanted:
                    failures.append(
                        f"#{entry.seq} form.{field_name} = {actual!r}, expected {wanted!r}"
                    )
            if "subject_token_claims" in spec:
                claims = entry.jwt_claims.get("form.subject_token")
                if claims is None:
                    failures.append(f"#{entry.seq} subject_token is not a JWT")
                else:
                    failures.extend(
                        _subset_failures(
                            spec["subject_token_claims"], claims, f"#{entry.seq} subject_token"
                        )
                    )
            if "subject_token_max_lifetime" in spec:
                failures.extend(
                    _lifetime_failures(
                        entry.jwt_claims.get("form.subject_token"),
                        spec["subject_token_max_lifetime"],
                        f"#{entry.seq} subject_token",
                    )
                )
            if spec.get("no_authorization_header") and any(
                k.lower() == "authorization" for k in entry.headers
            ):
                failures.append(f"#{entry.seq} carries an Authorization header")
        self._add_check(spec, failures, f"journal of {where}")

    def _step_expect_query_history(self, spec: dict[str, Any]) -> None:
        spec = self._render(spec)
        if "snowflake" in spec:
            self._snowflake_query_history(spec)
            return
        workspace = self.sandbox.workspace(spec["workspace"])
        history = list(workspace.query_history)
        failures: list[str] = []
        if "user" in spec:
            mine = [q for q in history if _query_user(q) == user_login(spec["user"])]
            if "count" in spec and len(mine) != spec["count"]:
                failures.append(
                    f"{len(mine)} queries by {user_login(spec['user'])} at {workspace.name}, "
                    f"expected {spec['count']}"
                )
        elif "count" in spec and len(history) != spec["count"]:
            failures.append(f"{len(history)} queries at {workspace.name}, expected {spec['count']}")
        if "server" in spec:
            history = [q for q in history if q.server == spec["server"]]
            if not history:
                failures.append(f"no query at {workspace.name} ran on the {spec['server']} server")
        if "request_id" in spec:
            ran = [q for q in history if q.request_id == spec["request_id"]]
            if not ran:
                failures.append(
                    f"no query at {workspace.name} ran in upstream request {spec['request_id']}"
                )
            elif "user" in spec and any(_query_user(q) != user_login(spec["user"]) for q in ran):
                failures.append(
                    f"the query of request {spec['request_id']} ran as "
                    f"{', '.join(sorted({_query_user(q) for q in ran}))}"
                )
        if "only_user" in spec:
            others = sorted({_query_user(q) for q in history} - {user_login(spec["only_user"])})
            if others:
                failures.append(f"queries at {workspace.name} ran as {', '.join(others)}")
        self._add_check(spec, failures, f"query history of {workspace.name}")

    def _step_expect_audit(self, spec: dict[str, Any]) -> None:
        """The broker's audit records since a mark (``since``; default the scenario start)
        that contain ``match`` (subset): ``count``/``min``, ``has_request_id``, ``save``."""
        spec = self._render(spec)
        records = self.target.audit_records() or []
        since_name = spec.get("since", "scenario")
        if since_name != "scenario":
            if since_name not in self.audit_marks:
                raise TemplateError(f"expect_audit since: no mark named {since_name!r}")
            records = records[self.audit_marks[since_name] :]
        else:
            records = records[self.audit_start :]
        wanted = spec.get("match", {})
        matching = [r for r in records if not _subset_failures(wanted, r, "audit")]
        failures: list[str] = []
        described = ", ".join(f"{k}={v}" for k, v in wanted.items()) or "any"
        if "count" in spec and len(matching) != spec["count"]:
            failures.append(
                f"{len(matching)} audit record(s) with {described}, expected {spec['count']}"
                + _audit_sample(records)
            )
        if "min" in spec and len(matching) < spec["min"]:
            failures.append(
                f"{len(matching)} audit record(s) with {described}, expected at least "
                f"{spec['min']}" + _audit_sample(records)
            )
        if spec.get("has_request_id") and not any(r.get("request_id") for r in matching):
            failures.append(f"no audit record with {described} names an upstream request id")
        if spec.get("save"):
            # saved even when nothing matched: later uses then fail as FLOW-01 (the broker's
            # audit lacked the record), not as a harness error
            self.context[spec["save"]] = dict(matching[-1]) if matching else {}
            self.saved_names.add(spec["save"])
        self._add_check(spec, failures, "broker audit records")

    def _snowflake_query_history(self, spec: dict[str, Any]) -> None:
        """Query history of a Snowflake account: ``user`` is the Snowflake user name (ALICE),
        ``role`` the role every one of that user's queries ran as, ``count`` how many."""
        account = self.sandbox.snowflake_account(spec["snowflake"])
        history = list(account.query_history)
        if "user" in spec:
            history = [q for q in history if q.user.upper() == str(spec["user"]).upper()]
        who = f"by {spec['user']} " if "user" in spec else ""
        failures: list[str] = []
        if "count" in spec and len(history) != spec["count"]:
            failures.append(
                f"{len(history)} queries {who}at {account.name}, expected {spec['count']}"
            )
        if "role" in spec:
            roles = sorted({q.role for q in history} - {str(spec["role"]).upper()})
            if roles:
                failures.append(f"queries {who}at {account.name} ran as role {', '.join(roles)}")
        self._add_check(spec, failures, f"query history of {account.name}")


def response_json(response: httpx.Response) -> Any:
    """The JSON body, also of a Streamable HTTP answer framed as SSE (the ``data`` of its last
    ``message`` event): scenarios expect the JSON-RPC message either way."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data: list[str] = []
        message: str | None = None
        for line in [*response.text.splitlines(), ""]:
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                message, data = "\n".join(data), []
        if message is None:
            raise ValueError("the event stream carries no message")
        return json.loads(message)
    return response.json()


def _audit_sample(records: list[dict[str, Any]]) -> str:
    shown = [
        f"{r.get('event')}/{r.get('outcome')} tool={r.get('tool')} upstream={r.get('upstream')}"
        for r in records[-4:]
    ]
    return f" (latest: {'; '.join(shown)})" if shown else " (no records)"


def _location_failures(wanted: dict[str, Any], response: httpx.Response) -> list[str]:
    """``location: {absent: true}``, ``{starts_with: …}``, ``{query: {…}}``, ``{query_absent}``."""
    location = response.headers.get("location")
    if wanted.get("absent"):
        return [f"the response redirects to {redact_url(location)!r}"] if location else []
    if location is None:
        return ["the response has no Location header"]
    failures: list[str] = []
    prefix = wanted.get("starts_with")
    if prefix is not None and not location.startswith(str(prefix)):
        failures.append(f"Location {redact_url(location)!r} does not start with {prefix!r}")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    failures.extend(_subset_failures(wanted.get("query", {}), query, "location"))
    for name in wanted.get("query_absent", []):
        if name in query:
            failures.append(f"location.{name} is present but must not be")
    return failures


def _header_matches(actual: str, wanted: str) -> bool:
    """Case-insensitive: the whole value, one comma-separated directive, or the auth scheme."""
    actual_l, wanted_l = actual.lower().strip(), wanted.lower().strip()
    directives = [d.strip() for d in actual_l.split(",")]
    return actual_l == wanted_l or wanted_l in directives or actual_l.split(" ", 1)[0] == wanted_l


def _query_user(record: Any) -> str:
    return str(record.get("user") if isinstance(record, dict) else getattr(record, "user", ""))


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _error_summary(response: httpx.Response) -> str:
    try:
        body = response_json(response)
    except ValueError:
        return ""
    if isinstance(body, dict) and "error" in body:
        return f" ({body['error']}: {body.get('error_description', '')})"
    return ""


def _lifetime_failures(claims: dict[str, Any] | None, limit: float, where: str) -> list[str]:
    """A JWT's ``exp - iat`` must be at most ``limit`` (a short-lived assertion)."""
    if claims is None:
        return [f"{where} is not a JWT"]
    iat, exp = claims.get("iat"), claims.get("exp")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp)):
        return [f"{where} lacks numeric iat and exp"]
    lifetime = float(exp) - float(iat)  # type: ignore[arg-type]
    if lifetime > limit:
        return [f"{where} lives {lifetime:g}s (exp - iat), expected at most {limit:g}s"]
    return []


def _subset_failures(expected: Any, actual: Any, where: str) -> list[str]:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where} is {type(actual).__name__}, expected an object"]
        failures: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                failures.append(f"{where}.{key} is missing (expected {value!r})")
            else:
                failures.extend(_subset_failures(value, actual[key], f"{where}.{key}"))
        return failures
    if expected != actual:
        return [f"{where} = {actual!r}, expected {expected!r}"]
    return []


def _compare(left: Any, op: str, right: Any) -> bool:
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        if op == ">=":
            return bool(left >= right)
        if op == "in":
            return bool(left in right)
        if op == "not in":
            return bool(left not in right)
        if op == "contains":
            return bool(right in left)
        if op == "not contains":
            return bool(right not in left)
    except TypeError:
        return False
    raise ValueError(f"unknown operator {op!r}")
