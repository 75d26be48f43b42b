"""GitHub's OAuth and REST endpoints, as the bridge calls them (stdlib HTTP: the Lambda
runtime has no HTTP client package, and three calls need none).

Base URLs come from settings (GitHub's by default), so a stand-in can take their place.
Failures are sorted once here: GitHub refusing the code (its answer says so) is the
client's problem (`GitHubRefused`); GitHub unreachable, slow or answering 5xx is
`GitHubUnavailable`; an answer that is not what GitHub documents is `GitHubBadAnswer`.
No token or code is ever part of an exception message.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

API_VERSION = "2022-11-28"
USER_AGENT = "agent-builder-oidc-bridge"
# Who the user is, and their e-mail addresses (the verified flag is on /user/emails only).
SCOPES = "read:user user:email"


class GitHubRefused(Exception):
    """GitHub refused the code or the token (expired, used, wrong verifier, scope...)."""


class GitHubUnavailable(Exception):
    """GitHub did not answer, answered too slowly, or answered with a server error."""


class GitHubBadAnswer(Exception):
    """GitHub answered something that is not what its API documents."""


@dataclass(frozen=True)
class GitHubUser:
    id: int
    login: str
    name: str | None
    avatar_url: str | None
    primary_email: str | None
    primary_email_verified: bool


class GitHubGateway:
    def __init__(
        self, *, web_url: str, api_url: str, client_id: str, timeout_seconds: float = 4.0
    ) -> None:
        self._web = web_url.rstrip("/")
        self._api = api_url.rstrip("/")
        self._client_id = client_id
        self._timeout = timeout_seconds

    def authorize_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        query = urllib.parse.urlencode(
            {
                "client_id": self._client_id,
                "redirect_uri": redirect_uri,
                "scope": SCOPES,
                "state": state,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
                "allow_signup": "true",
            }
        )
        return f"{self._web}/login/oauth/authorize?{query}"

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, client_secret: str
    ) -> str:
        """GitHub's access token for `code`; GitHubRefused when GitHub will not give one."""
        body = urllib.parse.urlencode(
            {
                "client_id": self._client_id,
                "client_secret": client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        ).encode()
        answer = self._call(
            "POST",
            f"{self._web}/login/oauth/access_token",
            {"Content-Type": "application/x-www-form-urlencoded"},
            body,
            what="the code exchange",
        )
        if not isinstance(answer, dict):
            raise GitHubBadAnswer("the code exchange")
        if answer.get("error"):
            # GitHub answers 200 with an error for a bad, used or expired code.
            raise GitHubRefused(str(answer["error"]))
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise GitHubBadAnswer("the code exchange")
        return token

    def user(self, access_token: str) -> GitHubUser:
        headers = {"Authorization": f"Bearer {access_token}"}
        profile = self._call("GET", f"{self._api}/user", headers, None, what="/user")
        emails = self._call("GET", f"{self._api}/user/emails", headers, None, what="/user/emails")
        if not isinstance(profile, dict) or not isinstance(profile.get("id"), int):
            raise GitHubBadAnswer("/user")
        if not isinstance(emails, list):
            raise GitHubBadAnswer("/user/emails")
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") is True), None
        )
        email = primary.get("email") if primary else None
        return GitHubUser(
            id=profile["id"],
            login=str(profile.get("login") or ""),
            name=profile.get("name") if isinstance(profile.get("name"), str) else None,
            avatar_url=(
                profile.get("avatar_url") if isinstance(profile.get("avatar_url"), str) else None
            ),
            primary_email=email if isinstance(email, str) and email else None,
            primary_email_verified=bool(primary and primary.get("verified") is True),
        )

    def _call(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, *, what: str
    ) -> Any:
        # The URL is settings' https base URL (or local mode's stand-in) plus a fixed path.
        request = urllib.request.Request(  # noqa: S310
            url,
            data=body,
            method=method,
            headers={
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                "X-GitHub-Api-Version": API_VERSION,
                **headers,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                raw = response.read(1_000_000)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise GitHubUnavailable(f"{what}: HTTP {exc.code}") from None
            # 401/403/404: the token is bad or lacks the scope (e.g. no user:email).
            raise GitHubRefused(f"{what}: HTTP {exc.code}") from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            raise GitHubUnavailable(f"{what}: {type(exc).__name__}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise GitHubBadAnswer(what) from None
