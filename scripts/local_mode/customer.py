"""Tier 2 locally: launch dist/customer-onboarding.yaml into a second emulated account.

    python -m scripts.local_mode.customer --account 111111111111 --external-id <id>
    (make local-customer ACCOUNT=111111111111 EXTERNAL_ID=<id>)

Run against a running local mode (LOCAL_API_PORT). Credentials for the customer
account come from assuming a role in it, which is how moto scopes an account. The
stack is created by the emulator's CloudFormation. moto can only back custom
resources with Lambda functions, so the registration custom resource (whose
ServiceToken is the platform's SNS topic) is taken out of the template and its
Create request is published to the topic here, as CloudFormation would, with the
properties resolved from the created stack. Its response URL points back at local
mode, which records the answer.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import yaml

from scripts.local_mode.templates import Physical, Resolver, Stack

ROOT = Path(__file__).resolve().parents[2]
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
        return Physical(ref=physical, attributes=attributes)


def launch_customer_stack(
    *, api_url: str, account_id: str, external_id: str, stack_name: str = "agent-builder-onboarding"
) -> dict[str, str]:
    """Create the onboarding stack in `account_id`, register it; the stack's outputs."""
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

    topic = f"arn:aws:sns:{info['region']}:{info['accountId']}:agent-builder-registrations"
    declared = template.get("Parameters", {})
    values = {
        "ExternalId": external_id,
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
    customer_stack = Stack("Customer", stack_name, template, [])
    resolver = Resolver(
        [customer_stack],
        _CreatedStack(physical, session, info, account_id),
        region=info["region"],
        account_id=account_id,
        parameters={**{k: v for k, v in values.items() if k in declared}},
    )
    sns = session.client("sns", endpoint_url=endpoint)
    for logical_id, resource in registrations.items():
        properties = resolver.resolve(customer_stack, resource["Properties"])
        request_id = str(uuid.uuid4())
        message = {
            "RequestType": "Create",
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": f"{api_url}/_local/cfn-response/{request_id}",
            "StackId": stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": resource["Type"],
            "ResourceProperties": properties,
        }
        sns.publish(TopicArn=properties["ServiceToken"], Message=json.dumps(message))
    return outputs


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(
        prog="python -m scripts.local_mode.customer", description=__doc__
    )
    parser.add_argument("--account", required=True, help="the customer's 12-digit account id")
    parser.add_argument("--external-id", required=True, help="from POST /aws-account/onboarding")
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
    outputs = launch_customer_stack(
        api_url=args.api, account_id=args.account, external_id=args.external_id
    )
    print(json.dumps(outputs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
