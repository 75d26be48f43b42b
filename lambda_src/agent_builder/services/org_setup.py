"""What an organisation's admins and members set up beyond membership: SSO sign-in and
IAM Identity Center sessions (`/org/sso...`), and the organisation's AWS accounts
(`/org/accounts...`).

The routes' role check has already run (agent_builder/access.py: admins configure,
developers and admins start sessions, every member reads); this takes the caller's
membership, calls the mechanism (services/sso_config.py, sso_sessions.py,
org_accounts.py) with the organisation's id, and audits each change in the
organisation's trail and the actor's: in the same transaction as the change where the
change is one (SSO settings, account disconnection), right after it otherwise.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from agent_builder.access import Membership
from agent_builder.audit import AuditEvent
from agent_builder.errors import NotInOrganization, SsoNotConfigured
from agent_builder.gateways.identity_center import ACTIVE
from agent_builder.repositories.audit import AuditLog
from agent_builder.services.org_accounts import OrgAccountService
from agent_builder.services.sso_config import SsoConfigService, SsoRequest
from agent_builder.services.sso_sessions import SsoSessionService

logger = Logger(child=True)


def _organization(member: Membership) -> str:
    if member.organization_id is None:  # the policy admits members only
        raise NotInOrganization("you are not a member of an organisation")
    return member.organization_id


class OrgSetupService:
    def __init__(
        self,
        *,
        sso_config: SsoConfigService,
        sso_sessions: SsoSessionService,
        org_accounts: OrgAccountService,
        audit: AuditLog,
    ) -> None:
        self._sso = sso_config
        self._sessions = sso_sessions
        self._accounts = org_accounts
        self._audit = audit

    def _event(
        self, member: Membership, action: str, *, reason: str | None = None, **details: Any
    ) -> AuditEvent:
        return AuditEvent(
            member.user_id,
            action,
            reason=reason,
            organization_id=_organization(member),
            details=details,
        )

    def _record(self, event: AuditEvent) -> None:
        # After a change that is already made: a lost record is logged, not raised.
        try:
            self._audit.record(event)
        except Exception:
            logger.exception("could not write the audit record", action=event.action)

    # ---- SSO sign-in ---------------------------------------------------------------

    def sso(self, member: Membership) -> dict[str, Any] | None:
        """The organisation's SSO settings as GET /org shows them, or None."""
        return self._sso.get(_organization(member))

    def configure_sso(self, member: Membership, request: SsoRequest) -> dict[str, Any]:
        organization = _organization(member)
        event = self._event(
            member,
            "org.sso.configure",
            target=organization,
            emailDomains=",".join(sorted(request.email_domains))[:400],
        )
        return self._sso.configure(
            organization,
            member.user_id,
            request,
            extra_items=self._audit.transaction_items(event),
        )

    def remove_sso(self, member: Membership) -> None:
        organization = _organization(member)
        event = self._event(member, "org.sso.remove", target=organization)
        if not self._sso.remove(organization, extra_items=self._audit.transaction_items(event)):
            raise SsoNotConfigured("the organisation has no SSO configured")

    # ---- IAM Identity Center sessions ------------------------------------------------

    def start_session(self, member: Membership) -> dict[str, Any]:
        organization = _organization(member)
        flow = self._sessions.start(organization, self._sso.settings(organization), member.user_id)
        self._record(self._event(member, "org.sso.session.start"))
        return flow

    def session(self, member: Membership) -> dict[str, Any]:
        organization = _organization(member)
        view = self._sessions.status(organization, member.user_id)
        if view.activated:
            self._record(self._event(member, "org.sso.session.activate"))
        elif view.reason and view.status != ACTIVE:
            self._record(self._event(member, "org.sso.session.end", reason=view.reason))
        return view.as_dict()

    def drop_session(self, member: Membership) -> None:
        _organization(member)
        self._sessions.drop(member.user_id)
        self._record(self._event(member, "org.sso.session.drop"))

    # ---- the organisation's AWS accounts ------------------------------------------------

    def onboarding(
        self,
        member: Membership,
        *,
        region: str | None,
        rotate: bool,
        allowed_regions: list[str] | None,
    ) -> dict[str, Any]:
        """The link prefills the organisation's allowed regions (every account's deployer
        is then denied the others in IAM, even to the platform)."""
        organization = _organization(member)
        return self._accounts.onboarding(
            organization,
            member.user_id,
            region=region,
            rotate_external_id=rotate,
            allowed_regions=tuple(allowed_regions or ()),
        )

    def accounts(self, member: Membership) -> dict[str, Any]:
        return {"accounts": self._accounts.accounts(_organization(member))}

    def disconnect(self, member: Membership, account_id: str) -> None:
        self._accounts.disconnect(_organization(member), member.user_id, account_id)


__all__ = ["OrgSetupService"]
