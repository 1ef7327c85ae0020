"""The interactive grants: authorize transactions, authorization codes and refresh tokens.

Codes and refresh tokens are stored by hash only. A code is single use (a replay revokes what
the first redemption issued); refresh tokens rotate with a leeway, and reuse after it revokes
the whole family (``vendor-fidelity.md`` §C.2, §C.4).
"""

from __future__ import annotations

import secrets
from typing import Any

from mocks.okta.constants import INVALID_CODE, INVALID_REFRESH, OktaError
from mocks.okta.records import AuthCode, AuthRequest, OktaUser, RefreshToken, at_hash, hash_secret
from mocks.okta.tokens import TokenIssuer


class CodeAndRefreshGrants(TokenIssuer):
    """From a validated ``/v1/authorize`` request to the tokens of a code or refresh grant."""

    # -- authorize transactions and codes ---------------------------------------------
    def start_authorization(self, request: AuthRequest) -> str:
        """Store a validated authorize request; the opaque id rides in the login form."""
        txn = self.context.ids.token_urlsafe(18)
        with self._lock:
            self._sweep()
            self.requests[txn] = request
        return txn

    def pending(self, txn: str) -> AuthRequest | None:
        with self._lock:
            request = self.requests.get(txn)
            if request is None or request.expires_at <= self.now():
                return None
            return request

    def cancel_authorization(self, txn: str) -> AuthRequest | None:
        """The login form's deny button: the transaction is consumed, no code is issued."""
        with self._lock:
            return self.requests.pop(txn, None)

    def issue_code(self, txn: str, user: OktaUser) -> tuple[str, AuthRequest] | None:
        """Consume the transaction and mint a code; ``None`` if it was already used."""
        with self._lock:
            request = self.requests.pop(txn, None)
            if request is None:
                return None
            code = self.context.ids.token_urlsafe(32)
            now = self.now()
            self.codes[hash_secret(code)] = AuthCode(
                request, user.id, now, now + self.auth_code_lifetime
            )
        return code, request

    def redeem_code(
        self,
        code: str,
        *,
        client_id: str,
        server_id: str,
        redirect_uri: str,
        code_verifier: str | None,
    ) -> AuthCode:
        """Validate and burn a code (single use: any redemption attempt consumes it).

        A replay revokes the tokens the first redemption produced when
        ``revoke_tokens_on_code_reuse`` is on (RFC 6749 §4.1.2).
        """
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        with self._lock:
            record = self.codes.get(hash_secret(code))
            if record is None or record.expires_at <= self.now():
                raise OktaError("invalid_grant", INVALID_CODE)
            if record.used:
                if self.revoke_tokens_on_code_reuse and record.family is not None:
                    self.revoked_families.add(record.family)
                raise OktaError("invalid_grant", INVALID_CODE)
            record.used = True
            auth = record.request
            if auth.client_id != client_id or auth.server_id != server_id:
                raise OktaError("invalid_grant", INVALID_CODE)
            if auth.redirect_uri != redirect_uri:
                raise OktaError(
                    "invalid_grant",
                    "The 'redirect_uri' does not match the redirection URI used in the "
                    "authorization request.",
                )
            if auth.code_challenge:
                if not code_verifier or not secrets.compare_digest(
                    create_s256_code_challenge(code_verifier), auth.code_challenge
                ):
                    raise OktaError("invalid_grant", "PKCE verification failed.")
            elif code_verifier:
                raise OktaError(
                    "invalid_request",
                    "The 'code_verifier' parameter was provided but the authorization request "
                    "had no 'code_challenge'.",
                )
            user = self.users.get(record.user_id)
            if user is None or not user.active:
                raise OktaError("invalid_grant", INVALID_CODE)
            record.family = self.context.ids.token_hex(8)
            return record

    # -- token responses ---------------------------------------------------------------
    def tokens_for_code(self, record: AuthCode) -> dict[str, Any]:
        """The token response of an ``authorization_code`` grant (after :meth:`redeem_code`)."""
        auth = record.request
        assert record.family is not None
        with self._lock:
            user = self.users[record.user_id]
            return self._issue(
                client_id=auth.client_id,
                user=user,
                scopes=auth.scopes,
                server_id=auth.server_id,
                auth_time=record.auth_time,
                nonce=auth.nonce,
                family=record.family,
                previous=None,
            )

    def refresh(
        self, value: str, *, client_id: str, server_id: str, scope: str | None
    ) -> dict[str, Any]:
        """The token response of a ``refresh_token`` grant, rotating per the app's settings.

        All checks run before anything changes, so a rejected request (say, a widened
        scope) never burns the client's only refresh token. Reuse of a rotated token after
        the leeway revokes the family (§C.4).
        """
        now = self.now()
        with self._lock:
            record = self.refresh_tokens.get(hash_secret(value))
            if record is None or record.client_id != client_id or record.server_id != server_id:
                raise OktaError("invalid_grant", INVALID_REFRESH)
            if record.family in self.revoked_families or record.expires_at <= now:
                raise OktaError("invalid_grant", INVALID_REFRESH)
            user = self.users.get(record.user_id)
            if user is None or not user.active:
                raise OktaError("invalid_grant", INVALID_REFRESH)
            if record.rotated_at is not None and now - record.rotated_at > self.refresh_leeway:
                self.revoked_families.add(record.family)  # reuse detected: kill the family
                raise OktaError("invalid_grant", INVALID_REFRESH)
            scopes = list(record.scopes)
            if scope is not None and scope.strip():
                requested = list(dict.fromkeys(scope.split()))
                if not set(requested) <= set(record.scopes):
                    raise OktaError(
                        "access_denied",
                        "The requested scopes exceed the scopes granted to the refresh token.",
                    )
                # The grant stays offline: a narrowed request still gets a refresh token.
                scopes = requested
                if "offline_access" not in scopes:
                    scopes.append("offline_access")
            return self._issue(
                client_id=client_id,
                user=user,
                scopes=scopes,
                server_id=server_id,
                auth_time=record.auth_time,
                nonce=None,
                family=record.family,
                previous=(value, record),
                # RFC 6749 §6: a narrowed request narrows the access token, not the grant; the
                # next refresh token may still ask for anything the user originally granted.
                grant_scopes=list(record.scopes),
            )

    def _issue(
        self,
        *,
        client_id: str,
        user: OktaUser,
        scopes: list[str],
        server_id: str,
        auth_time: float,
        nonce: str | None,
        family: str,
        previous: tuple[str, RefreshToken] | None,
        grant_scopes: list[str] | None = None,
    ) -> dict[str, Any]:
        """Mint the tokens of one grant; caller holds the lock."""
        access = self.mint_access_token(
            user.login,
            client_id,
            scopes=scopes,
            server_id=server_id,
            auth_time=auth_time,
            _family=family,
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "access_token": access,
            "scope": " ".join(scopes),
        }
        if "openid" in scopes:
            body["id_token"] = self.mint_id_token(
                user.login,
                client_id,
                scopes=scopes,
                nonce=nonce,
                server_id=server_id,
                auth_time=auth_time,
                extra_claims={"at_hash": at_hash(access)},
            )
        if "offline_access" in scopes:
            body["refresh_token"] = self._next_refresh_token(
                family, client_id, user.id, grant_scopes or scopes, server_id, auth_time, previous
            )
        return body

    def _next_refresh_token(
        self,
        family: str,
        client_id: str,
        user_id: str,
        scopes: list[str],
        server_id: str,
        auth_time: float,
        previous: tuple[str, RefreshToken] | None,
    ) -> str:
        now = self.now()
        cap: float | None
        if previous is not None:
            cap = previous[1].family_expires_at
        elif self.refresh_max_lifetime is not None:
            cap = now + self.refresh_max_lifetime
        else:
            cap = None
        expires_at = now + self.refresh_idle_window
        if cap is not None:
            expires_at = min(expires_at, cap)
        if previous is not None and self.refresh_rotation == "STATIC":
            value, record = previous
            record.expires_at = expires_at
            record.scopes = list(scopes)
            return value
        if previous is not None and previous[1].rotated_at is None:
            previous[1].rotated_at = now
        self._sweep()
        value = self.context.ids.token_urlsafe(32)
        self.refresh_tokens[hash_secret(value)] = RefreshToken(
            family,
            client_id,
            user_id,
            list(scopes),
            server_id,
            auth_time,
            expires_at,
            cap,
            issued_at=now,
        )
        return value

    # -- sign-in session --------------------------------------------------------------
    def end_session(self, login: str) -> None:
        """``/v1/logout``: the user's Okta session (our ``auto_approve``) ends; tokens live on."""
        with self._lock:
            if self.auto_approve and self.auto_approve.lower() == login.lower():
                self.auto_approve = None
