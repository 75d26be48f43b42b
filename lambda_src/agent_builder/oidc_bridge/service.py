"""The bridge's protocol: Cognito is its only client, GitHub its only upstream.

authorize: Cognito's client id and its exact `/oauth2/idpresponse` redirect, or a 400
  (never a redirect to an unchecked URI); the browser goes on to GitHub with a state of
  ours and a PKCE challenge whose verifier only the bridge holds.
callback: GitHub's code and our state (single use) become a bridge code for Cognito's
  redirect, with Cognito's own state; GitHub's code never reaches the browser's next hop.
token: Cognito authenticates (constant-time compare against Secrets Manager); the bridge
  code is taken once; GitHub's code is exchanged with the verifier, so a code replayed
  through the bridge or lifted from the redirect is worth nothing; the user's primary
  e-mail must be verified; the ID token is signed by KMS and lives five minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent_builder.oidc_bridge import errors
from agent_builder.oidc_bridge.github import (
    GitHubBadAnswer,
    GitHubGateway,
    GitHubRefused,
    GitHubUnavailable,
)
from agent_builder.oidc_bridge.signing import ALGORITHM, KmsSigner, b64url
from agent_builder.repositories.bridge_grants import ACCESS_TOKEN, CODE, STATE, GrantStore

STATE_SECONDS = 600  # the user's time on GitHub's consent page
CODE_SECONDS = 300
TOKEN_SECONDS = 300  # ID and access tokens: Cognito uses them at once
SECRET_CACHE_SECONDS = 300  # a rotated secret is picked up within five minutes
SCOPES = ("openid", "email", "profile")
CLAIMS = ("sub", "email", "email_verified", "name", "picture")


@dataclass(frozen=True)
class BridgeConfig:
    issuer: str
    client_id: str
    redirect_uri: str  # Cognito's https://<domain>/oauth2/idpresponse

    @property
    def callback_url(self) -> str:
        """Where GitHub sends the browser back: the OAuth app's callback URL."""
        return f"{self.issuer}/callback"


class CachedSecret:
    """A Secrets Manager string, read on first use and again after `max_age` seconds."""

    def __init__(
        self, secretsmanager: Any, secret_id: str, *, max_age: float = SECRET_CACHE_SECONDS
    ) -> None:
        self._client = secretsmanager
        self._id = secret_id
        self._max_age = max_age
        self._value: str | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def value(self) -> str:
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at > self._max_age:
                self._value = str(self._client.get_secret_value(SecretId=self._id)["SecretString"])
                self._read_at = time.monotonic()
            return self._value


@dataclass(frozen=True)
class Redirect:
    location: str


def _s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


