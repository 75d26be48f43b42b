"""GitHub sign-in in local mode: the OIDC bridge's own handler, its GitHub stand-in, and
what Cognito and the browser do between them.

`BridgeFlow` plays Cognito (the bridge's one client, with its client secret) and the
browser (following the redirects): authorize -> GitHub (the stand-in, over HTTP) ->
callback -> token, then verifies the ID token against the bridge's JWKS, as Cognito does.
The bridge's handler is invoked in this process with API Gateway payload v2 events (its
HTTP API is not served locally). `LocalGitHub` sets it up from the synthesized templates
(local mode runs it when the Identity stack has the bridge) and offers
`github_claims(email)`, which `/_local/sign-in` calls for `provider: "github"`.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BRIDGE_HANDLER = "handlers.oidc_bridge.handler"
CLAIMS = ("sub", "email", "email_verified", "name", "picture")


class BridgeFlowError(Exception):
    """A step of the sign-in did not answer as the protocol says; the message says which."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


def bridge_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    """The payload v2 event API Gateway gives the bridge's function for one request."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query or {}),
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
            },
            "requestId": secrets.token_hex(8),
            "routeKey": f"{method} {path}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        event["body"] = body
    return event


class BridgeFlow:
    def __init__(
        self,
        invoke: Callable[[dict[str, Any]], Any],
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
    ) -> None:
        self._invoke = invoke
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> Answer:
        result = self._invoke(bridge_event(method, path, query=query, headers=headers, body=body))
        return Answer(
            status=int(result["statusCode"]),
            headers={str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()},
            body=str(result.get("body") or ""),
        )

    # ---- the steps ----------------------------------------------------------------

    def authorize(self, *, state: str, nonce: str, **overrides: str) -> Answer:
        """Cognito sends the browser to the bridge's /authorize."""
        query = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            **overrides,
        }
        return self.call("GET", "/authorize", query=query)

    @staticmethod
    def visit_github(location: str, login: str) -> str:
        """The browser on GitHub's consent page, signed in as `login`: where GitHub sends it."""
        url = f"{location}&{urllib.parse.urlencode({'login': login})}"

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(url, timeout=10)
        except urllib.error.HTTPError as exc:
            if exc.code == 302 and exc.headers.get("Location"):
                return str(exc.headers["Location"])
            raise BridgeFlowError(f"GitHub's authorize page answered {exc.code}") from None
        raise BridgeFlowError("GitHub's authorize page did not redirect")

    def callback(self, location: str) -> Answer:
        """The browser arrives at the bridge's /callback (the GitHub app's callback URL)."""
        parsed = urllib.parse.urlsplit(location)
        path = parsed.path.removeprefix(urllib.parse.urlsplit(self.issuer).path)
        return self.call("GET", path, query=dict(urllib.parse.parse_qsl(parsed.query)))

    def token(self, code: str, *, client_secret: str | None = None, **fields: str) -> Answer:
        """Cognito redeems the bridge's code (client_secret_post)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "client_secret": self.client_secret if client_secret is None else client_secret,
            **fields,
        }
        return self.call(
            "POST",
            "/token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urllib.parse.urlencode(form),
        )

    def code_for(self, email: str) -> tuple[str, str]:
        """Authorize -> GitHub -> callback: (the bridge's code for Cognito, the nonce)."""
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        start = self.authorize(state=state, nonce=nonce)
        if start.status != 302:
            raise BridgeFlowError(f"/authorize answered {start.status}: {start.body}")
        back = self.callback(self.visit_github(start.location, email))
        if back.status != 302:
            raise BridgeFlowError(f"/callback answered {back.status}: {back.body}")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back.location).query))
        if query.get("state") != state or "code" not in query:
            raise BridgeFlowError(f"the bridge sent Cognito an error: {query.get('error')}")
        return query["code"], nonce

    def sign_in(self, email: str) -> dict[str, Any]:
        """The whole flow for the GitHub user with this e-mail: the verified ID token's claims."""
        code, nonce = self.code_for(email)
        answer = self.token(code)
        if answer.status != 200:
            raise BridgeFlowError(f"/token answered {answer.status}: {answer.body}")
        claims = self.verify(answer.json()["id_token"], nonce=nonce)
        return {name: claims[name] for name in CLAIMS if name in claims}

    def verify(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """What Cognito checks: signature against the bridge's JWKS, iss, aud, exp, nonce."""
        from joserfc import jwt
        from joserfc.jwk import KeySet

        keys = self.call("GET", "/jwks.json")
        token = jwt.decode(id_token, KeySet.import_key_set(keys.json()), algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
            sub={"essential": True},
        ).validate(token.claims)
        return dict(token.claims)


class LocalGitHub:
    """The bridge from the templates, run here, with the GitHub stand-in as its GitHub."""

    def __init__(self, flow: BridgeFlow, standin: Any) -> None:
        self.flow = flow
        self.standin = standin

    @classmethod
    def start(
        cls, stacks: Any, resolver: Any, emulator: Any, *, region: str, account_id: str
    ) -> LocalGitHub | None:
        """None when the templates have no bridge (GitHub sign-in not configured)."""
        import os

        from local_mode.assembly import TemplateError, stack_with_handler
        from local_mode.functions import Functions, function_specs
        from local_mode.github_standin import GitHubStandIn

        try:
            stack, _ = stack_with_handler(stacks, BRIDGE_HANDLER)
        except TemplateError:
            return None
        spec = function_specs(resolver, stack, required=BRIDGE_HANDLER)[BRIDGE_HANDLER]
        environment = dict(spec.environment)
        standin = GitHubStandIn(
            client_id=environment["GITHUB_CLIENT_ID"], client_secret=secrets.token_urlsafe(24)
        )
        standin.start()
        # What differs here: GitHub is the stand-in, and the issuer is a local address (the
        # bridge's HTTP API is not served; BridgeFlow invokes its handler in this process).
        environment.update(
            GITHUB_URL=standin.url,
            GITHUB_API_URL=standin.url,
            BRIDGE_ISSUER="http://127.0.0.1/local-github-oidc-bridge",
        )
        environment.pop("POWERTOOLS_SERVICE_NAME", None)
        os.environ.update(environment)
        sm = emulator.client("secretsmanager")
        # The owner creates this secret in AWS; here it holds the stand-in's app secret.
        sm.create_secret(
            Name=environment["GITHUB_CLIENT_SECRET_NAME"], SecretString=standin.client_secret
        )
        client_secret = sm.get_secret_value(SecretId=environment["BRIDGE_CLIENT_SECRET_ARN"])[
            "SecretString"
        ]
        functions = Functions({BRIDGE_HANDLER: spec}, region=region, account_id=account_id)
        functions.load_all()
        flow = BridgeFlow(
            lambda event: functions.invoke(BRIDGE_HANDLER, event),
            issuer=environment["BRIDGE_ISSUER"],
            client_id=environment["BRIDGE_CLIENT_ID"],
            client_secret=str(client_secret),
            redirect_uri=environment["BRIDGE_REDIRECT_URI"],
        )
        return cls(flow, standin)

    def github_claims(self, email: str) -> dict[str, Any]:
        """Sign in as the GitHub user with this e-mail, through the bridge: the claims of
        the ID token it minted, verified against its JWKS (sub, email, email_verified,
        name, picture)."""
        return self.flow.sign_in(email)

    def stop(self) -> None:
        self.standin.stop()
