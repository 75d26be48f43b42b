"""The HTTP API (API Gateway HTTP API, payload v2): routes -> agent_builder services.

Errors become HTTP here and only here: domain exceptions carry their status and code,
request validation is 400, anything else is a 500 that is logged as a bug. The body of
every error is {"error": {"code", "message"}}.
"""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder import access as access_module
from agent_builder.access import Access
from agent_builder.errors import DomainError
from agent_builder.services.caller import Caller
from agent_builder.validation import (
    MAX_BODY_BYTES,
    MAX_IDEMPOTENCY_KEY,
    MAX_PATH_ID,
)
from agent_builder.wiring import api_services, customer_services, org_services
from handlers.body import JsonBodyValidation
from handlers.schemas import (
    Agent,
    AgentPage,
    AuditPage,
    AwsAccount,
    ConnectAccount,
    CreateAgent,
    CreateInvitation,
    CreateOrganization,
    DeploymentRequest,
    ErrorBody,
    Invitation,
    InvitationPage,
    LogPage,
    Me,
    Member,
    MemberPage,
    Onboarding,
    OnboardingRequest,
    Organization,
    Run,
    RunPage,
    SetRole,
    TestRequest,
    UpdateOrganization,
)

logger = Logger()
app = APIGatewayHttpResolver(enable_validation=True)
# Bodies are read in one place, handlers/body.py: JSON only, 400/413/415 and never a 500.
app._request_validation_middleware = JsonBodyValidation()

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="idempotency-key",
        max_length=MAX_IDEMPOTENCY_KEY,
        description="Retrying with the same key and body returns the same run, counted once",
    ),
]
NextToken = Annotated[str | None, Query(alias="nextToken", max_length=2048)]
PageSize = Annotated[int, Query(ge=1, le=100)]
AgentId = Annotated[str, Path(max_length=MAX_PATH_ID)]
RunId = Annotated[str, Path(max_length=MAX_PATH_ID)]


ERRORS = {
    400: "Invalid input: INVALID_BODY (the body is not UTF-8, or not base64 when it says it "
    "is) or VALIDATION_ERROR (not JSON, not an object, wrong type, unknown field, out of range)",
    401: 'No authenticated user: API Gateway\'s own {"message": "Unauthorized"}',
    403: "Not allowed for the caller's tier or role: IMAGE_NOT_ALLOWED, ROLE_NOT_ALLOWED (the "
    "caller's role in their organisation; viewers change nothing), REGION_NOT_ALLOWED (outside "
    "the organisation's allowedRegions), ORGANIZATION_CREATION_CLOSED",
    404: "Not found, or not the caller's (another organisation's resource is 404 too); "
    "NOT_IN_ORGANIZATION on /org routes for a caller in no organisation",
    409: "Conflict (Idempotency-Key reused, account not connected or already connected, unknown "
    "tier, AGENT_LIMIT: the caller has maxAgentsPerUser agents, ALREADY_IN_ORGANIZATION: a user "
    "is in one organisation at most, LAST_ADMIN: the last admin can neither leave nor be "
    "demoted, NO_ENTERPRISE_TARGET: the organisation has no AWS target for deployments yet)",
    410: "INVITATION_EXPIRED: the invitation's 7 days are over; an admin must invite again",
    422: "ROLE_VALIDATION_FAILED (which check failed) or DEPLOY_FAILED (which step failed in "
    "the connected account)",
    429: "QUOTA_EXCEEDED or RATE_LIMITED, with a Retry-After header",
    413: f"PAYLOAD_TOO_LARGE: the body is over {MAX_BODY_BYTES} bytes (API Gateway's own "
    '{"message": "Request Entity Too Large"} over its 10 MB)',
    415: "UNSUPPORTED_MEDIA_TYPE: a body whose Content-Type is not application/json",
    503: "LAUNCH_FAILED: the run could not be started and the test was given back; "
    "CAPACITY_EXHAUSTED: every platform test slot is in use; FREE_TIER_PAUSED: the platform's "
    "free tests are spent or paused for the month. Nothing was charged; Retry-After says when",
}
# Every route that reads a body can refuse it.
BODY_ERRORS = (413, 415)


