"""Tier 3: deploying an organisation's agent into the organisation's AWS account (the
tier router's `enterprise` target), and reaching that account again to follow the run.

Which account, and as whom (lambda_src/CONTRACT.md "Enterprise runs"):
- With the member's active IAM Identity Center session (services/sso_sessions.py) and
  no `accountId`, or the SSO settings' own: the SSO settings' account, with credentials
  of the member's permission set (sso:GetRoleCredentials), `via: sso`. The run still
  needs the onboarding stack's cluster, subnets and security group: a session brings
  none, and the permission set is not asked to describe EC2 or CloudFormation, so that
  account must also be registered to the organisation (its stack's registration stored
  them, checked by the same validation as Tier 2); otherwise 409 NO_ENTERPRISE_TARGET
  saying the admin registers it.
- Otherwise: the organisation's registered account (`accountId`, default the only one;
  400 naming them when there are several; 404 for an unknown one), through the launcher
  role and that account's deployer role with the organisation's External ID and the
  member as SourceIdentity, `via: account-role`.
- Neither: 409 NO_ENTERPRISE_TARGET saying what to do.

The region is the account's: its onboarding stack built the cluster and network in one
region (the StackSet's DeploymentRegion), so a deployment runs there, and a `region`
that names another is refused (409). Without `region`, that default is held to the
organisation's allowed regions like an explicit one (403 REGION_NOT_ALLOWED, audited),
still before any call outside DynamoDB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import runs as lifecycle
from agent_builder.access import Membership
from agent_builder.errors import (
    AccountNotConnected,
    DomainError,
    NoEnterpriseTarget,
    OrgAccountNotFound,
    SsoSessionExpired,
    SsoUnavailable,
)
from agent_builder.gateways.role_chain import ACCESS_DENIED, CustomerSession, RoleChain
from agent_builder.repositories.dynamo import error_code
from agent_builder.repositories.sso import SsoRepository
from agent_builder.services.account_launcher import AccountLauncher, AccountTarget
from agent_builder.services.launches import NO_ENTERPRISE_TARGET_MESSAGE
from agent_builder.services.org_accounts import OrgAccountService
from agent_builder.services.sso_sessions import SsoSessionService

logger = Logger(child=True)

SSO, ACCOUNT_ROLE = "sso", "account-role"
RegionCheck = Callable[[Membership, str, str], None]


def _assume_failure(account_id: str) -> Callable[[Exception], str]:
    def explain(exc: Exception) -> str:
        if error_code(exc) in ACCESS_DENIED:
            return (
                f"the platform could not assume the organisation's deployer role in account "
                f"{account_id}: an admin checks that the account's onboarding stack (the "
                "StackSet's) still exists with the organisation's External ID"
            )
        return lifecycle.launch_failure_reason(exc)

    return explain


@dataclass(frozen=True)
class OrganizationAccess:
    """What reaches an organisation's accounts: its SSO settings and members' sessions,
    its registered accounts, and the launcher -> deployer role chain."""

    sso: SsoRepository
    sessions: SsoSessionService
    accounts: OrgAccountService
    chain: RoleChain

    def sso_account(self, organization_id: str) -> tuple[dict[str, Any], str] | None:
        """The SSO settings and the account their sessions deploy into, if configured."""
        settings = self.sso.settings(organization_id)
        if settings and settings.get("startUrl") and settings.get("accountId"):
            return settings, str(settings["accountId"])
        return None

    def role_session(
        self, connection: dict[str, Any], *, user_id: str, region: str, purpose: str
    ) -> CustomerSession:
        """The account's deployer role, with `user_id` as SourceIdentity."""
        return self.chain.assume_connection(
            connection, user_id=user_id, region=region, purpose=purpose
        )


