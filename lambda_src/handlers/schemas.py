"""Request bodies of the HTTP API, as pydantic models: validation and OpenAPI schema.

They check shape, types and static ranges and refuse unknown fields; rules that depend
on configuration (allowed models, the output-token cap) or on byte sizes are checked
again in the domain (agent_builder.services), which is the authority.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent_builder.validation import (
    ACCOUNT_ID,
    AGENT_NAME,
    COST_TAG_VALUE,
    MAX_AGENT_NAME,
    MAX_EXTERNAL_ID,
    MAX_INPUT_BYTES,
    MAX_INSTRUCTIONS_BYTES,
    MAX_REGION,
    MAX_RESOURCE_PREFIX,
    MAX_SUBNETS,
    NOT_BLANK,
)

# strict: "1" is not a number and 1 is not a string; JSON null is not a missing field.
# Every model's validator is built on its first use, not at import (defer_build): a cold
# start pays only for the models its request uses (make bench-runtime's import ratio).
_STRICT = ConfigDict(extra="forbid", strict=True, defer_build=True)


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True)


def _cost_tag(what: str) -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=COST_TAG_VALUE.pattern,
        description=f"an organisation's agents only: the {what}, a cost-allocation tag of "
        "its tasks",
    )


class AgentParameters(_Model):
    model_config = _STRICT

    temperature: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    maxTokens: int | None = Field(default=None, ge=1, description="at most MAX_OUTPUT_TOKENS")


class CreateAgent(_Model):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=MAX_AGENT_NAME, pattern=AGENT_NAME)
    model: str = Field(
        min_length=1, max_length=256, description="one of the allowed Bedrock model ids"
    )
    instructions: str = Field(
        min_length=1,
        max_length=MAX_INSTRUCTIONS_BYTES,
        description="system prompt, at most 16 KiB UTF-8",
    )
    parameters: AgentParameters | None = None
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="custom container image (Tier 2/3 only)",
    )
    team: str | None = _cost_tag("team")
    project: str | None = _cost_tag("project")


class TestRequest(_Model):
    model_config = _STRICT

    input: str = Field(
        min_length=1,
        max_length=MAX_INPUT_BYTES,
        pattern=NOT_BLANK,
        description="at most 8 KiB UTF-8, not blank",
    )


class DeploymentRequest(_Model):
    model_config = _STRICT

    input: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INPUT_BYTES,
        pattern=NOT_BLANK,
        description="at most 8 KiB UTF-8, not blank",
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REGION,
        description="an organisation's deployments only: the AWS region (within the "
        "organisation's allowedRegions, else 403 REGION_NOT_ALLOWED)",
    )
    accountId: str | None = Field(
        default=None,
        min_length=12,
        max_length=12,
        pattern=ACCOUNT_ID.pattern,
        description="an organisation's deployments only: which of its connected AWS accounts "
        "(GET /org/accounts); default the only one (400 naming them when there are several)",
    )


class OnboardingRequest(_Model):
    model_config = _STRICT

    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REGION,
        description="the AWS region to launch the onboarding stack in (default: the platform's)",
    )
    rotate: bool = Field(
        default=False,
        description="replace the External ID with a new one (refused while an account is "
        "connected: disconnect first)",
    )


class ConnectAccount(_Model):
    model_config = _STRICT

    roleArn: str = Field(
        min_length=1,
        max_length=2048,
        description="the RoleArn output of the onboarding stack: arn:aws:iam::<account>:role/<name>",
    )
    externalId: str = Field(
        min_length=1,
        max_length=MAX_EXTERNAL_ID,
        description="the External ID the platform gave you",
    )
    region: str = Field(
        min_length=1, max_length=MAX_REGION, description="the onboarding stack's region"
    )
    resourcePrefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_RESOURCE_PREFIX,
        description="the stack's ResourcePrefix parameter, if changed from the default",
    )
    subnetIds: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SUBNETS,
        description="with securityGroupId: the network for agent tasks (an existing VPC); "
        "by default the stack's own subnets and security group are found",
    )
    securityGroupId: str | None = Field(default=None, min_length=1, max_length=64)


# ---- answers (documented in the OpenAPI document; the route's dict is checked against them)


class Usage(_Model):
    month: str
    testsUsed: int
    testsLimit: int
    resetsAt: str
    inputTokens: int = Field(description="tokens sent to the model by this month's finished runs")
    outputTokens: int = Field(description="tokens the model wrote in this month's finished runs")
    estimatedCostUsd: float = Field(description="the month's receipts added up (an estimate)")


class Me(_Model):
    userId: str
    email: str | None
    tier: str
    organizationId: str | None
    role: str | None
    usage: Usage


class AgentParametersOut(_Model):
    temperature: float | None = None
    maxTokens: int | None = None


class Agent(_Model):
    agentId: str
    name: str
    model: str
    instructions: str
    parameters: AgentParametersOut
    image: str | None
    createdAt: str
    team: str | None = None
    project: str | None = None
    createdBy: str | None = Field(
        default=None, description="an organisation's agent: the member who created it"
    )


class AgentPage(_Model):
    agents: list[Agent]
    nextToken: str | None


class ReceiptCost(_Model):
    compute: float = Field(description="Fargate vCPU, memory and public IPv4, as Fargate bills")
    model: float = Field(description="Bedrock input and output tokens")
    total: float


class Receipt(_Model):
    """A finished platform run's tokens, time and estimated cost (the one price table)."""

    inputTokens: int
    outputTokens: int
    durationSeconds: float = Field(description="the task's startedAt to stoppedAt")
    estimatedCostUsd: ReceiptCost
    pricedAt: str = Field(description="the date of the price table's prices (YYYY-MM-DD)")