def answers(status: int, model: type | None, *errors: int, body: bool = False) -> dict[int, Any]:
    """The route's documented answers: its success and the errors it can give (with
    `body`, those of reading a body: 413 and 415). handlers/openapi.py adds API Gateway's
    own body to the GATEWAY_ANSWERS."""
    documented: dict[int, Any] = {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"model": model}},
        }
        if model
        else {"description": HTTPStatus(status).phrase}
    }
    for code in sorted({400, 401, *errors, *(BODY_ERRORS if body else ())}):
        documented[code] = {
            "description": ERRORS[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return documented


class Unauthenticated(DomainError):
    status = 401
    code = "UNAUTHENTICATED"


def caller() -> Caller:
    """The JWT subject the API Gateway authorizer verified (email if the token has it),
    with the request's access rule (set by `enforce_access`)."""
    context = app.current_event.request_context
    claims = context.authorizer.jwt_claim if context.get("authorizer") else {}
    subject = (claims or {}).get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("no authenticated user on this request")
    email = claims.get("email")
    if claims.get("email_verified") in (False, "false"):
        # Only a verified address may stand for the user (invitations match it).
        email = None
    return Caller(
        user_id=subject,
        email=email if isinstance(email, str) and email else None,
        access=app.context.get("access"),
    )


def enforce_access(router: APIGatewayHttpResolver, next_middleware: Any) -> Response:
    """Every route's role check, in one place: the rule agent_builder.access.POLICY has
    for the matched route, checked before the route runs (a launch route's once it has
    read the profile with the agent: `deferred`)."""
    route = router.context["_route"]
    key = f"{route.method} {route.openapi_path}"
    if key not in _registered_routes():
        return next_middleware(router)  # no such route: the 404 handler answers
    who = caller()
    access = Access(
        key,
        who.user_id,
        lambda user_id: api_services().profiles.stored(user_id),
        on_refusal=lambda member, key, message: org_services().organizations.record_refusal(
            member, key, message
        ),
    )
    rule = access.rule
    if rule.members_only or (rule.roles != access_module.EVERYONE and not rule.deferred):
        owner = router.context.get("_route_args", {}).get(rule.owner_param or "")
        access.check(owner=owner)
    router.append_context(access=access)
    return next_middleware(router)


@functools.cache
def _registered_routes() -> frozenset[str]:
    return frozenset(
        f"{route.method} {route.openapi_path}"
        for route in (*app._static_routes, *app._dynamic_routes)
    )


app.use(middlewares=[enforce_access])


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": code, "message": message}},
        headers=headers,
    )


@app.exception_handler(DomainError)
def domain_error(exc: DomainError) -> Response:
    logger.info("request refused", code=exc.code, status=exc.status)
    return error(exc.status, exc.code, exc.message, exc.headers or None)


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response:
    problems = []
    for problem in exc.errors()[:10]:
        where = ".".join(str(part) for part in problem.get("loc", ()) if not isinstance(part, int))
        if problem.get("type") == "json_invalid":
            problems.append("the request body is not valid JSON")
        elif problem.get("type") == "extra_forbidden":
            problems.append(f"{where}: unknown field")
        else:
            # pydantic's message says what was expected; the input itself is not echoed.
            problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    logger.info("request invalid", problems=problems)
    return error(
        HTTPStatus.BAD_REQUEST, "VALIDATION_ERROR", "; ".join(problems) or "invalid request"
    )


@app.not_found
def route_not_found(exc: NotFoundError) -> Response:
    return error(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such route")


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    # Not a domain refusal: a bug or an AWS failure. Logged with its traceback, once.
    logger.exception("unhandled error")
    return error(
        HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error; it has been logged"
    )


# ---- routes -----------------------------------------------------------------------------


@app.get("/me", summary="The caller's profile and this month's usage", responses=answers(200, Me))
def get_me() -> Me:
    return Me.model_validate(api_services().profiles.me(caller()))


@app.post(
    "/agents", summary="Register an agent", responses=answers(201, Agent, 403, 409, body=True)
)
def create_agent(body: CreateAgent) -> Response[Agent]:
    agent = api_services().agents.create(caller(), body.model_dump(exclude_none=True))
    return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, Agent.model_validate(agent))


@app.get(
    "/agents", summary="The caller's agents, a page at a time", responses=answers(200, AgentPage)
)
def list_agents(next_token: NextToken = None, limit: PageSize = 20) -> AgentPage:
    return AgentPage.model_validate(api_services().agents.list(caller(), limit, next_token))


@app.get("/agents/<agentId>", summary="One agent", responses=answers(200, Agent, 404))
def get_agent(agentId: AgentId) -> Agent:
    return Agent.model_validate(api_services().agents.get(caller(), agentId))


@app.delete(
    "/agents/<agentId>",
    summary="Delete an agent (its runs stay; in an organisation: a developer their own, an "
    "admin any)",
    responses=answers(204, None, 403, 404),
)
def delete_agent(agentId: AgentId) -> Response[None]:
    api_services().agents.delete(caller(), agentId)
    return Response(HTTPStatus.NO_CONTENT, None, None)


@app.post(
    "/agents/<agentId>/tests",
    summary="Test an agent on the platform (counts one test)",
    responses=answers(202, Run, 403, 404, 409, 429, 503, body=True),
)
def start_test(
    agentId: AgentId, body: TestRequest, idempotency_key: IdempotencyKey = None
) -> Response[Run]:
    run = api_services().launches.test(caller(), agentId, body.input, idempotency_key)
    return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, Run.model_validate(run))


@app.post(
    "/agents/<agentId>/deployments",
    summary="Deploy an agent to the caller's tier's target (freemium: a test on the platform)",
    responses=answers(202, Run, 403, 404, 409, 422, 429, 503, body=True),
)
def start_deployment(
    agentId: AgentId,
    body: DeploymentRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response[Run]:
    run = api_services().launches.deploy(
        caller(), agentId, body.input, idempotency_key, region=body.region
    )
    return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, Run.model_validate(run))


