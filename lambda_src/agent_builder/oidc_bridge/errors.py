"""OAuth2 error answers (RFC 6749 5.2): `{"error", "error_description"}` with a 4xx.

The bridge speaks to Cognito, which parses this shape, so it is OAuth's rather than the
platform API's `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Mapping


class OAuthError(Exception):
    """A refusal the client is told about; the description never holds a secret."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError(400, "invalid_grant", description)


def invalid_client() -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        "client authentication failed",
        headers={"WWW-Authenticate": 'Basic realm="oidc-bridge"'},
    )


def invalid_token() -> OAuthError:
    return OAuthError(
        401,
        "invalid_token",
        "the access token is missing, unknown or expired",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def github_unavailable() -> OAuthError:
    return OAuthError(
        503,
        "temporarily_unavailable",
        "GitHub did not answer in time or answered with an error; try signing in again shortly",
        headers={"Retry-After": "30"},
    )


def github_bad_answer(what: str) -> OAuthError:
    return OAuthError(502, "server_error", f"GitHub's answer to {what} could not be read")
