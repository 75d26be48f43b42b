"""Stand-ins for IAM Identity Center (moto has no `sso-oidc` or `sso`), behind the same
boto3 calls: the functions' AWS_ENDPOINT_URL_SSO_OIDC and AWS_ENDPOINT_URL_SSO point at
the local API port (`/_local/sso-oidc`, `/_local/sso`), as Bedrock's does.

- sso-oidc (rest-json): RegisterClient (`POST /client/register`, a public client valid
  90 days), StartDeviceAuthorization (`POST /device_authorization`: a device code, a user
  code, the local approval page as verificationUriComplete, 10 minutes, interval 1 s),
  CreateToken (`POST /token`: AuthorizationPendingException until the code is approved,
  SlowDownException when polled faster than the interval, AccessDeniedException once
  denied, ExpiredTokenException past its expiry; then an access token valid 8 hours).
- The approval page, `GET /_local/sso/approve?user_code=...`: what the member sees at
  IAM Identity Center's verification URL, with Approve and Deny buttons that
  `POST /_local/sso/approve` (form `user_code`, `decision`).
- sso (rest-json): GetRoleCredentials (`GET /federation/credentials?account_id=&role_name=`,
  the token in `x-amz-sso_bearer_token`): credentials of that role in that emulated
  account (moto attributes them to the account), or UnauthorizedException for a token it
  did not issue or that expired.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote

CLIENT_LIFETIME = 90 * 86400
CODE_LIFETIME = 600
TOKEN_LIFETIME = 8 * 3600
INTERVAL = 1
CREDENTIALS_LIFETIME = 3600

Answer = tuple[int, dict[str, str], bytes]
Credentials = Callable[[str, str], dict[str, str]]


@dataclass
class _Flow:
    client_id: str
    device_code: str
    user_code: str
    start_url: str
    expires_at: float
    last_poll: float = 0.0
    decision: str | None = None  # approve | deny


class IdentityCenterStandIn:
    def __init__(
        self,
        *,
        base_url: str,
        credentials_in: Credentials,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._credentials_in = credentials_in
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[str, float]] = {}
        self._flows: dict[str, _Flow] = {}  # by device code
        self._tokens: dict[str, float] = {}  # access token -> expiry

    @property
    def verification_uri(self) -> str:
        return f"{self._base}/_local/sso/approve"

    def endpoints(self) -> dict[str, str]:
        """The environment that points boto3's sso-oidc and sso clients here."""
        return {
            "AWS_ENDPOINT_URL_SSO_OIDC": f"{self._base}/_local/sso-oidc",
            "AWS_ENDPOINT_URL_SSO": f"{self._base}/_local/sso",
        }

    def handles(self, path: str) -> bool:
        return path.startswith(("/_local/sso-oidc/", "/_local/sso/"))

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        route = (method, path.split("?", 1)[0])
        with self._lock:
            if route == ("POST", "/_local/sso-oidc/client/register"):
                return self._register(_json(body))
            if route == ("POST", "/_local/sso-oidc/device_authorization"):
                return self._start(_json(body))
            if route == ("POST", "/_local/sso-oidc/token"):
                return self._token(_json(body))
            if route == ("GET", "/_local/sso/federation/credentials"):
                return self._role_credentials(parse_qs(query), headers)
            if route == ("GET", "/_local/sso/approve"):
                return self._page(parse_qs(query).get("user_code", [""])[0])
            if route == ("POST", "/_local/sso/approve"):
                form = parse_qs(body.decode("utf-8", "replace"))
                return self._decide(
                    form.get("user_code", [""])[0], form.get("decision", ["approve"])[0]
                )
        return _error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", "no such operation")

    # ---- the member's side: the approval page -----------------------------------------

    def approve(self, user_code: str, *, decision: str = "approve") -> bool:
        with self._lock:
            return self._decide(user_code, decision)[0] == HTTPStatus.OK

    def _flow_by_user_code(self, user_code: str) -> _Flow | None:
        return next((f for f in self._flows.values() if f.user_code == user_code), None)

    def _page(self, user_code: str) -> Answer:
        flow = self._flow_by_user_code(user_code)
        if flow is None or flow.expires_at <= self._clock():
            return _html(HTTPStatus.NOT_FOUND, "<p>This sign-in code is unknown or expired.</p>")
        code = html.escape(user_code)
        return _html(
            HTTPStatus.OK,
            f"<h1>Local IAM Identity Center</h1><p>Allow the platform to act for you with "
            f"the code <strong>{code}</strong> ({html.escape(flow.start_url)})?</p>"
            f'<form method="post"><input type="hidden" name="user_code" value="{code}">'
            '<button name="decision" value="approve">Approve</button> '
            '<button name="decision" value="deny">Deny</button></form>',
        )

    def _decide(self, user_code: str, decision: str) -> Answer:
        flow = self._flow_by_user_code(user_code)
        if flow is None or flow.expires_at <= self._clock():
            return _html(HTTPStatus.NOT_FOUND, "<p>This sign-in code is unknown or expired.</p>")
        flow.decision = "deny" if decision == "deny" else "approve"
        said = "approved" if flow.decision == "approve" else "denied"
        return _html(HTTPStatus.OK, f"<p>Request {said}. You may close this page.</p>")

    # ---- sso-oidc ---------------------------------------------------------------

    def _register(self, body: dict[str, Any]) -> Answer:
        if body.get("clientType") != "public" or not body.get("clientName"):
            return _error(HTTPStatus.BAD_REQUEST, "InvalidClientMetadataException", "public only")
        now = self._clock()
        client_id, secret = f"local-{secrets.token_hex(8)}", secrets.token_urlsafe(32)
        expires = now + CLIENT_LIFETIME
        self._clients[client_id] = (secret, expires)
        return _ok(
            {
                "clientId": client_id,
                "clientSecret": secret,
                "clientIdIssuedAt": int(now),
                "clientSecretExpiresAt": int(expires),
            }
        )

    def _client_ok(self, body: dict[str, Any]) -> bool:
        known = self._clients.get(str(body.get("clientId")))
        return bool(
            known
            and secrets.compare_digest(known[0], str(body.get("clientSecret")))
            and known[1] > self._clock()
        )

    def _start(self, body: dict[str, Any]) -> Answer:
        if not self._client_ok(body):
            return _error(HTTPStatus.UNAUTHORIZED, "InvalidClientException", "unknown client")
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        flow = _Flow(
            client_id=str(body["clientId"]),
            device_code=secrets.token_urlsafe(32),
            user_code=user_code,
            start_url=str(body.get("startUrl") or ""),
            expires_at=self._clock() + CODE_LIFETIME,
        )
        self._flows[flow.device_code] = flow
        return _ok(
            {
                "deviceCode": flow.device_code,
                "userCode": user_code,
                "verificationUri": self.verification_uri,
                "verificationUriComplete": f"{self.verification_uri}?user_code={quote(user_code)}",
                "expiresIn": CODE_LIFETIME,
                "interval": INTERVAL,
            }
        )

    def _token(self, body: dict[str, Any]) -> Answer:
        if not self._client_ok(body):
            return _error(HTTPStatus.UNAUTHORIZED, "InvalidClientException", "unknown client")
        if body.get("grantType") != "urn:ietf:params:oauth:grant-type:device_code":
            return _error(
                HTTPStatus.BAD_REQUEST, "UnsupportedGrantTypeException", "device code only"
            )
        flow = self._flows.get(str(body.get("deviceCode")))
        now = self._clock()
        if flow is None or flow.client_id != body.get("clientId"):
            return _error(HTTPStatus.BAD_REQUEST, "InvalidGrantException", "unknown device code")
        if flow.expires_at <= now:
            del self._flows[flow.device_code]
            return _error(HTTPStatus.BAD_REQUEST, "ExpiredTokenException", "expired_token")
        if flow.decision == "deny":
            del self._flows[flow.device_code]
            return _error(HTTPStatus.BAD_REQUEST, "AccessDeniedException", "access_denied")
        if flow.decision is None:
            too_soon = now - flow.last_poll < INTERVAL
            flow.last_poll = now
            if too_soon:
                return _error(HTTPStatus.BAD_REQUEST, "SlowDownException", "slow_down")
            return _error(
                HTTPStatus.BAD_REQUEST, "AuthorizationPendingException", "authorization_pending"
            )
        del self._flows[flow.device_code]
        token = f"local-aoa-{secrets.token_urlsafe(32)}"
        self._tokens[token] = now + TOKEN_LIFETIME
        return _ok({"accessToken": token, "tokenType": "Bearer", "expiresIn": TOKEN_LIFETIME})

    # ---- sso ------------------------------------------------------------------

    def _role_credentials(self, query: dict[str, list[str]], headers: dict[str, str]) -> Answer:
        token = headers.get("x-amz-sso_bearer_token", "")
        expires = self._tokens.get(token)
        if expires is None or expires <= self._clock():
            return _error(HTTPStatus.UNAUTHORIZED, "UnauthorizedException", "session expired")
        account = query.get("account_id", [""])[0]
        role = query.get("role_name", [""])[0]
        if not (account.isdigit() and len(account) == 12) or not role:
            return _error(HTTPStatus.BAD_REQUEST, "InvalidRequestException", "account and role")
        credentials = self._credentials_in(account, role)
        return _ok(
            {
                "roleCredentials": {
                    "accessKeyId": credentials["aws_access_key_id"],
                    "secretAccessKey": credentials["aws_secret_access_key"],
                    "sessionToken": credentials["aws_session_token"],
                    "expiration": int((self._clock() + CREDENTIALS_LIFETIME) * 1000),
                }
            }
        )


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _ok(document: dict[str, Any]) -> Answer:
    return HTTPStatus.OK, {"content-type": "application/json"}, json.dumps(document).encode()


def _error(status: int, code: str, description: str) -> Answer:
    # rest-json: botocore reads the code from x-amzn-ErrorType.
    body = {"error": description, "error_description": description}
    headers = {"content-type": "application/json", "x-amzn-errortype": code}
    return status, headers, json.dumps(body).encode()


def _html(status: int, content: str) -> Answer:
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Local IAM Identity Center</title></head><body>"
        f"{content}</body></html>"
    )
    return status, {"content-type": "text/html; charset=utf-8"}, page.encode()


__all__ = ["IdentityCenterStandIn"]