@app.get(
    "/runs",
    summary="The caller's runs, newest first, a page at a time",
    responses=answers(200, RunPage),
)
def list_runs(next_token: NextToken = None, limit: PageSize = 20) -> RunPage:
    return RunPage.model_validate(api_services().runs.list(caller(), limit, next_token))


@app.get(
    "/runs/<runId>",
    summary="One run (a customer run's state is read from the connected account)",
    responses=answers(200, Run, 404),
)
def get_run(runId: RunId) -> Run:
    return Run.model_validate(api_services().runs.get(caller(), runId))


@app.get(
    "/runs/<runId>/logs",
    summary="A page of the run's log lines, from the start",
    responses=answers(200, LogPage, 404, 409, 422),
)
def get_run_logs(
    runId: RunId,
    next_token: NextToken = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> LogPage:
    return LogPage.model_validate(api_services().runs.logs(caller(), runId, next_token, limit))


# ---- Tier 2: the connected AWS account ---------------------------------------------------


@app.post(
    "/aws-account/onboarding",
    summary="The External ID and Launch Stack link that connect an AWS account",
    responses=answers(200, Onboarding, 409, body=True),
)
def start_onboarding(
    body: Annotated[OnboardingRequest | None, Body()] = None,
) -> Onboarding:
    request = body or OnboardingRequest()
    return Onboarding.model_validate(
        customer_services().accounts.onboarding(caller(), request.region, request.rotate)
    )


@app.put(
    "/aws-account",
    summary="Connect an AWS account by its deployer role ARN (validated before it is stored)",
    responses=answers(200, AwsAccount, 409, 422, body=True),
)
def connect_account(body: ConnectAccount) -> AwsAccount:
    account = customer_services().accounts.connect(
        caller(),
        role_arn=body.roleArn,
        external_id=body.externalId,
        region=body.region,
        resource_prefix=body.resourcePrefix,
        subnet_ids=body.subnetIds,
        security_group_id=body.securityGroupId,
    )
    return AwsAccount.model_validate(account)


@app.get(
    "/aws-account",
    summary="The connected AWS account, and whether its template is outdated",
    responses=answers(200, AwsAccount, 404),
)
def get_account() -> AwsAccount:
    return AwsAccount.model_validate(customer_services().accounts.get(caller()))


@app.delete(
    "/aws-account",
    summary="Disconnect the AWS account (runs stay readable; personal becomes freemium)",
    responses=answers(204, None, 404),
)
def disconnect_account() -> Response[None]:
    customer_services().accounts.disconnect(caller())
    return Response(HTTPStatus.NO_CONTENT, None, None)


# ---- audit trails ------------------------------------------------------------------------


@app.get(
    "/audit",
    summary="The caller's own audit trail, newest first, a page at a time",
    responses=answers(200, AuditPage),
)
def get_audit(next_token: NextToken = None, limit: PageSize = 50) -> AuditPage:
    return AuditPage.model_validate(org_services().audit.own(caller(), limit, next_token))


# ---- Tier 3: organisations ----------------------------------------------------------------

UserId = Annotated[str, Path(max_length=128)]
InvitationId = Annotated[str, Path(max_length=MAX_PATH_ID)]


@app.post(
    "/org",
    summary="Found an organisation; the caller becomes its admin (tier enterprise)",
    responses=answers(201, Organization, 403, 409, body=True),
)
def create_organization(body: CreateOrganization) -> Response[Organization]:
    organization = org_services().organizations.create(caller(), body.name)
    return Response(
        HTTPStatus.CREATED,
        content_types.APPLICATION_JSON,
        Organization.model_validate(organization),
    )


@app.get(
    "/org",
    summary="The caller's organisation and their role in it",
    responses=answers(200, Organization, 404),
)
def get_organization() -> Organization:
    return Organization.model_validate(org_services().organizations.get(caller()))


@app.patch(
    "/org",
    summary="Admin: rename the organisation, set its allowed regions or default role",
    responses=answers(200, Organization, 403, 404, body=True),
)
def update_organization(body: UpdateOrganization) -> Organization:
    changes = body.model_dump(include=body.model_fields_set)
    return Organization.model_validate(org_services().organizations.update(caller(), changes))


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
    return Response(HTTPStatus.NO_CONTENT, None, None)


@app.post(
    "/org/invitations",
    summary="Admin: invite an e-mail address with a role (valid 7 days)",
    responses=answers(201, Invitation, 403, 404, body=True),
)
def create_invitation(body: CreateInvitation) -> Response[Invitation]:
    invitation = org_services().organizations.invite(caller(), body.email, body.role)
    return Response(
        HTTPStatus.CREATED, content_types.APPLICATION_JSON, Invitation.model_validate(invitation)
    )


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
    return Response(HTTPStatus.NO_CONTENT, None, None)


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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
