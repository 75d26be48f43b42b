"""The embedded AWS: a moto server, and the platform's resources created in it from
the synthesized templates.

A handful of CloudFormation types matter locally (tables, cluster, task definition,
bucket, topics, log groups, schedule group, user pool and client, the VPC pieces the
tasks' awsvpc networking needs, IAM roles). Each maps to one create call; its
properties are converted to the API's request shape by walking botocore's own model
(CloudFormation spells `ClusterName`, ECS wants `clusterName`), so there is no second,
hand-kept copy of any key schema, index or name here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from local_mode.assembly import Stack
from local_mode.templates import Physical, generated_name

DEFAULT_ACCOUNT_ID = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})

log = logging.getLogger("local_mode.emulator")


class MotoEmulator:
    """moto's server in this process, bound to 127.0.0.1 only."""

    def __init__(self, port: int, region: str) -> None:
        from moto.server import ThreadedMotoServer

        self.port = port
        self.region = region
        self.endpoint = f"http://127.0.0.1:{port}"
        # moto logs every request through werkzeug: far too chatty for a dev console.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._started = False

    def start(self) -> None:
        self._server.start()
        self._started = True
        # moto walks ECS tasks RUNNING -> ... -> STOPPED one step per DescribeTasks, so
        # a task would stop by itself after a few looks. Here a task stops when its
        # process exits or someone calls StopTask, as in ECS.
        from moto.moto_api import state_manager

        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**12})
        _keep_task_definitions_in_use()

    def stop(self) -> None:
        if self._started:  # moto's stop() fails on a server that never started
            # moto's backends live in this process, not in the server: forget what this
            # platform created, so that another platform started in the same process (a
            # test module after another) starts from nothing, as a new process would.
            import urllib.request

            reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
            try:
                urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 (loopback)
            except OSError:
                log.warning("could not reset the emulator's state")
            self._server.stop()
            self._started = False

    def client(self, service: str, *, credentials: dict[str, str] | None = None) -> Any:
        creds: dict[str, Any] = credentials or {
            "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        }
        session: Any = boto3.session.Session(region_name=self.region)
        return session.client(service, endpoint_url=self.endpoint, config=_CLIENT_CONFIG, **creds)

    def credentials_in(self, account_id: str, role_name: str = "local-mode") -> dict[str, str]:
        """boto3 keyword credentials that moto attributes to `account_id`.

        moto picks the account of a request from its access key: an assumed role's
        credentials belong to the role's account (moto evaluates no trust policy, so any
        role name does).
        """
        credentials = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{role_name}",
            RoleSessionName="local-mode",
            DurationSeconds=43200,
        )["Credentials"]
        return {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }

    def accounts_with_clusters(self) -> list[str]:
        """The emulated accounts that have an ECS cluster in this region (in-process moto:
        there is no AWS API that lists accounts)."""
        from moto.backends import get_backend

        backends: Any = get_backend("ecs")
        found = []
        for account_id in list(backends.keys()):
            regions = backends[account_id]
            if self.region in regions and regions[self.region].clusters:
                found.append(str(account_id))
        return found

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to this emulator as if it were AWS."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    # ---- where moto falls short of ECS ---------------------------------------------

    def stamp_task(
        self, task_arn: str, account_id: str = DEFAULT_ACCOUNT_ID, **fields: Any
    ) -> None:
        """Set what moto does not keep (createdAt, startedAt, stoppedAt, stopCode, the
        container's exit code) on its task, so DescribeTasks answers them: the sweeper
        relies on createdAt, and Tier 2 runs are followed by DescribeTasks alone."""
        from moto.backends import get_backend

        exit_code = fields.pop("exit_code", None)
        backend: Any = get_backend("ecs")[account_id][self.region]
        for tasks in backend.tasks.values():
            for arn, task in tasks.items():
                if arn == task_arn or task.task_arn == task_arn:
                    for name, value in fields.items():
                        setattr(task, name, value)
                    if exit_code is not None:
                        for container in task.containers:
                            container.exitCode = exit_code
                            container.last_status = "STOPPED"
                    return