class Run(_Model):
    runId: str
    agentId: str | None
    kind: str | None
    target: str | None = Field(description="platform | customer | enterprise")
    status: str | None = Field(description="PENDING | RUNNING | STOPPED | FAILED")
    accountId: str | None
    region: str | None
    createdAt: str | None
    startedAt: str | None
    stoppedAt: str | None
    exitCode: int | None
    stopReason: str | None
    refunded: bool | None = Field(
        None, description="the test was given back (the task never ran, Spot reclaimed it, ...)"
    )
    receipt: Receipt | None = Field(None, description="once a platform run has stopped")


class RunPage(_Model):
    runs: list[Run]
    nextToken: str | None


class LogLine(_Model):
    timestamp: str
    message: str


class LogPage(_Model):
    lines: list[LogLine]
    nextToken: str | None = Field(
        description="null when there is nothing more for now; to follow a running run, "
        "poll again with the last non-null token"
    )


class ErrorDetail(_Model):
    code: str
    message: str


class ErrorBody(_Model):
    error: ErrorDetail


class Onboarding(_Model):
    externalId: str = Field(description="the same until rotated; shown only to you")
    region: str
    stackName: str
    templateUrl: str
    launchStackUrl: str = Field(description="CloudFormation quick-create, parameters prefilled")
    registration: str = Field(
        description="automatic: the stack registers itself (the platform's region); "
        "manual: paste its RoleArn output into PUT /aws-account (other regions)"
    )


class TemplateResource(_Model):
    logicalId: str
    type: str = Field(description="the CloudFormation resource type, e.g. AWS::IAM::Role")


class TemplateResourceChanges(_Model):
    added: list[TemplateResource]
    removed: list[TemplateResource]


class TemplateRoleChange(_Model):
    role: str = Field(description="the role's logical id in the template")
    roleName: str | None = Field(
        description="its name as the template sets it (<Parameter> for a parameter's value)"
    )
    change: str = Field(description="added | removed | changed")
    actionsAdded: list[str] = Field(
        description="IAM actions the role may newly do (`Deny <action>`: newly denied; "
        "`NotAction <action>`: everything but it)"
    )
    actionsRemoved: list[str] = Field(description="IAM actions the role may no longer do")
    managedPoliciesAdded: list[str] = Field(description="managed policies newly attached")
    managedPoliciesRemoved: list[str] = Field(description="managed policies detached")
    statementsRescoped: list[str] = Field(
        description="statements (by Sid) whose resources or conditions changed"
    )
    trustPolicyChanged: bool = Field(description="who may assume the role changed")


class TemplateParameterChanges(_Model):
    added: list[str]
    removed: list[str]


class ReleaseNotes(_Model):
    version: str
    changes: list[str] = Field(description="what the release changes, in its own words")


class TemplateChanges(_Model):
    """Computed from the two released templates, not written by hand."""

    fromVersion: str = Field(description="the stack's template version")
    toVersion: str = Field(description="the version updateUrl installs")
    resources: TemplateResourceChanges
    permissions: list[TemplateRoleChange] = Field(description="roles whose permissions change")
    parameters: TemplateParameterChanges
    notes: list[ReleaseNotes] = Field(
        default_factory=list, description="each release the update crosses, oldest first"
    )


class AwsAccount(_Model):
    status: str = Field(description="connected")
    accountId: str
    roleArn: str
    region: str
    resourcePrefix: str
    clusterArn: str
    subnetIds: list[str]
    securityGroupId: str
    connectedAt: str
    connectedVia: str = Field(description="registration | api")
    templateVersion: str = Field(
        description="the onboarding stack's template version (MAJOR.MINOR.PATCH), from its "
        "registration or, for a pasted role, its TemplateVersion output; `unknown` when the "
        "stack could not be read"
    )
    latestTemplateVersion: str = Field(description="the version the platform publishes now")
    templateOutdated: bool | None = Field(
        description="the stack's template is older than the platform's; null when unknown"
    )
    updateUrl: str | None = Field(
        default=None,
        description="when outdated: CloudFormation's update-stack page for this stack with "
        "the latest template URL; null otherwise",
    )
    changes: TemplateChanges | None = Field(
        default=None,
        description="when outdated: what updating to latestTemplateVersion adds and removes "
        "(resources, IAM actions per role, parameters); null otherwise or when either "
        "version is not a released template",
    )


class AuditRecord(_Model):
    eventId: str
    at: str | None
    actorId: str | None
    action: str | None
    target: str | None
    accountId: str | None
    result: str | None = Field(description="success | refused | failure")
    code: str | None
    reason: str | None


class AuditPage(_Model):
    events: list[AuditRecord]
    nextToken: str | None = Field(
        description="a page may hold fewer events than asked (filters apply within it) and "
        "still have a next one"
    )
