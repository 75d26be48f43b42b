"""Tier 3: an organisation's AWS accounts (what `POST /org/accounts/onboarding`, `GET
/org/accounts` and `DELETE /org/accounts/{accountId}` do, and the organisation branch of
registration messages).

The routes check the caller's role (admins); this takes the organisation id and the
admin's user id. The organisation has ONE External ID and ONE registration token, which
every account the organisation's StackSet reaches registers with (many accounts, so the
token is not consumed; it stays valid until replaced). Each onboarding answer carries a
fresh token (only its hash is kept, so it cannot be shown twice) and that replaces the
previous one: accounts already registered stay connected, new accounts register with the
newest token, so an admin who fetched a new link updates the StackSet's RegistrationToken
parameter. The External ID rotates only while no account is connected (the connected
roles trust it).

Registration messages reach here through services/registration.py, which authenticates
them exactly as for a user (CloudFormation's ResponseURL, a stack ARN; then the token, or
the stack already bound to that account) and validates the role the same way
(ConnectionValidator: assume with the External ID, probe what a deployment uses). A
Delete disconnects only the account whose bound stack and physical id it names, once the
stack itself says it is being deleted.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.audit import AuditEvent
from agent_builder.errors import AccountAlreadyConnected, InvalidRegion, OrgAccountNotFound
from agent_builder.repositories.org_accounts import (
    OrgAccountChanged,
    OrgAccountsRepository,
    org_key,
)
from agent_builder.services.accounts import (
    Candidate,
    ConnectionValidator,
    launch_stack_url,
    new_external_id,
    registers_automatically,
    template_outdated,
    token_digest,
)
from agent_builder.validation import is_aws_region

logger = Logger(child=True)

TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, the template's RegistrationToken pattern
CONNECTED = "connected"
# (organisation id, event) -> the event's items of the change's transaction.
AuditItems = Callable[[str, AuditEvent], Sequence[dict[str, Any]]]


class OrgAccountService:
    def __init__(
        self,
        repository: OrgAccountsRepository,
        validator: ConnectionValidator,
        *,
        project: str,
        platform_account_id: str,
        platform_region: str,
        registration_topic_arn: str,
        template_url: str,
        organization_template_url: str,
        template_version: str,
        audit_items: AuditItems | None = None,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._repo = repository
        self._validator = validator
        self._project = project
        self._platform_account = platform_account_id
        self._platform_region = platform_region
        self._topic = registration_topic_arn
        self._template_url = template_url
        self._organization_template_url = organization_template_url
        self._version = template_version
        self._audit_items = audit_items
        self._clock = clock

    # ---- POST /org/accounts/onboarding -----------------------------------------------

    def onboarding(
        self,
        organization_id: str,
        admin_user_id: str,
        *,
        region: str | None = None,
        rotate_external_id: bool = False,
        allowed_regions: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The organisation's External ID and Launch Stack link. `allowed_regions`: the
        organisation's allowedRegions (empty: no limit), prefilled as the template's
        AllowedRegions, so every account's deployer role is denied other regions in IAM."""
        region = region or self._platform_region
        if not is_aws_region(region):
            raise InvalidRegion(f"{region!r} is not an AWS region where ECS is available")
        for allowed in allowed_regions:
            if not is_aws_region(allowed):
                raise InvalidRegion(f"{allowed!r} is not an AWS region where ECS is available")
        now = timeutil.iso(self._clock())
        token = secrets.token_urlsafe(TOKEN_BYTES)
        digest = token_digest(token)
        record = self._repo.get(organization_id)
        event = AuditEvent(admin_user_id, "org.accounts.onboarding", details={"region": region})
        if record is None:
            external_id = new_external_id()
            if not self._repo.create(
                organization_id, external_id=external_id, token_digest=digest, now_iso=now
            ):
                record = self._repo.get(organization_id) or {}
            else:
                record = {"externalId": external_id}
        if rotate_external_id and record.get("accounts"):
            raise AccountAlreadyConnected(
                f"{len(record['accounts'])} account(s) are connected with this External ID: "
                "disconnect them before rotating it"
            )
        external_id = str(record["externalId"])
        new_id = new_external_id() if rotate_external_id else None
        try:
            self._repo.issue_token(
                organization_id,
                token_digest=digest,
                now_iso=now,
                new_external_id=new_id,
                old_external_id=external_id,
                extra_items=self._audit(
                    organization_id,
                    event.with_details(rotated=bool(new_id)),
                ),
            )
        except OrgAccountChanged:
            raise AccountAlreadyConnected(
                "an account was connected or the External ID changed meanwhile; try again"
            ) from None
        return self._onboarding_view(new_id or external_id, token, region, allowed_regions)

    def _onboarding_view(
        self, external_id: str, token: str, region: str, allowed_regions: Sequence[str] = ()
    ) -> dict[str, Any]:
        automatic = registers_automatically(self._topic, region)
        # Left out when empty: the template's default is no limit.
        limit = {"AllowedRegions": ",".join(allowed_regions)} if allowed_regions else {}
        return {
            "externalId": external_id,
            "region": region,
            "registration": "automatic" if automatic else "manual",
            # The StackSet wrapper, launched once in the management (or delegated
            # administrator) account; it deploys the customer template across the OUs.
            "launchStackUrl": launch_stack_url(
                region,
                self._organization_template_url,
                f"{self._project}-organization-onboarding",
                {
                    "DeploymentRegion": region,
                    "ExternalId": external_id,
                    "RegistrationToken": token,
                    "PlatformAccountId": self._platform_account,
                    "RegistrationTopicArn": "default" if automatic else "",
                    **limit,
                },
            ),
            # What a StackSet deploys in each account, for admins who create it themselves.
            "stackSetTemplateUrl": self._template_url,
            "organizationTemplateUrl": self._organization_template_url,
        }

    # ---- GET /org/accounts, DELETE /org/accounts/{accountId} ----------------------------

    def accounts(self, organization_id: str) -> list[dict[str, Any]]:
        record = self._repo.get(organization_id) or {}
        connections = dict(record.get("accounts") or {})
        return [self._view(connections[key]) for key in sorted(connections)]

    def account(self, organization_id: str, account_id: str | None) -> dict[str, Any]:
        """The stored connection a deployment uses (`accountId` None: the only one), with
        the organisation's `externalId` its role is assumed with (never shown)."""
        from agent_builder.errors import InvalidInput

        record = self._repo.get(organization_id) or {}
        connections = {
            key: {**connection, "externalId": record["externalId"]}
            for key, connection in dict(record.get("accounts") or {}).items()
        }
        if account_id is None:
            if len(connections) == 1:
                return dict(next(iter(connections.values())))
            if not connections:
                raise OrgAccountNotFound(
                    "the organisation has no connected AWS account: an admin connects one "
                    "(POST /org/accounts/onboarding)"
                )
            raise InvalidInput(
                f"choose accountId: the organisation has {', '.join(sorted(connections))}"
            )
        if account_id not in connections:
            raise OrgAccountNotFound(
                f"AWS account {account_id} is not connected to the organisation"
            )
        return dict(connections[account_id])

    def disconnect(self, organization_id: str, admin_user_id: str, account_id: str) -> None:
        try:
            self._repo.disconnect(
                organization_id,
                account_id,
                extra_items=self._audit(
                    organization_id,
                    AuditEvent(
                        admin_user_id,
                        "org.account.disconnect",
                        account_id=account_id,
                        details={"via": "api"},
                    ),
                ),
            )
        except OrgAccountChanged:
            raise OrgAccountNotFound(
                f"AWS account {account_id} is not connected to the organisation"
            ) from None
        logger.info("organisation account disconnected", account_id=account_id, via="api")

    def _view(self, connection: dict[str, Any]) -> dict[str, Any]:
        version = str(connection.get("templateVersion") or "unknown")
        return {
            "accountId": connection.get("accountId"),
            "region": connection.get("region"),
            "status": CONNECTED,
            "templateVersion": version,
            "templateOutdated": template_outdated(version, self._version),
            "connectedAt": connection.get("connectedAt"),
        }

    # ---- registration messages (services/registration.py) -------------------------------

    def token_matches(self, record: dict[str, Any], token: object) -> str | None:
        """The token's digest if it is the organisation's current token (multi-use)."""
        stored = record.get("registrationTokenHash")
        if not isinstance(token, str) or len(token) != 43 or not isinstance(stored, str):
            return None
        digest = token_digest(token)
        return digest if hmac.compare_digest(digest.encode(), stored.encode()) else None

    def register(
        self,
        organization_id: str,
        candidate: Candidate,
        *,
        stack_id: str,
        physical_id: str,
        token_digest: str | None,
        patience: float,
    ) -> None:
        """Validate the role, then store that account's connection bound to the stack.
        RoleValidationFailed (422) or OrgAccountChanged (the token was replaced, or the
        account is bound to another stack) leave everything as it was."""
        connection = self._validator.validate(
            candidate, f"org-{organization_id}", patience=patience
        )
        connection.update(
            {
                "connectedAt": timeutil.iso(self._clock()),
                "registrationStackId": stack_id,
                "registrationPhysicalId": physical_id,
            }
        )
        self._repo.connect(
            organization_id,
            external_id=candidate.external_id,
            connection={k: v for k, v in connection.items() if v is not None},
            token_digest=token_digest,
            bound_stack_id=None if token_digest else stack_id,
            extra_items=self._audit(
                organization_id,
                AuditEvent(
                    org_key(organization_id),
                    "org.account.connect",
                    account_id=candidate.account_id,
                    details={"region": candidate.region, "via": "registration"},
                ),
            ),
        )
        logger.info("organisation account connected", account_id=candidate.account_id)

    def unregister(
        self, organization_id: str, account_id: str, *, stack_id: str, physical_id: str
    ) -> bool:
        """Disconnect the account bound to this stack and physical id; False if it is not."""
        try:
            self._repo.disconnect(
                organization_id,
                account_id,
                stack_id=stack_id,
                physical_id=physical_id,
                extra_items=self._audit(
                    organization_id,
                    AuditEvent(
                        org_key(organization_id),
                        "org.account.disconnect",
                        account_id=account_id,
                        details={"via": "registration"},
                    ),
                ),
            )
        except OrgAccountChanged:
            return False
        logger.info("organisation account disconnected", account_id=account_id, via="stack")
        return True

    def _audit(self, organization_id: str, event: AuditEvent) -> Sequence[dict[str, Any]]:
        """The organisation's audit record as a transaction item, through the hook the
        organisations module provides (its org-scoped trail); none without one."""
        if self._audit_items is None:
            return ()
        return tuple(self._audit_items(organization_id, event))


__all__ = ["OrgAccountService"]
