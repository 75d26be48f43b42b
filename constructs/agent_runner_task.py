"""The agent runner's image and the Fargate task definition test runs use."""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from cdk_ecr_deployment import DockerImageName, ECRDeployment

from constructs import Construct
from constructs.agent_cluster import run_log_group_name
from constructs.cluster_tasks import ClusterTasks
from constructs.nag import LOG_GROUP_KMS_REASON, acknowledge, checkov_skip, nag_text

CONTAINER_NAME = "runner"
LOG_STREAM_PREFIX = "runs"


class AgentRunnerTask(Construct):
    """Builds agent_runner/ at deploy time, copies it into our repository, defines the task.

    The image is copied (cdk-ecr-deployment) from CDK's asset repository into the
    platform's own repository, tagged with its content hash, so its scanning,
    immutability, lifecycle and pull policy are ours. The task definition holds no
    environment variables: each run passes its ids as container overrides.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        directory: str,
        repository: ecr.IRepository,
        execution_role: iam.IRole,
        task_role: iam.IRole,
        log_group: logs.ILogGroup,
        cpu: int,
        memory_mib: int,
        arm64: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._roles = (execution_role, task_role)
        platform = ecr_assets.Platform.LINUX_ARM64 if arm64 else ecr_assets.Platform.LINUX_AMD64
        self.image_asset = ecr_assets.DockerImageAsset(
            self, "Image", directory=directory, platform=platform
        )
        tag = self.image_asset.asset_hash
        self.image_uri = f"{repository.repository_uri}:{tag}"
        copier_role = self._copier_role(repository)
        self.copy = ECRDeployment(
            self,
            "CopyImage",
            src=DockerImageName(self.image_asset.image_uri),
            dest=DockerImageName(self.image_uri),
            # Immutable: the package would add ecr:* and s3:GetObject on "*" to it.
            role=copier_role.without_policy_updates(),
        )
        self.copy.node.add_dependency(copier_role)
        # The copy function is a singleton at stack level, outside this construct.
        (copier,) = [
            c
            for c in Stack.of(self).node.children
            if c.node.id.startswith("Custom::CDKECRDeployment")
        ]
        for child in copier.node.find_all():
            if isinstance(child, CfnResource) and child.cfn_resource_type == "AWS::Logs::LogGroup":
                checkov_skip(child, CKV_AWS_158=LOG_GROUP_KMS_REASON)
                # The package retains its log group; `cdk destroy` must leave nothing behind.
                child.apply_removal_policy(RemovalPolicy.DESTROY)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=f"{prefix}-agent-runner",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm64 else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            execution_role=execution_role,
            task_role=task_role,
        )
        container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=ecs.ContainerImage.from_ecr_repository(repository, tag),
            # Container-level memory too: ECS accepts it, and the local emulator needs it.
            memory_limit_mib=memory_mib,
            essential=True,
            readonly_root_filesystem=True,
            user="10001",
            stop_timeout=None,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=LOG_STREAM_PREFIX, log_group=log_group),
        )
        self.task_definition.node.add_dependency(self.copy)
        self.container = container

    def _copier_role(self, repository: ecr.IRepository) -> iam.Role:
        """The role cdk-ecr-deployment's copy function runs as, scoped to its two repositories.

        The package gives the function's role ecr:* actions and s3:GetObject on "*" unless the
        role it is handed cannot take policies; this one takes them here instead: the ECR
        token (which has no resource-level permissions), reads of CDK's asset repository and
        our repository, and pushes to our repository only. No S3: the source is an image.
        """
        role = iam.Role(
            self,
            "CopierRole",
            description="cdk-ecr-deployment copies the runner image from CDK's asset repository "
            "into the platform's repository at deploy time",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSLambdaBasicExecutionRole"
                )
            ],
        )
        assets = self.image_asset.repository.repository_arn
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrToken",
                actions=["ecr:GetAuthorizationToken"],
                # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadAssetAndPlatformImages",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:DescribeImages",
                    "ecr:DescribeRepositories",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:ListImages",
                ],
                resources=[assets, repository.repository_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PushToPlatformRepository",
                actions=[
                    "ecr:CompleteLayerUpload",
                    "ecr:InitiateLayerUpload",
                    "ecr:PutImage",
                    "ecr:UploadLayerPart",
                ],
                resources=[repository.repository_arn],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "cdk-ecr-deployment's copy function writes its own logs with "
            "AWSLambdaBasicExecutionRole; it runs only during deployment, invoked by CloudFormation.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only ecr:GetAuthorizationToken, which supports no resource-level permissions (AWS "
            'requires "*"); every image read and push is limited to CDK\'s asset repository '
            "and the platform's runner repository.",
        )
        return role

    def grant_run(self, role: iam.IRole, *, cluster: ClusterTasks) -> None:
        """Run this task definition on `cluster`, tag the task it starts, pass its two roles."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[self.task_definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        cluster.grant_tag_on_launch(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[r.role_arn for r in self._roles],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )

    def grant_read_logs(self, role: iam.IRole) -> None:
        """GetLogEvents on the runner's streams, nothing else in the log group."""
        run_streams = Stack.of(role).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{run_log_group_name(self._prefix)}:log-stream:"
            f"{LOG_STREAM_PREFIX}/{CONTAINER_NAME}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[run_streams])
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_text(role, run_streams)}]",
            "Log streams are named after random ECS task ids; the wildcard covers only the "
            "runner's streams in the platform's agent-runs log group, for GetLogEvents only.",
        )
