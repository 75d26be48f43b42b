"""The control plane's DynamoDB tables, and the item-level grants its functions get."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.nag import checkov_skip

# Item-level actions only: grant_read_write_data would add Scan, batch writes and every
# index. TransactWriteItems is authorised per item by these same actions.
ITEM_READ_WRITE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
# lambda_src/agent_builder/repositories/ledger.py's reserved user of the platform's items.
PLATFORM_USER = "#platform"
ITEM_UPDATE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")

_S = dynamodb.AttributeType.STRING


class ControlPlaneTables(Construct):
    """On-demand tables with PITR, AWS-managed encryption and TTL where data expires.

    Key schemas are the runtime's contract (lambda_src/CONTRACT.md); functions get
    item-level actions on exactly the tables they touch, through the grants below.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        self.profiles = self._table("ProfilesTable", "userId")
        self.agents = self._table("AgentsTable", "userId", "agentId")
        self.runs = self._table("RunsTable", "runId", ttl="expiresAt")
        self.runs.add_global_secondary_index(
            index_name="byUser",
            partition_key=dynamodb.Attribute(name="userId", type=_S),
            sort_key=dynamodb.Attribute(name="createdAt", type=_S),
        )
        # Tier 3: an organisation's runs, newest first (sparse: only runs of org agents).
        self.runs.add_global_secondary_index(
            index_name="byOrganization",
            partition_key=dynamodb.Attribute(name="organizationId", type=_S),
            sort_key=dynamodb.Attribute(name="createdAt", type=_S),
        )
        self.usage = self._table("UsageTable", "userId", "period", ttl="expiresAt")
        # Tier 2: one connected (or pending) AWS account per user; registration messages
        # from customer stacks find their user through the External ID.
        self.accounts = self._table("AccountsTable", "userId")
        self.accounts.add_global_secondary_index(
            index_name="byExternalId",
            partition_key=dynamodb.Attribute(name="externalId", type=_S),
        )
        # Audit trail: pk is the scope read together (user#<id>, later org#<id>), sk the
        # time-ordered event id.
        self.audit = self._table("AuditTable", "scope", "eventId", ttl="expiresAt")
        # Tier 3: an organisation's item, its members and its invitations under one
        # partition (pk organizationId, sk `org` | `member#<userId>` | `invitation#<id>`);
        # an invitee finds their invitation by id (sparse index). `purgeAt` drops an
        # invitation 30 days after it expired (until then it answers "expired").
        self.organizations = self._table(
            "OrganizationsTable", "organizationId", "item", ttl="purgeAt"
        )
        self.organizations.add_global_secondary_index(
            index_name="byInvitation",
            partition_key=dynamodb.Attribute(name="invitationId", type=_S),
        )
        self.by_name: Mapping[str, dynamodb.Table] = {
            "profiles": self.profiles,
            "agents": self.agents,
            "runs": self.runs,
            "usage": self.usage,
            "accounts": self.accounts,
            "audit": self.audit,
            "organizations": self.organizations,
        }

    def _table(
        self, construct_id: str, pk: str, sk: str | None = None, ttl: str | None = None
    ) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=pk, type=_S),
            sort_key=dynamodb.Attribute(name=sk, type=_S) if sk else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=ttl,
            deletion_protection=self._removal_policy == RemovalPolicy.RETAIN,
            removal_policy=self._removal_policy,
        )
        checkov_skip(
            table,
            CKV_AWS_119="Encrypted with the AWS-managed DynamoDB KMS key: encryption at rest "
            "with key use logged in CloudTrail, without a customer key billing every month.",
        )
        return table

    def grant_user_data(self, grantee: iam.IGrantable) -> None:
        """The HTTP API: a user's profile, agents, runs and usage, and their runs by date."""
        _grant_items(
            grantee, [self.profiles, self.agents, self.runs, self.usage], ITEM_READ_WRITE_ACTIONS
        )
        _grant_index_query(grantee, self.runs, "byUser")
        # A launch reads the agent and the caller's profile (their role) in one call.
        _grant_items(grantee, [self.profiles, self.agents], ("dynamodb:BatchGetItem",))

    def grant_run_updates(self, grantee: iam.IGrantable) -> None:
        """ECS task events: move runs along and settle their usage, nothing else."""
        _grant_items(grantee, [self.runs, self.usage], ITEM_UPDATE_ACTIONS)

    def grant_account_connections(self, grantee: iam.IGrantable) -> None:
        """Tier 2: connected accounts (found by External ID too), profiles, audit appends."""
        _grant_items(grantee, [self.accounts, self.profiles], ITEM_READ_WRITE_ACTIONS)
        _grant_index_query(grantee, self.accounts, "byExternalId")
        _grant_items(grantee, [self.audit], ("dynamodb:PutItem",))

    def grant_free_tier_switch(self, grantee: iam.IGrantable) -> None:
        """The budget's kill switch: the platform's own usage items (partition key
        PLATFORM_USER, never a user's), and audit appends."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(ITEM_UPDATE_ACTIONS),
            resource_arns=[self.usage.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [PLATFORM_USER]}},
        )
        _grant_items(grantee, [self.audit], ("dynamodb:PutItem",))

    def grant_organizations(self, grantee: iam.IGrantable) -> None:
        """Tier 3 (the HTTP API): organisations, members and invitations (invitations by id
        too), an organisation's runs by date, and reading audit trails (/audit, /org/audit)."""
        _grant_items(grantee, [self.organizations], ITEM_READ_WRITE_ACTIONS)
        _grant_index_query(grantee, self.organizations, "byInvitation")
        _grant_index_query(grantee, self.runs, "byOrganization")
        _grant_items(grantee, [self.audit], ("dynamodb:Query",))

    def grant_sso_sign_up(
        self, pre_sign_up: iam.IGrantable, post_confirmation: iam.IGrantable
    ) -> None:
        """A sign-up through an organisation's SAML IdP: pre sign-up reads the organisation
        (it must still exist); post confirmation reads it and its domain claims, then
        records the membership (member Put, the organisation's existence check or admin
        count) with its audit records, in one transaction (profiles: their own grant)."""
        _grant_items(pre_sign_up, [self.organizations], ("dynamodb:GetItem",))
        _grant_items(
            post_confirmation,
            [self.organizations],
            (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:ConditionCheckItem",
            ),
        )
        _grant_items(post_confirmation, [self.audit], ("dynamodb:PutItem",))


def _grant_items(
    grantee: iam.IGrantable, tables: Sequence[dynamodb.ITable], actions: Sequence[str]
) -> None:
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(actions),
        resource_arns=[table.table_arn for table in tables],
    )


def _grant_index_query(grantee: iam.IGrantable, table: dynamodb.ITable, index: str) -> None:
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["dynamodb:Query"],
        resource_arns=[f"{table.table_arn}/index/{index}"],
    )


__all__ = ["ITEM_READ_WRITE_ACTIONS", "ITEM_UPDATE_ACTIONS", "ControlPlaneTables"]