class EnterpriseLauncher:
    def __init__(
        self,
        access: OrganizationAccess,
        launcher: AccountLauncher,
        *,
        region_check: RegionCheck | None = None,
    ) -> None:
        self._access = access
        self._launcher = launcher
        self._region_check = region_check

    def launch(self, request: lifecycle.LaunchRequest) -> dict[str, Any]:
        organization = request.agent.get("organizationId")
        if not organization:
            # An enterprise profile outside any organisation has no organisation account.
            raise NoEnterpriseTarget(NO_ENTERPRISE_TARGET_MESSAGE)
        target = self._target(request, str(organization))
        logger.info(
            "enterprise target chosen",
            organization_id=organization,
            account_id=target.account_id,
            region=target.region,
            via=target.fields.get("via"),
        )
        if request.region is None and self._region_check is not None:
            # An explicit region was checked by the tier router; the default is checked here.
            self._region_check(
                Membership(request.caller.user_id, organization_id=str(organization)),
                target.region,
                request.agent_id,
            )
        return self._launcher.launch(request, target)

    def _target(self, request: lifecycle.LaunchRequest, organization: str) -> AccountTarget:
        user_id, wanted = request.caller.user_id, request.account_id
        sso = self._access.sso_account(organization)
        if sso is not None and wanted in (None, sso[1]):
            record = self._access.sessions.active_session(organization, user_id)
            if record is not None:
                return self._sso_target(request, organization, sso[0], record)
        try:
            connection = self._access.accounts.account(organization, wanted)
        except OrgAccountNotFound:
            if wanted is None:
                raise NoEnterpriseTarget(NO_ENTERPRISE_TARGET_MESSAGE) from None
            raise
        region = _region(connection, request.region)
        return AccountTarget.of_connection(
            connection,
            kind="enterprise",
            region=region,
            session=lambda: self._access.role_session(
                connection, user_id=user_id, region=region, purpose="deploy"
            ),
            refused=_assume_failure(str(connection["accountId"])),
            via=ACCOUNT_ROLE,
        )

    def _sso_target(
        self,
        request: lifecycle.LaunchRequest,
        organization: str,
        settings: dict[str, Any],
        record: dict[str, Any],
    ) -> AccountTarget:
        account_id = str(settings["accountId"])
        try:
            connection = self._access.accounts.account(organization, account_id)
        except OrgAccountNotFound:
            raise NoEnterpriseTarget(
                f"your IAM Identity Center session deploys into account {account_id}, which "
                "the organisation has not registered: the platform needs its onboarding "
                "stack's cluster and network. An admin registers it (POST "
                "/org/accounts/onboarding, then the StackSet reaches that account); or drop "
                "your session (DELETE /org/sso/session) to deploy through a registered "
                "account's role"
            ) from None
        region = _region(connection, request.region)
        user_id = request.caller.user_id

        def session() -> CustomerSession:
            opened = self._access.sessions.deployment_session(
                organization, settings, user_id, region=region, record=record
            )
            if opened is None:  # not with a record given; kept for the type
                raise SsoSessionExpired("your IAM Identity Center session is gone: start one")
            return opened

        return AccountTarget.of_connection(
            connection,
            kind="enterprise",
            region=region,
            session=session,
            refused=lifecycle.launch_failure_reason,
            via=SSO,
        )


def _region(connection: dict[str, Any], wanted: str | None) -> str:
    region = str(connection["region"])
    if wanted is not None and wanted != region:
        raise NoEnterpriseTarget(
            f"the organisation's account {connection['accountId']} runs agents in {region} "
            f"(where its onboarding stack is), not {wanted}: deploy to {region}, or ask an "
            f"admin to onboard an account in {wanted}"
        )
    return region


class EnterpriseRunSessions:
    """How a member reaches the organisation's account a run lives in (every member reads
    the organisation's runs, so the reader is not necessarily who launched it): a run
    launched with an SSO session, with the reader's own active session if it reaches the
    run's account; else, for any run, the organisation's registered role for the run's
    account, with the reader as SourceIdentity; else nothing (the stored state)."""

    def __init__(self, access: OrganizationAccess) -> None:
        self._access = access

    def session(self, run: dict[str, Any], reader: str, purpose: str) -> CustomerSession | None:
        organization, account_id = str(run["organizationId"]), str(run["accountId"])
        region = str(run["region"])
        if run.get("via") == SSO:
            opened = self._reader_session(organization, account_id, reader, region)
            if opened is not None:
                return opened
        try:
            connection = self._access.accounts.account(organization, account_id)
        except OrgAccountNotFound:
            return None
        return self._access.role_session(connection, user_id=reader, region=region, purpose=purpose)

    def _reader_session(
        self, organization: str, account_id: str, reader: str, region: str
    ) -> CustomerSession | None:
        sso = self._access.sso_account(organization)
        if sso is None or sso[1] != account_id:
            return None
        try:
            return self._access.sessions.deployment_session(
                organization, sso[0], reader, region=region
            )
        except (SsoSessionExpired, SsoUnavailable):
            # The reader's session cannot serve; the organisation's role may.
            return None

    def unreachable(self, run: dict[str, Any]) -> DomainError:
        session = " (and no IAM Identity Center session of yours reaches it)"
        return AccountNotConnected(
            f"this run is in AWS account {run.get('accountId')}, which is no longer "
            f"registered to the organisation{session if run.get('via') == SSO else ''}: an "
            "admin registers it again (POST /org/accounts/onboarding) to follow the run and "
            "read its logs"
        )


__all__ = [
    "ACCOUNT_ROLE",
    "SSO",
    "EnterpriseLauncher",
    "EnterpriseRunSessions",
    "OrganizationAccess",
]
