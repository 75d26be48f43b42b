"""The network agent tasks run in: public subnets only, no NAT, egress-only tasks."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.nag import LOG_GROUP_KMS_REASON, checkov_skip


class AgentNetwork(Construct):
    """A two-AZ VPC with public subnets only and an egress-only security group.

    No NAT gateway: a NAT gateway bills about 32 USD a month while idle, and agent tasks
    only need outbound HTTPS (Bedrock, ECR, CloudWatch Logs, S3), which they reach
    through a public IP. Nothing can connect in: the task security group has no ingress
    rule and allows TCP 443 out only.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        flow_log_retention: logs.RetentionDays | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        restrict_default_security_group: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=f"{prefix}-vpc",
            max_azs=2,
            nat_gateways=0,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            # The platform restricts the default security group with CDK's custom
            # resource; the customer template has no Lambda, so it opts out.
            restrict_default_security_group=restrict_default_security_group,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                )
            ],
        )
        if flow_log_retention is not None:
            flow_log_group = logs.LogGroup(
                self,
                "FlowLogs",
                log_group_name=f"/{prefix}/vpc-flow-logs",
                retention=flow_log_retention,
                removal_policy=removal_policy,
            )
            checkov_skip(flow_log_group, CKV_AWS_158=LOG_GROUP_KMS_REASON)
            flow_log = self.vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                traffic_type=ec2.FlowLogTrafficType.ALL,
                max_aggregation_interval=ec2.FlowLogMaxAggregationInterval.TEN_MINUTES,
            )
            _guard_flow_log_role(flow_log)
        self.task_security_group = egress_only_security_group(
            self, "TaskSecurityGroup", vpc=self.vpc, prefix=prefix
        )
        self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC)


def _guard_flow_log_role(flow_log: ec2.FlowLog) -> None:
    """The flow-log role CDK creates trusts vpc-flow-logs.amazonaws.com only on behalf of
    this account's flow logs (the VPC guide's confused-deputy conditions). The flow log's
    id is known only once it exists, and it names this role: so any flow log of this
    account and region. Overridden in place so the role keeps its logical id."""
    stack = Stack.of(flow_log)
    role = flow_log.node.find_child("IAMRole").node.default_child
    assert isinstance(role, iam.CfnRole)
    role.add_property_override(
        "AssumeRolePolicyDocument.Statement.0.Condition",
        {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:"
                "vpc-flow-log/*"
            },
        },
    )


def egress_only_security_group(
    scope: Construct, construct_id: str, *, vpc: ec2.IVpc, prefix: str
) -> ec2.SecurityGroup:
    """A security group with no ingress and TCP 443 egress only."""
    group = ec2.SecurityGroup(
        scope,
        construct_id,
        vpc=vpc,
        security_group_name=f"{prefix}-agent-tasks",
        description="Agent tasks: no inbound; outbound HTTPS only (Bedrock, ECR, logs, S3)",
        allow_all_outbound=False,
    )
    group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")
    return group


__all__ = ["AgentNetwork", "egress_only_security_group"]
