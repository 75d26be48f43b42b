"""Tier 2 locally: launch dist/customer-onboarding.yaml into a second emulated account.

    python -m local_mode.customer --account 111111111111 --launch-stack-url '<url>'
    (make local-customer ACCOUNT=111111111111 LAUNCH_STACK_URL='<url>')

The Launch Stack link of POST /aws-account/onboarding carries the External ID and the
single-use registration token; its parameters are the stack's, as in the console.

Run against a running local mode (LOCAL_API_PORT). Credentials for the customer
account come from assuming a role in it, which is how moto scopes an account. The
stack is created by the emulator's CloudFormation. moto can only back custom
resources with Lambda functions, so the registration custom resource (whose
ServiceToken is the platform's SNS topic) is taken out of the template and its
Create request is published to the topic here, as CloudFormation would, with the
properties resolved from the created stack. Its ResponseURL is one of CloudFormation's
own: a key in the `cloudformation-custom-resource-response-<region>` bucket, which the
registration function accepts exactly as in AWS; local mode's process sends its https
requests for that bucket to the emulator's S3 (local_mode/plumbing.py), where this waits
for the answer (SUCCESS, or the FAILED reason).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import urllib.request
import uuid
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import boto3
import yaml

from local_mode.assembly import ROOT, Stack
from local_mode.plumbing import response_bucket
from local_mode.templates import Physical, Resolver

TEMPLATE = ROOT / "dist" / "customer-onboarding.yaml"


def _local_info(api_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{api_url}/_local/health", timeout=10) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def customer_session(info: dict[str, Any], account_id: str) -> boto3.session.Session:
    """Credentials that moto attributes to `account_id` (an assumed role in it)."""
    sts = boto3.client(
        "sts",
        endpoint_url=info["aws"],
        region_name=info["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fake credentials
    )
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/local-customer-admin",
        RoleSessionName="local-customer",
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=info["region"],
    )


def _sns_backed(resource: dict[str, Any]) -> bool:
    token = json.dumps(resource.get("Properties", {}).get("ServiceToken", ""))
    return resource.get("Type", "").startswith("Custom::") and ":sns:" in token


class _CreatedStack:
    """A Provisioner over a stack moto already created: physical ids and ARNs."""

    def __init__(
        self,
        resources: dict[str, str],
        session: boto3.session.Session,
        info: dict[str, Any],
        account_id: str,
    ) -> None:
        self._resources = resources
        self._iam = session.client("iam", endpoint_url=info["aws"])
        self._account = account_id
        self._region = info["region"]

    def supports(self, resource_type: str) -> bool:
        return True

    def create(
        self, stack: Stack, logical_id: str, resource_type: str, properties: dict[str, Any]
    ) -> Physical:
        physical = self._resources.get(logical_id, logical_id)
        attributes: dict[str, Any] = {}
        if resource_type == "AWS::IAM::Role":
            attributes["Arn"] = self._iam.get_role(RoleName=physical)["Role"]["Arn"]
        elif resource_type == "AWS::ECS::Cluster":
            attributes["Arn"] = f"arn:aws:ecs:{self._region}:{self._account}:cluster/{physical}"
        elif resource_type == "AWS::EC2::SecurityGroup":
            attributes["GroupId"] = physical  # moto's physical id of a group is its id
        return Physical(ref=physical, attributes=attributes)


def _apply_vpc_attributes(ec2: Any, template: dict[str, Any], physical: dict[str, str]) -> None:
    """moto's CloudFormation ignores a VPC's EnableDnsHostnames/EnableDnsSupport; its
    RunTask then fails on an awsvpc task (no private DNS name for the ENI). Set them as
    CloudFormation would have."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::EC2::VPC" or logical_id not in physical:
            continue
        for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
            value = resource.get("Properties", {}).get(attribute)
            if value is not None:
                ec2.modify_vpc_attribute(
                    VpcId=physical[logical_id],
                    **{attribute: {"Value": value in (True, "true")}},
                )


def link_parameters(launch_stack_url: str) -> dict[str, str]:
    """The stack parameters a Launch Stack link prefills (`param_<Name>=<value>`)."""
    fragment = urlsplit(launch_stack_url).fragment
    query = fragment.split("?", 1)[1] if "?" in fragment else ""
    return {
        key.removeprefix("param_"): values[0]
        for key, values in parse_qs(query, keep_blank_values=True).items()
        if key.startswith("param_")
    }


def response_url(region: str, stack_id: str, logical_id: str, request_id: str) -> str:
    """A ResponseURL shaped as CloudFormation's (its bucket, its key; no signature here)."""
    key = quote(f"{stack_id}|{logical_id}|{request_id}", safe="")
    return f"https://{response_bucket(region)}.s3.{region}.amazonaws.com/{key}"