def _keep_task_definitions_in_use() -> None:
    """DeleteTaskDefinitions as ECS does it: a revision a task still uses turns
    DELETE_IN_PROGRESS (listed neither ACTIVE nor INACTIVE, still describable by the task
    that runs it) and goes once no task uses it; moto drops it at once, before local
    mode's executor has read the container it must run. Idempotent."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original: Any = EC2ContainerServiceBackend.delete_task_definitions
    if getattr(original, "local_mode", False):
        return

    def delete_task_definitions(self: Any, task_definitions: list[str]) -> Any:
        in_use = {
            task.task_definition_arn
            for tasks in self.tasks.values()
            for task in tasks.values()
            if task.desired_status != "STOPPED"
        }
        for family in self.task_definitions.values():  # those whose last task stopped
            for revision, definition in list(family.items()):
                if definition.status == "DELETE_IN_PROGRESS" and definition.arn not in in_use:
                    del family[revision]
        kept = []
        rest = []
        for reference in task_definitions:
            definition = next(
                (
                    d
                    for family in self.task_definitions.values()
                    for d in family.values()
                    if d.arn == reference and d.status == "INACTIVE" and d.arn in in_use
                ),
                None,
            )
            if definition is None:
                rest.append(reference)
            else:
                definition.status = "DELETE_IN_PROGRESS"
                kept.append(definition)
        if not rest:
            return kept, []
        deleted, failures = original(self, rest)
        return [*kept, *deleted], failures

    delete_task_definitions.local_mode = True  # type: ignore[attr-defined]
    EC2ContainerServiceBackend.delete_task_definitions = delete_task_definitions  # type: ignore[method-assign]


# ---- CloudFormation properties -> API request, through botocore's model ----------------


def to_shape(shape: Any, value: Any, renames: dict[str, str] | None = None) -> Any:
    """Convert a resolved CloudFormation value to the request shape: member names
    matched case-insensitively (or renamed), unknown members dropped, scalars coerced."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return None
        members = {name.lower(): name for name in shape.members}
        converted: dict[str, Any] = {}
        for key, item in value.items():
            target = (renames or {}).get(key) or members.get(key.lower())
            if target is None:
                continue
            result = to_shape(shape.members[target], item)
            if result is not None:
                converted[target] = result
        return converted
    if kind == "list":
        if not isinstance(value, list):
            value = [value]
        items = [to_shape(shape.member, item) for item in value]
        return [item for item in items if item is not None]
    if kind == "map":
        if isinstance(value, list):  # CloudFormation tag lists for tag maps
            value = {tag.get("Key"): tag.get("Value") for tag in value if isinstance(tag, dict)}
        if not isinstance(value, dict):
            return None
        return {str(k): to_shape(shape.value, v) for k, v in value.items()}
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "string" and isinstance(value, dict | list):
        return json.dumps(value)
    return str(value) if kind == "string" else value


def request(client: Any, operation: str, properties: dict[str, Any], **overrides: Any) -> Any:
    """Call `operation` with `properties` converted to its input shape, plus overrides."""
    model = client.meta.service_model.operation_model(operation)
    renames = {key: value for key, value in overrides.pop("_renames", {}).items()}
    params = to_shape(model.input_shape, properties, renames) or {}
    params.update({key: value for key, value in overrides.items() if value is not None})
    method = getattr(client, _snake(operation))
    return method(**params)


