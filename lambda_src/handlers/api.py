"""The HTTP API's core function (API Gateway HTTP API, payload v2): profiles, agents,
tests and deployments, runs and their logs, the connected AWS account, the caller's own
audit trail. Everything under /org is handlers/org_api.py's (its own function: a Tier 3
request does not load, and a core request does not pay for, the other's code).

Body reading, the role check and errors are handlers/resolver.py's, shared by both.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.services.caller import Caller
from agent_builder.validation import MAX_IDEMPOTENCY_KEY, MAX_PATH_ID
from agent_builder.wiring import api_services, customer_services, org_services
from handlers.resolver import HttpApi, NextToken, PageSize, accepted, answers, created, no_content
from handlers.schemas import (
    Agent,
    AgentPage,
    AuditPage,
    AwsAccount,
    ConnectAccount,
    CreateAgent,
    DeploymentRequest,
    LogPage,
    Me,
    Onboarding,
    OnboardingRequest,
    Run,
    RunPage,
    TestRequest,
)

logger = Logger()
api = HttpApi(
    load_profile=lambda user_id: api_services().profiles.stored(user_id),
    on_refusal=lambda member, key, message: org_services().organizations.record_refusal(
        member, key, message
    ),
)
app = api.app

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="idempotency-key",
        max_length=MAX_IDEMPOTENCY_KEY,
        description="Retrying with the same key and body returns the same run, counted once",
    ),
]
AgentId = Annotated[str, Path(max_length=MAX_PATH_ID)]
RunId = Annotated[str, Path(max_length=MAX_PATH_ID)]


def caller() -> Caller:
    return api.caller()


# ---- routes -----------------------------------------------------------------------------


@app.get("/me", summary="The caller's profile and this month's usage", responses=answers(200, Me))
def get_me() -> Me:
    return Me.model_validate(api_services().profiles.me(caller()))


@app.post(
    "/agents", summary="Register an agent", responses=answers(201, Agent, 403, 409, body=True)
)
def create_agent(body: CreateAgent) -> Response[Agent]:
    agent = api_services().agents.create(caller(), body.model_dump(exclude_none=True))
    return created(Agent.model_validate(agent))


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
    return no_content()


@app.post(
    "/agents/<agentId>/tests",
    summary="Test an agent on the platform (counts one test)",
    responses=answers(202, Run, 403, 404, 409, 429, 503, body=True),
)
def start_test(
    agentId: AgentId, body: TestRequest, idempotency_key: IdempotencyKey = None
) -> Response[Run]:
    run = api_services().launches.test(caller(), agentId, body.input, idempotency_key)
    return accepted(Run.model_validate(run))


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
        caller(),
        agentId,
        body.input,
        idempotency_key,
        region=body.region,
        account_id=body.accountId,
    )
    return accepted(Run.model_validate(run))


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
    return no_content()


# ---- audit trails ------------------------------------------------------------------------


@app.get(
    "/audit",
    summary="The caller's own audit trail, newest first, a page at a time",
    responses=answers(200, AuditPage),
)
def get_audit(next_token: NextToken = None, limit: PageSize = 50) -> AuditPage:
    return AuditPage.model_validate(org_services().audit.own(caller(), limit, next_token))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