def launch_customer_stack(
    *,
    api_url: str,
    account_id: str,
    launch_stack_url: str | None = None,
    external_id: str | None = None,
    registration_token: str = "",
    stack_name: str = "agent-builder-onboarding",
) -> dict[str, str]:
    """Create the onboarding stack in `account_id`, register it; the stack's outputs.

    The parameters come from `launch_stack_url` (as the console fills them in), or from
    `external_id` and `registration_token`."""
    linked = link_parameters(launch_stack_url) if launch_stack_url else {}
    external_id = linked.get("ExternalId", external_id)
    if not external_id:
        raise RuntimeError("give a Launch Stack link or an External ID")
    registration_token = linked.get("RegistrationToken", registration_token)
    info = _local_info(api_url)
    session = customer_session(info, account_id)
    endpoint = info["aws"]
    template = yaml.safe_load(TEMPLATE.read_text())
    registrations = {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if _sns_backed(resource)
    }
    launched = copy.deepcopy(template)
    for logical_id in registrations:
        del launched["Resources"][logical_id]
    for resource in launched["Resources"].values():
        depends = resource.get("DependsOn")
        if isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in registrations]
        elif depends in registrations:
            del resource["DependsOn"]

    topic = info.get("registrationTopicArn")
    if not topic:
        raise RuntimeError("the running local mode reports no registration topic")
    declared = template.get("Parameters", {})
    values = {
        "ExternalId": external_id,
        "RegistrationToken": registration_token,
        "PlatformAccountId": info["accountId"],
        "RegistrationTopicArn": topic,
    }
    parameters = [
        {"ParameterKey": key, "ParameterValue": value}
        for key, value in values.items()
        if key in declared
    ]
    cloudformation = session.client("cloudformation", endpoint_url=endpoint)
    stack_id = cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(launched),
        Parameters=parameters,
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )["StackId"]
    deadline = time.monotonic() + 60
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
        if stack["StackStatus"].endswith("_COMPLETE") or stack["StackStatus"].endswith("_FAILED"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stack_name} is still {stack['StackStatus']}")
        time.sleep(0.5)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(
            f"{stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}"
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", r["LogicalResourceId"])
        for r in cloudformation.describe_stack_resources(StackName=stack_id)["StackResources"]
        if "LogicalResourceId" in r  # moto lists types it cannot create without one
    }
    _apply_vpc_attributes(session.client("ec2", endpoint_url=endpoint), template, physical)
    customer_stack = Stack("Customer", stack_name, template, [])
    resolver = Resolver(
        [customer_stack],
        _CreatedStack(physical, session, info, account_id),
        region=info["region"],
        account_id=account_id,
        parameters={**{k: v for k, v in values.items() if k in declared}},
    )
    sns = session.client("sns", endpoint_url=endpoint)
    answers: dict[str, str] = {}
    for logical_id, resource in registrations.items():
        properties = resolver.resolve(customer_stack, resource["Properties"])
        request_id = str(uuid.uuid4())
        url = response_url(info["region"], stack_id, logical_id, request_id)
        message = {
            "RequestType": "Create",
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": url,
            "StackId": stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": resource["Type"],
            "ResourceProperties": properties,
        }
        sns.publish(TopicArn=properties["ServiceToken"], Message=json.dumps(message))
        answers[logical_id] = url
    for logical_id, url in answers.items():
        answer = wait_for_response(info, url)
        if answer.get("Status") != "SUCCESS":
            # CloudFormation would roll the stack back; here it stays, to look at.
            raise RuntimeError(
                f"{stack_name}: {logical_id} answered {answer.get('Status')}: "
                f"{answer.get('Reason', '')}"
            )
    return outputs


def wait_for_response(info: dict[str, Any], url: str, timeout: float = 60) -> dict[str, Any]:
    """The custom resource's answer in the emulated response bucket, as CloudFormation
    would wait for it. Registration retries AccessDenied for up to 40 s (IAM propagation),
    hence the patience."""
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3",
        endpoint_url=info["aws"],
        region_name=info["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fake credentials
    )
    parts = urlsplit(url)
    bucket = (parts.hostname or "").split(".", 1)[0]
    key = unquote(parts.path.lstrip("/"))
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return dict(json.loads(body))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer to custom resource request at {key} in {timeout} s")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m local_mode.customer", description=__doc__)
    parser.add_argument("--account", required=True, help="the customer's 12-digit account id")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--launch-stack-url", help="the launchStackUrl of POST /aws-account/onboarding"
    )
    given.add_argument("--external-id", help="from POST /aws-account/onboarding")
    parser.add_argument(
        "--registration-token",
        default="",
        help="with --external-id: the link's param_RegistrationToken (single use, 24 h)",
    )
    parser.add_argument(
        "--api",
        default=f"http://127.0.0.1:{os.environ.get('LOCAL_API_PORT', '8080')}",
        help="the running local mode",
    )
    args = parser.parse_args(argv)
    if not TEMPLATE.is_file():
        print(
            f"{TEMPLATE} is missing: run make synth (scripts/export_templates.py)", file=sys.stderr
        )
        return 2
    try:
        outputs = launch_customer_stack(
            api_url=args.api,
            account_id=args.account,
            launch_stack_url=args.launch_stack_url,
            external_id=args.external_id,
            registration_token=args.registration_token,
        )
    except (RuntimeError, OSError) as exc:
        print(f"local-customer: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(outputs, indent=2))
    print(
        f"account {args.account}: stack created, registration answered SUCCESS "
        "(GET /aws-account shows it connected)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
