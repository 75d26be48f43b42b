"""A stand-in for GitHub's OAuth endpoints and the two REST calls the OIDC bridge makes.

`/login/oauth/authorize` plays a user who is signed in to GitHub and approves the app
(which user: the `login` parameter, GitHub's own "suggest this account", here an e-mail
address; users are made on first use); `/login/oauth/access_token` checks the app's
client id and secret, the single-use code, its redirect URI and the PKCE verifier, as
GitHub does; `/user` and `/user/emails` answer for the token. Its behaviour can be
switched (`Behaviour`): an unverified primary e-mail, a GitHub that fails (500) or
answers slowly. Used by the runtime tests and by local mode.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    unverified_email: bool = False  # the primary address is not verified
    failing: bool = False  # token and REST endpoints answer 500
    delay_seconds: float = 0.0  # before every token and REST answer
    deny: bool = False  # the user declines on the consent page


@dataclass(frozen=True)
class GitHubAccount:
    id: int
    login: str
    email: str
    name: str

    @property
    def avatar_url(self) -> str:
        return f"https://avatars.githubusercontent.com/u/{self.id}?v=4"


@dataclass
class _Code:
    account: GitHubAccount
    redirect_uri: str
    challenge: str
    used: bool = False


@dataclass
class GitHubStandIn:
    client_id: str
    client_secret: str
    behaviour: Behaviour = field(default_factory=Behaviour)

    def __post_init__(self) -> None:
        self._accounts: dict[str, GitHubAccount] = {}
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, GitHubAccount] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.exchanges = 0  # code exchanges answered with a token

    # ---- lifecycle -----------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: URLs carry codes

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="github-standin", daemon=True
        ).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def account(self, email: str) -> GitHubAccount:
        """The GitHub user with this primary e-mail (the same one every time)."""
        key = email.strip().lower()
        with self._lock:
            if key not in self._accounts:
                login = "".join(c if c.isalnum() else "-" for c in key.split("@")[0]).strip("-")
                # A stable id per address, in GitHub's range of user ids.
                self._accounts[key] = GitHubAccount(
                    id=10_000_000 + zlib.crc32(key.encode()) % 90_000_000,
                    login=login or "user",
                    email=key,
                    name=f"{login.title() or 'GitHub User'} (GitHub stand-in)",
                )
            return self._accounts[key]

    # ---- HTTP ----------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        route = (method, parsed.path)
        if route == ("GET", "/login/oauth/authorize"):
            self._authorize(request, query)
            return
        if self.behaviour.delay_seconds:
            time.sleep(self.behaviour.delay_seconds)
        if self.behaviour.failing:
            self._send(request, 500, {"message": "Server Error (stand-in: failing)"})
            return
        if route == ("POST", "/login/oauth/access_token"):
            length = int(request.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(request.rfile.read(length).decode()))
            self._send(request, 200, self._exchange(form))
            return
        account = self._bearer(request)
        if route[0] == "GET" and route[1] in ("/user", "/user/emails") and account is None:
            self._send(request, 401, {"message": "Bad credentials"})
        elif route == ("GET", "/user") and account is not None:
            self._send(
                request,
                200,
                {
                    "id": account.id,
                    "login": account.login,
                    "name": account.name,
                    "avatar_url": account.avatar_url,
                    "email": None,  # GitHub's public e-mail; the bridge reads /user/emails
                },
            )
        elif route == ("GET", "/user/emails") and account is not None:
            self._send(
                request,
                200,
                [
                    {
                        "email": account.email,
                        "primary": True,
                        "verified": not self.behaviour.unverified_email,
                        "visibility": "private",
                    },
                    {
                        "email": f"{account.id}+{account.login}@users.noreply.github.com",
                        "primary": False,
                        "verified": True,
                        "visibility": None,
                    },
                ],
            )
        else:
            self._send(request, 404, {"message": "Not Found"})

    def _authorize(self, request: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        redirect_uri, state = query.get("redirect_uri", ""), query.get("state", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            self._send(request, 404, {"message": "unknown OAuth application"})
            return
        if self.behaviour.deny:
            self._redirect(request, redirect_uri, {"error": "access_denied", "state": state})
            return
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            self._send(request, 400, {"message": "this stand-in expects PKCE with S256"})
            return
        account = self.account(query.get("login") or "octocat@example.com")
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = _Code(
                account=account, redirect_uri=redirect_uri, challenge=query["code_challenge"]
            )
        self._redirect(request, redirect_uri, {"code": code, "state": state})

    def _exchange(self, form: dict[str, str]) -> dict[str, Any]:
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return {"error": "incorrect_client_credentials"}
        with self._lock:
            grant = self._codes.get(form.get("code", ""))
            if grant is None or grant.used:
                return {"error": "bad_verification_code"}
            grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return {"error": "redirect_uri_mismatch"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if digest.rstrip(b"=").decode() != grant.challenge:
            return {"error": "bad_verification_code", "error_description": "PKCE mismatch"}
        token = f"gho_{secrets.token_hex(18)}"
        with self._lock:
            self._tokens[token] = grant.account
            self.exchanges += 1
        return {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}

    def _bearer(self, request: BaseHTTPRequestHandler) -> GitHubAccount | None:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self._lock:
            return self._tokens.get(token.strip())

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def _redirect(request: BaseHTTPRequestHandler, url: str, params: dict[str, str]) -> None:
        separator = "&" if urllib.parse.urlsplit(url).query else "?"
        request.send_response(302)
        request.send_header("Location", f"{url}{separator}{urllib.parse.urlencode(params)}")
        request.send_header("Content-Length", "0")
        request.end_headers()
