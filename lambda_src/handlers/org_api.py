"""The HTTP API's Tier 3 function (API Gateway HTTP API, payload v2): every route under
/org: the organisation, its members and invitations, SSO sign-in and IAM Identity Center
sessions, its AWS accounts, its audit trail.

Its own function (constructs/control_plane_api.py routes /org paths here): a Tier 3
request loads only what Tier 3 needs, the core API's cold start does not pay for these
routes and models, and only this function may change the user pool's identity providers.
Body reading, the role check (agent_builder/access.py) and errors are
handlers/resolver.py's, shared with handlers/api.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.services.caller import Caller
from agent_builder.validation import MAX_PATH_ID
from agent_builder.wiring import org_services, org_setup_services
from handlers.org_schemas import (
    CreateInvitation,
    CreateOrganization,
    DeviceAuthorization,
    Invitation,
    InvitationPage,
    Member,
    MemberPage,
    OrgAccountList,
    Organization,
    OrgOnboarding,
    SetRole,
    SsoConfig,
    SsoSession,
    SsoSettings,
    UpdateOrganization,
)
from handlers.resolver import HttpApi, NextToken, PageSize, answers, created, no_content
from handlers.schemas import AuditPage, OnboardingRequest

logger = Logger()
api = HttpApi(
    load_profile=lambda user_id: org_services().profiles.get(user_id, consistent=True),
    on_refusal=lambda member, key, message: org_services().organizations.record_refusal(
        member, key, message
    ),
)
app = api.app

UserId = Annotated[str, Path(max_length=128)]
InvitationId = Annotated[str, Path(max_length=MAX_PATH_ID)]
AccountId = Annotated[str, Path(min_length=12, max_length=12, pattern=r"^[0-9]{12}$")]


def caller() -> Caller:
    return api.caller()


@app.post(
    "/org",
    summary="Found an organisation; the caller becomes its admin (tier enterprise)",
    responses=answers(201, Organization, 403, 409, body=True),
)
def create_organization(body: CreateOrganization) -> Response[Organization]:
    organization = org_services().organizations.create(caller(), body.name)
    return created(Organization.model_validate(organization))


@app.get(
    "/org",
    summary="The caller's organisation and their role in it",
    responses=answers(200, Organization, 404),
)
def get_organization() -> Organization:
    who = caller()
    organization = org_services().organizations.get(who)
    return Organization.model_validate(
        organization | {"sso": org_setup_services().sso(who.membership())}
    )


@app.patch(
    "/org",
    summary="Admin: rename the organisation, set its allowed regions or default role",
    responses=answers(200, Organization, 403, 404, body=True),
)
def update_organization(body: UpdateOrganization) -> Organization:
    changes = body.model_dump(include=body.model_fields_set)
    who = caller()
    organization = org_services().organizations.update(who, changes)
    return Organization.model_validate(
        organization | {"sso": org_setup_services().sso(who.membership())}
    )


@app.get(
    "/org/members",
    summary="The organisation's members, a page at a time",
    responses=answers(200, MemberPage, 404),
)
def list_members(next_token: NextToken = None, limit: PageSize = 50) -> MemberPage:
    return MemberPage.model_validate(
        org_services().organizations.members(caller(), limit, next_token)
    )


@app.put(
    "/org/members/<userId>",
    summary="Admin: change a member's role (the last admin cannot be demoted)",
    responses=answers(200, Member, 403, 404, 409, body=True),
)
def set_member_role(userId: UserId, body: SetRole) -> Member:
    return Member.model_validate(org_services().organizations.set_role(caller(), userId, body.role))


@app.delete(
    "/org/members/<userId>",
    summary="Admin: remove a member; any member: remove themselves (leave)",
    responses=answers(204, None, 403, 404, 409),
)
def remove_member(userId: UserId) -> Response[None]:
    org_services().organizations.remove(caller(), userId)
    return no_content()


@app.post(
    "/org/invitations",
    summary="Admin: invite an e-mail address with a role (valid 7 days)",
    responses=answers(201, Invitation, 403, 404, body=True),
)
def create_invitation(body: CreateInvitation) -> Response[Invitation]:
    invitation = org_services().organizations.invite(caller(), body.email, body.role)
    return created(Invitation.model_validate(invitation))


@app.get(
    "/org/invitations",
    summary="Admin: the organisation's open invitations, a page at a time",
    responses=answers(200, InvitationPage, 403, 404),
)
def list_invitations(next_token: NextToken = None, limit: PageSize = 50) -> InvitationPage:
    return InvitationPage.model_validate(
        org_services().organizations.invitations(caller(), limit, next_token)
    )


@app.delete(
    "/org/invitations/<invitationId>",
    summary="Admin: revoke an invitation",
    responses=answers(204, None, 403, 404),
)
def revoke_invitation(invitationId: InvitationId) -> Response[None]:
    org_services().organizations.revoke(caller(), invitationId)
    return no_content()


@app.post(
    "/org/invitations/<invitationId>/accept",
    summary="Accept an invitation sent to the caller's verified e-mail: join with its role",
    responses=answers(200, Organization, 403, 404, 409, 410),
)
def accept_invitation(invitationId: InvitationId) -> Organization:
    return Organization.model_validate(org_services().organizations.accept(caller(), invitationId))


@app.get(
    "/org/audit",
    summary="Admin: the organisation's audit trail, newest first, filtered, a page at a time",
    responses=answers(200, AuditPage, 403, 404),
)
def get_org_audit(
    next_token: NextToken = None,
    limit: PageSize = 50,
    actor: Annotated[str | None, Query(max_length=128, description="an actor's userId")] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. member.remove")] = None,
    start: Annotated[
        str | None, Query(alias="from", max_length=40, description="ISO-8601 time, inclusive")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=40, description="ISO-8601 time, inclusive")
    ] = None,
) -> AuditPage:
    return AuditPage.model_validate(
        org_services().audit.organization(
            caller(), limit, next_token, actor=actor, action=action, start=start, end=end
        )
    )


# ---- SSO sign-in and IAM Identity Center sessions ------------------------------------------


@app.put(
    "/org/sso",
    summary="Admin: set up SSO sign-in (the IAM Identity Center SAML application, the "
    "organisation's e-mail domains) and the account and permission set members deploy with",
    responses=answers(200, SsoConfig, 403, 404, 409, 422, body=True),
)
def configure_sso(body: SsoSettings) -> SsoConfig:
    from agent_builder.services.sso_config import SsoRequest

    request = SsoRequest(
        saml_metadata_url=body.samlMetadataUrl,
        saml_metadata_xml=body.samlMetadataXml,
        email_domains=body.emailDomains,
        start_url=body.startUrl,
        sso_region=body.ssoRegion,
        account_id=body.accountId,
        permission_set_role=body.permissionSetRole,
    )
    return SsoConfig.model_validate(
        org_setup_services().configure_sso(caller().membership(), request)
    )


@app.delete(
    "/org/sso",
    summary="Admin: remove SSO sign-in (the identity provider, its domains and settings)",
    responses=answers(204, None, 403, 404, 409),
)
def remove_sso() -> Response[None]:
    org_setup_services().remove_sso(caller().membership())
    return no_content()


@app.post(
    "/org/sso/device-authorization",
    summary="Developer or admin: start an IAM Identity Center session (device flow); "
    "confirm the code at the link, then read GET /org/sso/session",
    responses=answers(200, DeviceAuthorization, 403, 404, 409, 422),
)
def start_sso_session() -> DeviceAuthorization:
    return DeviceAuthorization.model_validate(
        org_setup_services().start_session(caller().membership())
    )


@app.get(
    "/org/sso/session",
    summary="The caller's IAM Identity Center session: none, pending (not confirmed yet) or active",
    responses=answers(200, SsoSession, 404, 409, 422),
)
def get_sso_session() -> SsoSession:
    return SsoSession.model_validate(org_setup_services().session(caller().membership()))


@app.delete(
    "/org/sso/session",
    summary="Drop the caller's IAM Identity Center session",
    responses=answers(204, None, 404),
)
def drop_sso_session() -> Response[None]:
    org_setup_services().drop_session(caller().membership())
    return no_content()


# ---- the organisation's AWS accounts --------------------------------------------------------


@app.post(
    "/org/accounts/onboarding",
    summary="Admin: the organisation's External ID and the Launch Stack link of its StackSet "
    "(a fresh registration token each call: it replaces the previous one)",
    responses=answers(200, OrgOnboarding, 403, 404, 409, body=True),
)
def start_org_onboarding(
    body: Annotated[OnboardingRequest | None, Body()] = None,
) -> OrgOnboarding:
    request = body or OnboardingRequest()
    who = caller()
    organization = org_services().organizations.get(who)
    return OrgOnboarding.model_validate(
        org_setup_services().onboarding(
            who.membership(),
            region=request.region,
            rotate=request.rotate,
            allowed_regions=organization.get("allowedRegions"),
        )
    )


@app.get(
    "/org/accounts",
    summary="The organisation's connected AWS accounts",
    responses=answers(200, OrgAccountList, 404),
)
def list_org_accounts() -> OrgAccountList:
    return OrgAccountList.model_validate(org_setup_services().accounts(caller().membership()))


@app.delete(
    "/org/accounts/<accountId>",
    summary="Admin: disconnect one of the organisation's AWS accounts",
    responses=answers(204, None, 403, 404),
)
def disconnect_org_account(accountId: AccountId) -> Response[None]:
    org_setup_services().disconnect(caller().membership(), accountId)
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
