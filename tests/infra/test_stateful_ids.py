"""Stateful resources keep their logical ids, whatever the construct tree looks like.

CloudFormation replaces a resource whose logical id changes: for a table, a bucket, the
user pool or a log group that is data lost in a deployed platform (and a named log group
or topic would even fail to create twice). These ids are the ones deployed platforms
have; a refactor must keep every one of them, exactly, in the same stack.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synthesized

# stack id -> {logical id: resource type}, as deployed.
PINNED: dict[str, dict[str, str]] = {
    "Platform": {
        "Artifacts82DD59A1": "AWS::S3::Bucket",
        "AccessLogs8B620ECA": "AWS::S3::Bucket",
        "CustomerTemplateBucketA3C2A870": "AWS::S3::Bucket",
        "AgentImages3CA69542": "AWS::ECR::Repository",
        "Alarms04B5A0BF": "AWS::SNS::Topic",
        "BudgetKillSwitchTopicDABDD13F": "AWS::SNS::Topic",
        "NetworkFlowLogs2BEC3212": "AWS::Logs::LogGroup",
        "AgentsRunLogs0E4F371E": "AWS::Logs::LogGroup",
        "AgentsInsightsLogsD14D2F9B": "AWS::Logs::LogGroup",
    },
    "WebHosting": {
        "ConsoleFiles2D43986C": "AWS::S3::Bucket",
    },
    "Identity": {
        "UsersUserPool7E610616": "AWS::Cognito::UserPool",
        "UsersUserPoolWebClientEE6B7AD5": "AWS::Cognito::UserPoolClient",
        "UsersUserPoolHostedUi6086F9A7": "AWS::Cognito::UserPoolDomain",
        # The org-* provider reconcile's named log group (/aws/lambda/<prefix>-idpreconcile).
        "OrgIdpReconcileFunctionsIdpReconcileLogs49DC9DEB": "AWS::Logs::LogGroup",
    },
    "ControlPlane": {
        "ProfilesTable3B48B4C6": "AWS::DynamoDB::Table",
        "AgentsTable78E0948F": "AWS::DynamoDB::Table",
        "RunsTable9D121A51": "AWS::DynamoDB::Table",
        "UsageTable28300137": "AWS::DynamoDB::Table",
        "AccountsTable81C15AE5": "AWS::DynamoDB::Table",
        "AuditTableB07F8EEB": "AWS::DynamoDB::Table",
        "OrganizationsTable01047E98": "AWS::DynamoDB::Table",
        "RegistrationsA6F76D76": "AWS::SNS::Topic",
        "TestTimeoutsBA039A5D": "AWS::Scheduler::ScheduleGroup",
        "ApiAccessLogsE9DF007D": "AWS::Logs::LogGroup",
        "ApiLogsCD139AD4": "AWS::Logs::LogGroup",
        "OrgApiLogs2695F08C": "AWS::Logs::LogGroup",
        "TaskEventsLogs3035F93C": "AWS::Logs::LogGroup",
        "SweeperLogs964BB71D": "AWS::Logs::LogGroup",
        "RegistrationLogs11F4E17C": "AWS::Logs::LogGroup",
        "BudgetSwitchLogs006CFC33": "AWS::Logs::LogGroup",
        "PreSignUpLogsC7965415": "AWS::Logs::LogGroup",
        "PostConfirmationLogs014D4CE5": "AWS::Logs::LogGroup",
    },
}
# With every sign-in provider configured (conftest.CONFIGURED_SIGN_IN), in addition.
PINNED_WITH_GITHUB: dict[str, dict[str, str]] = {
    "Identity": {
        # The OIDC bridge: its one-time grants, its signing key (a new key changes the
        # JWKS), Cognito's client secret at the bridge, its logs; Cognito's provider.
        "GitHubBridgeGrants453D93AD": "AWS::DynamoDB::Table",
        "GitHubBridgeSigningKey2399CEA5": "AWS::KMS::Key",
        "GitHubBridgeCognitoClientSecret84707E18": "AWS::SecretsManager::Secret",
        "GitHubBridgeFunctionsGitHubOidcBridgeLogs817F7471": "AWS::Logs::LogGroup",
        "GitHubBridgeAccessLogs2A15EF7C": "AWS::Logs::LogGroup",
        "GitHub38B7EEC4": "AWS::Cognito::UserPoolIdentityProvider",
        # Google: its provider (a new logical id would fail on the fixed name "Google").
        "UsersGoogle28B8523D": "AWS::Cognito::UserPoolIdentityProvider",
    },
    "ControlPlane": {
        # With enterpriseSso: replacing it would make every stored IAM Identity Center
        # token undecryptable.
        "SsoTokenKey63F366F2": "AWS::KMS::Key",
    },
}
# The kinds of resource whose replacement loses data or fails on a fixed name.
STATEFUL_TYPES = {
    "AWS::S3::Bucket",
    "AWS::ECR::Repository",
    "AWS::DynamoDB::Table",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolDomain",
    "AWS::SNS::Topic",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::Cognito::UserPoolIdentityProvider",
}


def resources(default_app: Synthesized, stack_id: str) -> dict[str, Any]:
    stack = default_app.assembly.get_stack_by_name(
        next(s.stack_name for s in default_app.assembly.stacks if s.id == stack_id)
    )
    return dict(stack.template["Resources"])


@pytest.mark.parametrize("stack_id", sorted(PINNED))
def test_stateful_resources_keep_their_deployed_logical_ids(
    default_app: Synthesized, stack_id: str
) -> None:
    found = {lid: r["Type"] for lid, r in resources(default_app, stack_id).items()}
    missing = {lid: kind for lid, kind in PINNED[stack_id].items() if found.get(lid) != kind}
    assert not missing, f"{stack_id}: these would be replaced on deploy: {missing}"


@pytest.mark.parametrize("stack_id", sorted(PINNED))
def test_every_stateful_resource_is_pinned(default_app: Synthesized, stack_id: str) -> None:
    """A new table or bucket gets its id added here, so it is pinned from then on."""
    stateful = {
        lid
        for lid, r in resources(default_app, stack_id).items()
        if r["Type"] in STATEFUL_TYPES or (r["Type"] == "AWS::Logs::LogGroup" and "CDK" not in lid)
    }
    assert stateful <= set(PINNED[stack_id]), sorted(stateful - set(PINNED[stack_id]))


@pytest.fixture(scope="module")
def github_app(configured_app: Synthesized) -> Synthesized:
    return configured_app


def test_the_github_bridges_stateful_resources_keep_their_logical_ids(
    github_app: Synthesized,
) -> None:
    for stack_id, pinned in PINNED_WITH_GITHUB.items():
        found = {lid: r["Type"] for lid, r in resources(github_app, stack_id).items()}
        missing = {lid: kind for lid, kind in pinned.items() if found.get(lid) != kind}
        assert not missing, f"{stack_id}: these would be replaced on deploy: {missing}"


def test_every_stateful_resource_with_github_is_pinned(github_app: Synthesized) -> None:
    for stack_id in PINNED:
        pinned = set(PINNED[stack_id]) | set(PINNED_WITH_GITHUB.get(stack_id, {}))
        stateful = {
            lid
            for lid, r in resources(github_app, stack_id).items()
            if r["Type"] in STATEFUL_TYPES
            or (r["Type"] == "AWS::Logs::LogGroup" and "CDK" not in lid)
        }
        assert stateful <= pinned, sorted(stateful - pinned)