def _snake(name: str) -> str:
    out = []
    for index, char in enumerate(name):
        if char.isupper() and index:
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Create the table an AWS::DynamoDB::Table declares (keys, indexes, TTL) under `name`;
    its TableDescription. Local mode and the runtime test fixtures both create theirs here.
    """
    description: dict[str, Any] = request(
        dynamodb, "CreateTable", properties, TableName=name, BillingMode="PAY_PER_REQUEST"
    )["TableDescription"]
    ttl = properties.get("TimeToLiveSpecification") or {}
    if ttl.get("Enabled") in (True, "true"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    return description


class Provisioner:
    """Creates CloudFormation resources of the supported types in the emulator."""

    def __init__(self, emulator: MotoEmulator, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self._emulator = emulator
        self._account = account_id
        self._region = emulator.region
        self._clients: dict[str, Any] = {}
        self._creators: dict[str, Callable[[Stack, str, dict[str, Any]], Physical]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::S3::Bucket": self._bucket,
            "AWS::SNS::Topic": self._topic,
            "AWS::SQS::Queue": self._queue,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::ECS::Cluster": self._cluster,
            "AWS::ECS::ClusterCapacityProviderAssociations": self._capacity_providers,
            "AWS::ECS::TaskDefinition": self._task_definition,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
            "AWS::Cognito::UserPool": self._user_pool,
            "AWS::Cognito::UserPoolClient": self._user_pool_client,
            "AWS::EC2::VPC": self._vpc,
            "AWS::EC2::Subnet": self._subnet,
            "AWS::EC2::SecurityGroup": self._security_group,
            "AWS::IAM::Role": self._role,
            "AWS::KMS::Key": self._kms_key,
            "AWS::SecretsManager::Secret": self._secret,
        }
        self.by_type: dict[str, list[Physical]] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._emulator.client(service)
        return self._clients[service]

    def supports(self, resource_type: str) -> bool:
        return resource_type in self._creators

    def create(
        self, stack: Stack, logical_id: str, resource_type: str, properties: dict[str, Any]
    ) -> Physical:
        physical = self._creators[resource_type](stack, logical_id, properties)
        self.by_type.setdefault(resource_type, []).append(physical)
        log.debug("created %s %s -> %s", resource_type, logical_id, physical.ref)
        return physical

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self._region if region else ''}:{self._account}:{resource}"

    # ---- one creator per type ------------------------------------------------------

    def _table(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("TableName") or generated_name(stack, logical_id, max_length=255)
        description = create_table(self.client("dynamodb"), name, props)
        return Physical(
            ref=name,
            attributes={
                "Arn": description["TableArn"],
                "StreamArn": f"{description['TableArn']}/stream/local",
            },
        )

    def _bucket(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("BucketName") or generated_name(stack, logical_id, max_length=63).lower()
        s3 = self.client("s3")
        kwargs: dict[str, Any] = {"Bucket": name}
        if self._region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        s3.create_bucket(**kwargs)
        versioning = (props.get("VersioningConfiguration") or {}).get("Status")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
        return Physical(
            ref=name,
            attributes={
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self._region}.amazonaws.com",
            },
        )

    def _topic(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("TopicName") or generated_name(stack, logical_id, max_length=256)
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        return Physical(ref=arn, attributes={"TopicArn": arn, "TopicName": name})

    def _queue(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("QueueName") or generated_name(stack, logical_id, max_length=80)
        attributes = {
            key: json.dumps(props[key]) if isinstance(props[key], dict) else str(props[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy")
            if key in props
        }
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return Physical(
            ref=url,
            attributes={
                "Arn": self._arn("sqs", name),
                "QueueName": name,
                "QueueUrl": url,
            },
        )

    def _log_group(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("LogGroupName") or generated_name(stack, logical_id, max_length=512)
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if props.get("RetentionInDays"):
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=int(props["RetentionInDays"])
            )
        return Physical(ref=name, attributes={"Arn": self._arn("logs", f"log-group:{name}:*")})

    def _cluster(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("ClusterName") or generated_name(stack, logical_id, max_length=255)
        arn = request(self.client("ecs"), "CreateCluster", props, clusterName=name)["cluster"][
            "clusterArn"
        ]
        return Physical(ref=name, attributes={"Arn": arn})

    def _capacity_providers(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        self.client("ecs").put_cluster_capacity_providers(
            cluster=props["Cluster"],
            capacityProviders=props.get("CapacityProviders", []),
            defaultCapacityProviderStrategy=to_shape(
                self.client("ecs")
                .meta.service_model.operation_model("PutClusterCapacityProviders")
                .input_shape.members["defaultCapacityProviderStrategy"],
                props.get("DefaultCapacityProviderStrategy", []),
            ),
        )
        return Physical(ref=props["Cluster"])

    def _task_definition(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        containers = props.get("ContainerDefinitions", [])
        for container in containers:
            # moto places a task only with container-level memory; the product sets it
            # (ECS accepts it too), this only covers a template that does not.
            if not container.get("Memory") and not container.get("MemoryReservation"):
                container["Memory"] = int(props.get("Memory", 512))
        arn = request(self.client("ecs"), "RegisterTaskDefinition", props)["taskDefinition"][
            "taskDefinitionArn"
        ]
        return Physical(ref=arn, attributes={"TaskDefinitionArn": arn})

    def _schedule_group(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("Name") or generated_name(stack, logical_id, max_length=64)
        arn = self.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        return Physical(ref=name, attributes={"Arn": arn})

    def _user_pool(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("UserPoolName") or generated_name(stack, logical_id)
        pool = request(
            self.client("cognito-idp"),
            "CreateUserPool",
            props,
            PoolName=name,
            _renames={"UserPoolTags": "UserPoolTags"},
        )["UserPool"]
        return Physical(
            ref=pool["Id"],
            attributes={
                "Arn": pool["Arn"],
                "ProviderName": f"cognito-idp.{self._region}.amazonaws.com/{pool['Id']}",
                "ProviderURL": f"https://cognito-idp.{self._region}.amazonaws.com/{pool['Id']}",
                "UserPoolId": pool["Id"],
            },
        )

    def _user_pool_client(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        client = request(
            self.client("cognito-idp"),
            "CreateUserPoolClient",
            props,
            ClientName=props.get("ClientName") or logical_id,
        )["UserPoolClient"]
        return Physical(ref=client["ClientId"], attributes={"ClientId": client["ClientId"]})

    def _vpc(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock=props.get("CidrBlock", "10.0.0.0/16"))["Vpc"]
        for attribute in ("EnableDnsHostnames", "EnableDnsSupport"):
            if attribute in props:
                ec2.modify_vpc_attribute(
                    VpcId=vpc["VpcId"], **{attribute: {"Value": props[attribute] in (True, "true")}}
                )
        return Physical(
            ref=vpc["VpcId"],
            attributes={"VpcId": vpc["VpcId"], "CidrBlock": vpc["CidrBlock"]},
        )

    def _subnet(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        subnet = self.client("ec2").create_subnet(
            VpcId=props["VpcId"],
            CidrBlock=props["CidrBlock"],
            AvailabilityZone=props.get("AvailabilityZone") or f"{self._region}a",
        )["Subnet"]
        return Physical(
            ref=subnet["SubnetId"],
            attributes={
                "SubnetId": subnet["SubnetId"],
                "AvailabilityZone": subnet["AvailabilityZone"],
            },
        )

    def _security_group(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("GroupName") or generated_name(stack, logical_id, max_length=255)
        group_id = self.client("ec2").create_security_group(
            GroupName=name,
            Description=props.get("GroupDescription", logical_id),
            VpcId=props.get("VpcId"),
        )["GroupId"]
        return Physical(ref=group_id, attributes={"GroupId": group_id, "VpcId": props.get("VpcId")})

    def _role(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("RoleName") or generated_name(stack, logical_id, max_length=64)
        role = self.client("iam").create_role(
            RoleName=name,
            Path=props.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(props.get("AssumeRolePolicyDocument", {})),
            Description=str(props.get("Description", ""))[:1000],
        )["Role"]
        return Physical(ref=name, attributes={"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _kms_key(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        # The key policy is not emulated (moto evaluates none); the key itself is real: what
        # is encrypted with it decrypts only with the same context, a signing key signs.
        key = self.client("kms").create_key(
            Description=str(props.get("Description", logical_id)),
            KeySpec=str(props.get("KeySpec", "SYMMETRIC_DEFAULT")),
            KeyUsage=str(props.get("KeyUsage", "ENCRYPT_DECRYPT")),
        )["KeyMetadata"]
        return Physical(ref=key["KeyId"], attributes={"Arn": key["Arn"], "KeyId": key["KeyId"]})

    def _secret(self, stack: Stack, logical_id: str, props: dict[str, Any]) -> Physical:
        """A secret with its SecretString, or one generated as its GenerateSecretString asks."""
        secretsmanager = self.client("secretsmanager")
        value = props.get("SecretString")
        if value is None:
            generate = props.get("GenerateSecretString") or {}
            value = secretsmanager.get_random_password(
                **to_shape(
                    secretsmanager.meta.service_model.operation_model(
                        "GetRandomPassword"
                    ).input_shape,
                    {k: v for k, v in generate.items() if k in _RANDOM_PASSWORD_FIELDS},
                )
            )["RandomPassword"]
        name = props.get("Name") or generated_name(stack, logical_id, max_length=256)
        arn = secretsmanager.create_secret(Name=name, SecretString=str(value))["ARN"]
        return Physical(ref=arn, attributes={"Id": arn})


_RANDOM_PASSWORD_FIELDS = {
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
}
