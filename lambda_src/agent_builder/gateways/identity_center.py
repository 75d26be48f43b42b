"""IAM Identity Center for a member's deployments: the OIDC device flow (`sso-oidc`) and
role credentials (`sso`).

RegisterClient, StartDeviceAuthorization, CreateToken and GetRoleCredentials are
unauthenticated (bearer) APIs: botocore's model marks them `smithy.api#noAuth`, so they
need no IAM permission and no signature; a client is built per SSO region from the one
factory (in local mode AWS_ENDPOINT_URL_SSO_OIDC / _SSO point at the stand-ins). Tokens,
device codes and client secrets pass through here and are never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import clients
from agent_builder.errors import SsoSessionExpired, SsoUnavailable
from agent_builder.gateways.role_chain import CustomerSession
from agent_builder.repositories.dynamo import error_code

logger = Logger(child=True)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# What AWS asks a client to add to its polling interval on SlowDownException.
SLOW_DOWN_SECONDS = 5
PENDING, SLOW_DOWN, EXPIRED, DENIED, ACTIVE = "pending", "slow_down", "expired", "denied", "active"


@dataclass(frozen=True)
class OidcClient:
    client_id: str
    client_secret: str
    expires_at: int  # clientSecretExpiresAt, epoch seconds


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri_complete: str
    expires_at: int  # epoch seconds
    interval: int  # seconds between CreateToken calls


@dataclass(frozen=True)
class TokenAnswer:
    """CreateToken's outcome: `status` one of pending, slow_down, expired, denied, active."""

    status: str
    access_token: str | None = None
    expires_in: int | None = None

    def __repr__(self) -> str:  # never show the token, even in a traceback or a test diff
        return f"TokenAnswer(status={self.status!r}, expires_in={self.expires_in!r})"


class InvalidClient(Exception):
    """The registered client is unknown or expired: register a new one."""


class IdentityCenter:
    def __init__(self, client_in: Callable[[str, str], Any] | None = None) -> None:
        # The factory's clients (a region each: IAM Identity Center's, not the platform's).
        self._client_in = client_in or clients.client_in

    def register_client(self, region: str, name: str) -> OidcClient:
        answer = self._call(
            region, "sso-oidc", "register_client", clientName=name, clientType="public"
        )
        return OidcClient(
            client_id=answer["clientId"],
            client_secret=answer["clientSecret"],
            expires_at=int(answer["clientSecretExpiresAt"]),
        )

    def start_device_authorization(
        self, region: str, client: OidcClient, start_url: str, *, now: int
    ) -> DeviceAuthorization:
        from botocore.exceptions import ClientError

        try:
            answer = self._client_in("sso-oidc", region).start_device_authorization(
                clientId=client.client_id, clientSecret=client.client_secret, startUrl=start_url
            )
        except ClientError as exc:
            if error_code(exc) in ("InvalidClientException", "UnauthorizedClientException"):
                raise InvalidClient() from None
            raise self._unavailable("StartDeviceAuthorization", exc) from None
        return DeviceAuthorization(
            device_code=answer["deviceCode"],
            user_code=answer["userCode"],
            verification_uri_complete=answer["verificationUriComplete"],
            expires_at=now + int(answer["expiresIn"]),
            interval=int(answer.get("interval") or 5),
        )

    def create_token(self, region: str, client: OidcClient, device_code: str) -> TokenAnswer:
        from botocore.exceptions import ClientError

        try:
            answer = self._client_in("sso-oidc", region).create_token(
                clientId=client.client_id,
                clientSecret=client.client_secret,
                grantType=DEVICE_GRANT,
                deviceCode=device_code,
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "AuthorizationPendingException":
                return TokenAnswer(PENDING)
            if code == "SlowDownException":
                return TokenAnswer(SLOW_DOWN)
            if code in ("ExpiredTokenException", "InvalidGrantException"):
                return TokenAnswer(EXPIRED)
            if code == "AccessDeniedException":
                return TokenAnswer(DENIED)
            if code in ("InvalidClientException", "UnauthorizedClientException"):
                raise InvalidClient() from None
            raise self._unavailable("CreateToken", exc) from None
        return TokenAnswer(
            ACTIVE, access_token=answer["accessToken"], expires_in=int(answer["expiresIn"])
        )

    def role_credentials(
        self, region: str, access_token: str, *, account_id: str, role_name: str
    ) -> dict[str, Any]:
        """STS-shaped credentials of the permission set's role in the account."""
        from botocore.exceptions import ClientError

        try:
            answer = self._client_in("sso", region).get_role_credentials(
                accessToken=access_token, accountId=account_id, roleName=role_name
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "UnauthorizedException":
                raise SsoSessionExpired(
                    "your IAM Identity Center session expired or was signed out: start a new "
                    "one (POST /org/sso/device-authorization)"
                ) from None
            if code in ("ForbiddenException", "ResourceNotFoundException"):
                raise SsoUnavailable(
                    f"IAM Identity Center gives you no access to role {role_name} in account "
                    f"{account_id}: ask your admin to assign you the permission set"
                ) from None
            raise self._unavailable("GetRoleCredentials", exc) from None
        role = answer["roleCredentials"]
        return {
            "AccessKeyId": role["accessKeyId"],
            "SecretAccessKey": role["secretAccessKey"],
            "SessionToken": role["sessionToken"],
            "Expiration": int(role["expiration"]) // 1000,  # milliseconds since the epoch
        }

    def session(
        self, region: str, access_token: str, *, account_id: str, role_name: str, deploy_region: str
    ) -> CustomerSession:
        """ECS, Logs (...) clients acting as the member's role in the account."""
        credentials = self.role_credentials(
            region, access_token, account_id=account_id, role_name=role_name
        )
        return CustomerSession(credentials, region=deploy_region)

    def _call(self, region: str, service: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return getattr(self._client_in(service, region), operation)(**kwargs)
        except ClientError as exc:
            raise self._unavailable(operation, exc) from None

    @staticmethod
    def _unavailable(operation: str, exc: Exception) -> SsoUnavailable:
        code = error_code(exc)
        logger.warning("identity center refused a call", operation=operation, error=code)
        return SsoUnavailable(
            f"IAM Identity Center refused {operation} ({code}): check the SSO region and start URL"
        )


__all__ = [
    "ACTIVE",
    "DENIED",
    "EXPIRED",
    "PENDING",
    "SLOW_DOWN",
    "SLOW_DOWN_SECONDS",
    "DeviceAuthorization",
    "IdentityCenter",
    "InvalidClient",
    "OidcClient",
    "TokenAnswer",
]
