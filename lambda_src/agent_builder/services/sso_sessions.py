"""A member's IAM Identity Center session: the device flow, and role credentials for
deployments (`POST /org/sso/device-authorization`, `GET`/`DELETE /org/sso/session`).

The routes check the caller's role (developers and admins start a flow); this takes the
organisation id, its SSO settings (services/sso_config.py) and the member's user id.

- One public sso-oidc client per organisation and SSO region, registered on first use
  and cached (its secret encrypted) until 5 minutes before clientSecretExpiresAt.
- Starting a flow replaces any session of the member: the device code is kept
  server-side, encrypted; the answer is the link and the code the member confirms.
- Reading the session polls CreateToken, but never sooner than the interval AWS gave
  (slow_down adds 5 seconds to it, as AWS asks): pending, then active (the access token
  stored encrypted, the item expiring with the token through DynamoDB TTL), or, when the
  code expired or the member refused, the session is dropped and the answer says why.
- Role credentials (services/enterprise_launcher.py): GetRoleCredentials for the
  configured account and permission-set role with the decrypted token; an active session
  past its expiry, or a token AWS refuses (expired, signed out), drops the session and is
  409 SSO_SESSION_EXPIRED; a member without a session (or with a flow not yet confirmed)
  has none, and deploys through the organisation's registered account role.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.errors import SsoNotConfigured, SsoSessionExpired
from agent_builder.gateways.identity_center import (
    ACTIVE,
    DENIED,
    EXPIRED,
    SLOW_DOWN,
    SLOW_DOWN_SECONDS,
    IdentityCenter,
    InvalidClient,
    OidcClient,
)
from agent_builder.gateways.role_chain import CustomerSession
from agent_builder.gateways.token_cipher import TokenCipher
from agent_builder.repositories.sso import SsoRepository

logger = Logger(child=True)

CLIENT_MARGIN_SECONDS = 300
NONE, PENDING = "none", "pending"
REASONS = {
    EXPIRED: "the sign-in code expired before it was confirmed: start again",
    DENIED: "the sign-in was refused in IAM Identity Center: start again",
    "token_expired": "the IAM Identity Center session expired: start a new one",
}
# Encryption-context purposes (gateways/token_cipher.py).
DEVICE_CODE, ACCESS_TOKEN, CLIENT_SECRET = "sso-device-code", "sso-access-token", "sso-client"
ORG_SUBJECT = "#organization"  # the encryption context's userId for organisation secrets
SESSION_EXPIRED_MESSAGE = (
    "your IAM Identity Center session expired: start a new one "
    "(POST /org/sso/device-authorization), or deploy again without one to go through the "
    "organisation's registered account role"
)


@dataclass(frozen=True)
class SessionView:
    status: str  # none | pending | active
    expires_at: str | None = None
    reason: str | None = None
    # This very read completed the device flow (what the caller audits, once).
    activated: bool = False

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": self.status, "expiresAt": self.expires_at}
        if self.reason:
            answer["reason"] = self.reason
        return answer


class SsoSessionService:
    def __init__(
        self,
        repository: SsoRepository,
        identity_center: IdentityCenter,
        cipher: TokenCipher,
        *,
        project: str,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._repo = repository
        self._sso = identity_center
        self._cipher = cipher
        self._project = project
        self._clock = clock

    # ---- POST /org/sso/device-authorization ---------------------------------------

    def start(
        self, organization_id: str, settings: dict[str, Any] | None, user_id: str
    ) -> dict[str, Any]:
        settings = _require(settings)
        self._cipher.require_key()  # sessions off: say so before calling IAM Identity Center
        region, now = str(settings["ssoRegion"]), self._now()
        client = self._client(organization_id, region)
        try:
            flow = self._sso.start_device_authorization(
                region, client, str(settings["startUrl"]), now=now
            )
        except InvalidClient:
            client = self._client(organization_id, region, fresh=True)
            flow = self._sso.start_device_authorization(
                region, client, str(settings["startUrl"]), now=now
            )
        self._repo.put_session(
            user_id,
            {
                "organizationId": organization_id,
                "status": PENDING,
                "ssoRegion": region,
                "deviceCode": self._cipher.encrypt(
                    flow.device_code,
                    purpose=DEVICE_CODE,
                    organization_id=organization_id,
                    user_id=user_id,
                ),
                "interval": flow.interval,
                "nextPollAt": now + flow.interval,
                "expiresAt": flow.expires_at,
                "startedAt": timeutil.iso(self._clock()),
            },
        )
        logger.info("device authorization started", organization_id=organization_id)
        return {
            "verificationUriComplete": flow.verification_uri_complete,
            "userCode": flow.user_code,
            "expiresAt": _iso(flow.expires_at),
        }

    # ---- GET /org/sso/session --------------------------------------------------

    def status(self, organization_id: str, user_id: str) -> SessionView:
        record = self._repo.session(user_id)
        now = self._now()
        if record is None or record.get("organizationId") != organization_id:
            return SessionView(NONE)
        expires = int(record.get("expiresAt") or 0)
        if record.get("status") == ACTIVE:
            if expires <= now:
                self._repo.delete_session(user_id)
                return SessionView(NONE, reason=REASONS["token_expired"])
            return SessionView(ACTIVE, _iso(expires))
        if expires <= now:
            self._repo.delete_session(user_id)
            return SessionView(NONE, reason=REASONS[EXPIRED])
        if now < float(record.get("nextPollAt") or 0):
            return SessionView(PENDING, _iso(expires))
        return self._poll(organization_id, user_id, record, now)

    def _poll(
        self, organization_id: str, user_id: str, record: dict[str, Any], now: int
    ) -> SessionView:
        region = str(record["ssoRegion"])
        stored_code = str(record["deviceCode"])
        device_code = self._cipher.decrypt(
            stored_code, purpose=DEVICE_CODE, organization_id=organization_id, user_id=user_id
        )
        try:
            answer = self._sso.create_token(
                region, self._client(organization_id, region), device_code
            )
        except InvalidClient:
            # The client this flow was started with is gone: the code cannot be redeemed.
            self._repo.delete_session(user_id)
            return SessionView(NONE, reason=REASONS[EXPIRED])
        interval = int(record.get("interval") or 5)
        if answer.status == ACTIVE and answer.access_token:
            token_expires = now + int(answer.expires_in or 0)
            stored = self._repo.activate_session(
                user_id,
                device_code=stored_code,
                values={
                    "organizationId": organization_id,
                    "status": ACTIVE,
                    "ssoRegion": region,
                    "accessToken": self._cipher.encrypt(
                        answer.access_token,
                        purpose=ACCESS_TOKEN,
                        organization_id=organization_id,
                        user_id=user_id,
                    ),
                    "expiresAt": token_expires,
                    "activatedAt": timeutil.iso(self._clock()),
                },
            )
            if not stored:  # another flow replaced this one meanwhile
                return self.status(organization_id, user_id)
            logger.info("device authorization completed", organization_id=organization_id)
            return SessionView(ACTIVE, _iso(token_expires), activated=True)
        if answer.status in (EXPIRED, DENIED):
            self._repo.delete_session(user_id)
            logger.info("device authorization ended", outcome=answer.status)
            return SessionView(NONE, reason=REASONS[answer.status])
        if answer.status == SLOW_DOWN:
            interval += SLOW_DOWN_SECONDS
        self._repo.update_poll(
            user_id, device_code=stored_code, next_poll_at=now + interval, interval=interval
        )
        return SessionView(PENDING, _iso(int(record["expiresAt"])))

    # ---- DELETE /org/sso/session -------------------------------------------------

    def drop(self, user_id: str) -> None:
        self._repo.delete_session(user_id)

    # ---- deployments (services/enterprise_launcher.py) ---------------------------

    def active_session(self, organization_id: str, user_id: str) -> dict[str, Any] | None:
        """The member's active session in this organisation, or None when they have none
        (or only a flow not yet confirmed): their deployments then go through the
        organisation's registered account role.

        A session that was active but has expired is dropped and is 409
        SSO_SESSION_EXPIRED: the member chose to deploy as themselves, so they are told
        rather than silently switched to the organisation's role; their next deployment,
        without a session, goes through that role.
        """
        record = self._repo.session(user_id)
        if (
            record is None
            or record.get("organizationId") != organization_id
            or record.get("status") != ACTIVE
        ):
            return None
        if int(record.get("expiresAt") or 0) <= self._now():
            self._repo.delete_session(user_id)
            raise SsoSessionExpired(SESSION_EXPIRED_MESSAGE)
        return record

    def deployment_session(
        self,
        organization_id: str,
        settings: dict[str, Any] | None,
        user_id: str,
        *,
        region: str,
        record: dict[str, Any] | None = None,
    ) -> CustomerSession | None:
        """Clients in the organisation's account as the member's permission set, or None
        when the member has no active session. `record`: the session `active_session`
        answered (not read again). A token AWS no longer accepts drops the session and is
        409 SSO_SESSION_EXPIRED (as a session past its expiry)."""
        settings = _require(settings)
        record = record or self.active_session(organization_id, user_id)
        if record is None:
            return None
        token = self._cipher.decrypt(
            str(record["accessToken"]),
            purpose=ACCESS_TOKEN,
            organization_id=organization_id,
            user_id=user_id,
        )
        try:
            return self._sso.session(
                str(settings["ssoRegion"]),
                token,
                account_id=str(settings["accountId"]),
                role_name=str(settings["permissionSetRole"]),
                deploy_region=region,
            )
        except SsoSessionExpired:
            self._repo.delete_session(user_id)
            raise

    # ---- the organisation's sso-oidc client ---------------------------------------

    def _client(self, organization_id: str, region: str, *, fresh: bool = False) -> OidcClient:
        now = self._now()
        cached = None if fresh else self._repo.sso_client(organization_id, region)
        if cached and int(cached.get("clientSecretExpiresAt") or 0) > now + CLIENT_MARGIN_SECONDS:
            return OidcClient(
                client_id=str(cached["clientId"]),
                client_secret=self._cipher.decrypt(
                    str(cached["clientSecret"]),
                    purpose=CLIENT_SECRET,
                    organization_id=organization_id,
                    user_id=ORG_SUBJECT,
                ),
                expires_at=int(cached["clientSecretExpiresAt"]),
            )
        client = self._sso.register_client(region, f"{self._project}-{organization_id}"[:64])
        self._repo.put_sso_client(
            organization_id,
            region,
            {
                "clientId": client.client_id,
                "clientSecret": self._cipher.encrypt(
                    client.client_secret,
                    purpose=CLIENT_SECRET,
                    organization_id=organization_id,
                    user_id=ORG_SUBJECT,
                ),
                "clientSecretExpiresAt": client.expires_at,
                "expiresAt": client.expires_at,
            },
        )
        logger.info("sso-oidc client registered", organization_id=organization_id, region=region)
        return client

    def _now(self) -> int:
        return int(self._clock().timestamp())


def _require(settings: dict[str, Any] | None) -> dict[str, Any]:
    if not settings or not settings.get("startUrl"):
        raise SsoNotConfigured(
            "the organisation has no IAM Identity Center settings: an admin sets them with "
            "PUT /org/sso"
        )
    return settings


def _iso(epoch: int) -> str:
    from datetime import UTC, timedelta

    return timeutil.iso(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch))


__all__ = ["SessionView", "SsoSessionService"]
