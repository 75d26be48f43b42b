"""Request bodies and answers of the Tier 3 routes (everything under /org), served by
handlers/org_api.py. Same conventions as handlers/schemas.py: strict request models that
refuse unknown fields, answers documented in the OpenAPI document, validators built on
first use."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from agent_builder.validation import ACCOUNT_ID, MAX_REGION
from handlers.schemas import _STRICT, _Model

Role = Literal["admin", "developer", "viewer"]
MAX_ORG_NAME = 64
MAX_EMAIL = 320


class CreateOrganization(_Model):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=MAX_ORG_NAME)


class UpdateOrganization(_Model):
    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=MAX_ORG_NAME)
    allowedRegions: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="the AWS regions members may deploy to (real region names); null: every region",
    )
    defaultRole: Role | None = Field(
        default=None, description="the role of a user whose first SSO sign-in makes them a member"
    )


class SetRole(_Model):
    model_config = _STRICT

    role: Role


class CreateInvitation(_Model):
    model_config = _STRICT

    email: str = Field(
        min_length=3, max_length=MAX_EMAIL, description="the invitee's verified e-mail address"
    )
    role: Role


MAX_EMAIL_DOMAINS = 20
MAX_METADATA_URL = 2048
# A pasted document: IAM Identity Center's is ~4 KiB; this keeps every valid PUT /org/sso
# body within MAX_BODY_BYTES even with each character JSON-escaped (a larger document:
# give its URL, fetched up to saml_metadata.MAX_METADATA_BYTES).
MAX_METADATA_XML = 12 * 1024
MAX_DOMAIN = 253


class SsoSettings(_Model):
    """PUT /org/sso: the organisation's IAM Identity Center SAML application and the
    account and permission set its members deploy with."""

    model_config = _STRICT

    samlMetadataUrl: str | None = Field(
        default=None,
        min_length=9,
        max_length=MAX_METADATA_URL,
        description="https URL of the IAM Identity Center application's SAML metadata "
        "(give this or samlMetadataXml)",
    )
    samlMetadataXml: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_METADATA_XML,
        description="the SAML metadata document itself (give this or samlMetadataUrl; a "
        "document over 12 KiB: give its URL)",
    )
    emailDomains: list[Annotated[str, Field(min_length=1, max_length=MAX_DOMAIN)]] = Field(
        min_length=1,
        max_length=MAX_EMAIL_DOMAINS,
        description="the organisation's e-mail domains: the sign-in page sends addresses of "
        "these domains to this SSO; a domain belongs to one organisation only",
    )
    startUrl: str = Field(
        min_length=1,
        max_length=256,
        description="the AWS access portal URL, e.g. https://d-1234567890.awsapps.com/start",
    )
    ssoRegion: str = Field(
        min_length=1, max_length=MAX_REGION, description="IAM Identity Center's region"
    )
    accountId: str = Field(
        min_length=12,
        max_length=12,
        pattern=ACCOUNT_ID.pattern,
        description="the AWS account members deploy into with their IAM Identity Center session",
    )
    permissionSetRole: str = Field(
        min_length=1,
        max_length=64,
        description="the permission set's name (the role GetRoleCredentials gives in accountId)",
    )


# ---- answers ------------------------------------------------------------------------------


class SsoConfig(_Model):
    providerName: str = Field(description="the Cognito SAML identity provider, org-<id>")
    emailDomains: list[str]
    metadataUrl: str | None
    entityId: str | None = Field(description="the SAML metadata's entityID")
    startUrl: str | None
    ssoRegion: str | None
    accountId: str | None
    permissionSetRole: str | None
    updatedAt: str | None


class Organization(_Model):
    organizationId: str
    name: str
    role: str | None = Field(description="the caller's role: admin | developer | viewer")
    allowedRegions: list[str] | None = Field(description="null: every region")
    defaultRole: str | None
    sso: SsoConfig | None = Field(description="the SSO settings; null until configured")
    createdAt: str | None


class Member(_Model):
    userId: str
    email: str | None
    role: str
    joinedAt: str | None


class MemberPage(_Model):
    members: list[Member]
    nextToken: str | None


class Invitation(_Model):
    invitationId: str
    email: str
    role: str
    invitedBy: str | None
    createdAt: str | None
    expiresAt: str = Field(description="accepting after this answers 410 INVITATION_EXPIRED")
    expired: bool


class InvitationPage(_Model):
    invitations: list[Invitation]
    nextToken: str | None


class DeviceAuthorization(_Model):
    verificationUriComplete: str = Field(
        description="open it, sign in to IAM Identity Center and confirm userCode"
    )
    userCode: str
    expiresAt: str = Field(description="confirm before this, then GET /org/sso/session")


class SsoSession(_Model):
    status: Literal["none", "pending", "active"]
    expiresAt: str | None = Field(
        description="pending: when the code expires; active: when the session does"
    )
    reason: str | None = Field(default=None, description="why a session ended, if it just did")


class OrgOnboarding(_Model):
    externalId: str = Field(description="the organisation's, the same for every account")
    region: str
    registration: str = Field(
        description="automatic: each account's stack registers itself; manual: not available "
        "outside the platform's region"
    )
    launchStackUrl: str = Field(
        description="quick-create of the StackSet wrapper in the management account "
        "(registration token and External ID prefilled)"
    )
    stackSetTemplateUrl: str = Field(
        description="the template the StackSet deploys in each account, for admins who "
        "create the StackSet themselves"
    )
    organizationTemplateUrl: str


class OrgAccount(_Model):
    accountId: str
    region: str | None
    status: str
    templateVersion: str
    templateOutdated: bool
    connectedAt: str | None


class OrgAccountList(_Model):
    accounts: list[OrgAccount]