def _with_query(url: str, params: Mapping[str, str]) -> str:
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{separator}{urllib.parse.urlencode(params)}"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class OidcBridge:
    def __init__(
        self,
        *,
        config: BridgeConfig,
        grants: GrantStore,
        github: GitHubGateway,
        signer: KmsSigner,
        client_secret: CachedSecret,
        github_client_secret: CachedSecret,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._grants = grants
        self._github = github
        self._signer = signer
        self._client_secret = client_secret
        self._github_secret = github_client_secret
        self._clock = clock

    # ---- discovery ----------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        issuer = self._config.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks.json",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["iss", "aud", "exp", "iat", "nonce", *CLAIMS],
        }

    def jwks(self) -> dict[str, Any]:
        return self._signer.jwks()

    # ---- authorize and GitHub's callback --------------------------------------------

    def authorize(self, query: Mapping[str, str]) -> Redirect:
        config = self._config
        # Checked before anything is redirected: an unknown client or redirect gets a 400.
        if not _same(query.get("client_id", ""), config.client_id):
            raise errors.OAuthError(400, "unauthorized_client", "unknown client_id")
        if query.get("redirect_uri", "") != config.redirect_uri:
            raise errors.invalid_request("redirect_uri is not the registered one")
        state = query.get("state", "")
        if not state or len(state) > 2048:
            raise errors.invalid_request("state is required (at most 2048 characters)")
        if query.get("response_type") != "code":
            return self._refuse(state, "unsupported_response_type", "only response_type=code")
        if "openid" not in query.get("scope", "").split():
            return self._refuse(state, "invalid_scope", "the scope must include openid")
        nonce = query.get("nonce", "")
        if len(nonce) > 2048:
            return self._refuse(state, "invalid_request", "nonce is too long")
        ours, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        self._grants.put(
            STATE,
            ours,
            {"cognitoState": state, "nonce": nonce, "codeVerifier": verifier},
            lifetime=STATE_SECONDS,
        )
        return Redirect(
            self._github.authorize_url(
                redirect_uri=config.callback_url, state=ours, code_challenge=_s256(verifier)
            )
        )

    def callback(self, query: Mapping[str, str]) -> Redirect:
        state = query.get("state", "")
        pending = self._grants.take(STATE, state) if state else None
        if pending is None:
            # No trustworthy place to send the browser: say so here.
            raise errors.invalid_request(
                "unknown, used or expired state: start the sign-in again from the sign-in page"
            )
        if query.get("error"):
            # The user declined on GitHub (or GitHub refused): Cognito shows its error page.
            return self._refuse(
                pending["cognitoState"], "access_denied", "GitHub did not authorize the sign-in"
            )
        github_code = query.get("code", "")
        if not github_code:
            raise errors.invalid_request("GitHub's callback carries no code")
        ours = secrets.token_urlsafe(32)
        self._grants.put(
            CODE,
            ours,
            {
                "githubCode": github_code,
                "codeVerifier": pending["codeVerifier"],
                "nonce": pending["nonce"],
            },
            lifetime=CODE_SECONDS,
        )
        return Redirect(
            _with_query(self._config.redirect_uri, {"code": ours, "state": pending["cognitoState"]})
        )

    def _refuse(self, state: str, error: str, description: str) -> Redirect:
        return Redirect(
            _with_query(
                self._config.redirect_uri,
                {"error": error, "error_description": description, "state": state},
            )
        )

    # ---- token and userinfo ---------------------------------------------------------

    def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        self._authenticate(form, authorization)
        if form.get("grant_type") != "authorization_code":
            raise errors.OAuthError(
                400, "unsupported_grant_type", "only grant_type=authorization_code"
            )
        code = form.get("code", "")
        if not code:
            raise errors.invalid_request("code is required")
        if form.get("redirect_uri", self._config.redirect_uri) != self._config.redirect_uri:
            raise errors.invalid_grant("redirect_uri does not match the authorization request")
        grant = self._grants.take(CODE, code)
        if grant is None:
            raise errors.invalid_grant("the code is unknown, used or expired")
        try:
            github_token = self._github.exchange_code(
                code=grant["githubCode"],
                redirect_uri=self._config.callback_url,
                code_verifier=grant["codeVerifier"],
                client_secret=self._github_secret.value(),
            )
            user = self._github.user(github_token)
        except GitHubRefused:
            raise errors.invalid_grant("GitHub refused the sign-in; start it again") from None
        except GitHubUnavailable:
            raise errors.github_unavailable() from None
        except GitHubBadAnswer as exc:
            raise errors.github_bad_answer(str(exc)) from None
        if not user.primary_email or not user.primary_email_verified:
            raise errors.invalid_grant(
                "the GitHub account's primary e-mail address is not verified: verify it on "
                "GitHub (Settings > Emails), then sign in again"
            )
        now = int(self._clock())
        claims: dict[str, Any] = {
            "sub": str(user.id),
            "email": user.primary_email,
            "email_verified": True,
            "name": user.name or user.login,
            "preferred_username": user.login,
        }
        if user.avatar_url:
            claims["picture"] = user.avatar_url
        id_token = self._signer.sign_jwt(
            {
                "iss": self._config.issuer,
                "aud": self._config.client_id,
                "iat": now,
                "exp": now + TOKEN_SECONDS,
                "auth_time": now,
                **({"nonce": grant["nonce"]} if grant["nonce"] else {}),
                **claims,
            }
        )
        access_token = secrets.token_urlsafe(32)
        self._grants.put(ACCESS_TOKEN, access_token, claims, lifetime=TOKEN_SECONDS)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "id_token": id_token,
            "scope": " ".join(SCOPES),
        }

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.invalid_token()
        claims = self._grants.get(ACCESS_TOKEN, token.strip())
        if claims is None:
            raise errors.invalid_token()
        return claims

    def _authenticate(self, form: Mapping[str, str], authorization: str | None) -> None:
        """client_secret_basic or client_secret_post, exactly one of them."""
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() == "basic":
            if "client_secret" in form:
                raise errors.invalid_request("use one client authentication method, not two")
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise errors.invalid_client() from None
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, secret = urllib.parse.unquote(raw_id), urllib.parse.unquote(raw_secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        # Both compared in full, whatever the first says (no timing difference).
        id_ok = _same(client_id, self._config.client_id)
        secret_ok = _same(secret, self._client_secret.value())
        if not (id_ok and secret_ok) or not secret:
            raise errors.invalid_client()
        if form.get("client_id", client_id) != client_id:
            raise errors.invalid_request("client_id in the body differs from the authenticated one")
