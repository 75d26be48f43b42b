"""The checks API Gateway's JWT authorizer makes, against the emulated user pool.

Issuer and audience come from the template's AWS::ApiGatewayV2::Authorizer
(JwtConfiguration), resolved to the local pool and client; the keys from the
emulator's JWKS endpoint (the same path Cognito serves them on); the scopes a route
requires from its AuthorizationScopes. A route with scopes takes only an access token
(`token_use` access, `client_id` the web client) whose `scope` holds one of them: an ID
token, which carries no scope, is refused there as API Gateway refuses it. A failure
says why in `www-authenticate`, as API Gateway does.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

# API Gateway tolerates no clock skew worth speaking of; a few seconds covers a slow CI.
LEEWAY_SECONDS = 5


class Unauthorized(Exception):
    """The token is missing or fails a check (the message goes to www-authenticate)."""


@dataclass(frozen=True)
class Authorizer:
    issuer: str
    audience: tuple[str, ...]
    identity_header: str  # lower-cased header name, from $request.header.<Name>


class JwtVerifier:
    def __init__(self, authorizer: Authorizer, jwks_url: str) -> None:
        self.authorizer = authorizer
        self._jwks_url = jwks_url
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            if self._keys is None or refresh:
                with urllib.request.urlopen(self._jwks_url, timeout=5) as response:  # noqa: S310 - local emulator URL
                    self._keys = KeySet.import_key_set(json.loads(response.read()))
            return self._keys

    def verify(
        self, header_value: str | None, required_scopes: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The token's claims if it passes every check; Unauthorized otherwise."""
        if not header_value or not header_value.strip():
            raise Unauthorized("no token")
        token = header_value.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if token.count(".") != 2:
            raise Unauthorized("the token is not a JWT")
        try:
            header = json.loads(_b64(token.split(".", 1)[0]))
        except ValueError:
            raise Unauthorized("the token header is not valid") from None
        if header.get("alg") != "RS256":
            raise Unauthorized("the token is not signed with RS256")
        keys = self._key_set()
        if not any(key.kid == header.get("kid") for key in keys.keys):
            keys = self._key_set(refresh=True)
        try:
            key = keys.get_by_kid(str(header.get("kid")))
            verified = jws.deserialize_compact(token, key, algorithms=["RS256"])
            claims = json.loads(verified.payload)
        except (JoseError, ValueError):
            raise Unauthorized("the token signature is invalid") from None
        if not isinstance(claims, dict):
            raise Unauthorized("the token claims are not an object")
        self._check_claims(claims)
        if required_scopes:
            self._check_scopes(claims, required_scopes)
        return claims

    def _check_scopes(self, claims: dict[str, Any], required: tuple[str, ...]) -> None:
        if claims.get("token_use") != "access":
            raise Unauthorized("the route needs an access token")
        if claims.get("client_id") not in self.authorizer.audience:
            raise Unauthorized("the access token was not issued to the web client")
        granted = str(claims.get("scope", "")).split()
        if not any(scope in granted for scope in required):
            raise Unauthorized(f"the token does not have the required scope ({' '.join(required)})")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp + LEEWAY_SECONDS < now:
            raise Unauthorized("the token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - LEEWAY_SECONDS > now:
            raise Unauthorized("the token is not valid yet")
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat - LEEWAY_SECONDS > now:
            raise Unauthorized("the token was issued in the future")
        if claims.get("iss") != self.authorizer.issuer:
            raise Unauthorized("the token does not have a valid issuer")
        # API Gateway checks aud, or client_id only when aud is absent.
        audience = claims.get("aud") if "aud" in claims else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(value in self.authorizer.audience for value in audiences):
            raise Unauthorized("the token does not have a valid audience")
        if claims.get("token_use", "id") not in ("id", "access"):
            raise Unauthorized("the token is not an id or access token")


def claims_as_api_gateway_passes_them(claims: dict[str, Any]) -> dict[str, str]:
    """API Gateway hands claims to the integration as strings (numbers too)."""
    out: dict[str, str] = {}
    for key, value in claims.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list):
            out[key] = "[" + " ".join(str(item) for item in value) + "]"
        elif isinstance(value, dict):
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
