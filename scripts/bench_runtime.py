"""Runtime benchmark (make bench-runtime): python scripts/bench_runtime.py

(a) Cold import of the HTTP API's two handler modules (handlers.api, the core routes;
    handlers.org_api, the /org routes: each is its own function), of the sign-up
    triggers' module (handlers.sign_up) and of the GitHub OIDC bridge's
    (handlers.oidc_bridge), against a
    bare `import boto3`: the median of 5 fresh interpreters each, alternating, timed inside
    the interpreter around the import alone (interpreter start-up is the same for both and
    left out). Target: each ratio is at most 1.5.
(b) AWS calls one test launch makes, counted with a botocore `before-call` hook on the
    session the functions' client factory uses, against moto. Target: at most 5. The
    launch is audited (AUDIT_TABLE set; its record is checked after counting). For
    information (no target): the calls of one enterprise deployment by a member, into the
    organisation's registered account through its role, and with the member's IAM
    Identity Center session (moto has no `sso`: a Stubber answers GetRoleCredentials).

Prints the figures; exits 1 if a target is missed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SRC = ROOT / "lambda_src"
RUNS = 5
MAX_IMPORT_RATIO = 1.5
# Handler modules whose cold import is measured (the API's first: its figures come first).
HANDLER_MODULES = ("handlers.api", "handlers.org_api", "handlers.sign_up", "handlers.oidc_bridge")
MAX_LAUNCH_CALLS = 5

TIMED_IMPORT = (
    "import time, sys\n"
    "start = time.perf_counter()\n"
    "import {module}\n"
    "sys.stdout.write(repr(time.perf_counter() - start))\n"
)


def time_import(module: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(LAMBDA_SRC), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", TIMED_IMPORT.format(module=module)],
        env=env,
        cwd=str(LAMBDA_SRC),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout)


def import_ratio(module: str = "handlers.api") -> tuple[float, float, float, float]:
    # One warm-up of each so both read the same (file-system cached) files.
    time_import("boto3")
    time_import(module)
    boto3_times: list[float] = []
    api_times: list[float] = []
    both_times: list[float] = []
    for _ in range(RUNS):
        boto3_times.append(time_import("boto3"))
        api_times.append(time_import(module))
        both_times.append(time_import(f"{module}, boto3"))
    boto3_median = statistics.median(boto3_times)
    api_median = statistics.median(api_times)
    return boto3_median, api_median, api_median / boto3_median, statistics.median(both_times)


def launch_calls() -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Set up the platform in moto with its own clients, then count the launch's calls
    (and, for information, an enterprise deployment's, by the way it reached the account)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    sys.path[:0] = [str(ROOT), str(LAMBDA_SRC)]

    from moto import mock_aws

    from agent_builder import clients, wiring
    from tests.runtime.support import AGENT, USER, http_event, lambda_context

    with mock_aws():
        import boto3

        from tests.runtime.conftest import create_tables

        region = "us-east-1"
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="t", Description="t", VpcId=vpc)["GroupId"]
        ecs = boto3.client("ecs", region_name=region)
        cluster = ecs.create_cluster(clusterName="agent-builder-cluster")["cluster"]["clusterArn"]
        task_definition = ecs.register_task_definition(
            family="agent-builder-agent-runner",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "runner", "image": "runner", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        boto3.client("s3", region_name=region).create_bucket(Bucket="agent-builder-artifacts")
        boto3.client("scheduler", region_name=region).create_schedule_group(Name="timeouts")
        dynamodb = boto3.client("dynamodb", region_name=region)
        create_tables(dynamodb)
        os.environ.update(
            {
                "PROJECT_NAME": "agent-builder",
                "PROFILES_TABLE": "agent-builder-profiles",
                "AGENTS_TABLE": "agent-builder-agents",
                "RUNS_TABLE": "agent-builder-runs",
                "USAGE_TABLE": "agent-builder-usage",
                "AUDIT_TABLE": "agent-builder-audit",
                "ORGANIZATIONS_TABLE": "agent-builder-organizations",
                "CLUSTER_ARN": cluster,
                "TASK_DEFINITION_ARN": task_definition,
                "RUNNER_CONTAINER_NAME": "runner",
                "SUBNET_IDS": subnet,
                "SECURITY_GROUP_ID": group,
                "USE_SPOT": "true",
                "ARTIFACTS_BUCKET": "agent-builder-artifacts",
                "LOG_GROUP_NAME": "/agent-builder/agent-runs",
                "LOG_STREAM_PREFIX": "runs",
                "FREE_TESTS_PER_MONTH": "10",
                "MAX_TEST_MINUTES": "5",
                "LAUNCHES_PER_MINUTE": "5",
                "ALLOWED_MODELS": str(AGENT["model"]),
                "MAX_OUTPUT_TOKENS": "1024",
                "MAX_CONCURRENT_TEST_TASKS": "20",
                "PLATFORM_FREE_TESTS_PER_MONTH": "1000",
                "MAX_AGENTS_PER_USER": "50",
                "SCHEDULE_GROUP_NAME": "timeouts",
                "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/stopper",
                "RUN_RETENTION_DAYS": "30",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
            }
        )
        wiring.reset()
        import json

        from handlers.api import handler

        calls: Counter[str] = Counter()

        def count(model: Any, **_: Any) -> None:
            calls[f"{model.service_model.service_name}:{model.name}"] += 1

        # Clients copy the session's hooks when they are created: register first.
        clients._session().events.register("before-call.*.*", count)
        created = handler(http_event("POST", "/agents", body=AGENT), lambda_context())
        agent_id = json.loads(created["body"])["agentId"]
        calls.clear()
        answer = handler(
            http_event("POST", f"/agents/{agent_id}/tests", user=USER, body={"input": "Hello"}),
            lambda_context(),
        )
        if answer["statusCode"] != 202:
            raise SystemExit(f"the test launch failed: {answer}")
        if not calls:
            raise SystemExit("no AWS call was counted: the hook is not on the functions' clients")
        counted = Counter(calls)
        # The figure must be that of an audited launch (its record rides in the charge).
        records = dynamodb.scan(TableName="agent-builder-audit")["Items"]
        if "test.launch" not in {item["action"]["S"] for item in records}:
            raise SystemExit("the test launch wrote no audit record")
        clients._session().events.unregister("before-call.*.*", count)
        return counted, enterprise_deployment_calls()


def enterprise_deployment_calls() -> dict[str, Counter[str]]:
    """Inside launch_calls' moto: an organisation with one registered account (what its
    StackSet stack's registration stores), a developer's agent, and one deployment by
    each way into the account, counted like the test launch."""
    import json

    import boto3
    from botocore.stub import Stubber

    from agent_builder import clients, wiring
    from tests.runtime.conftest import customer_credentials
    from tests.runtime.org_support import register_org_account
    from tests.runtime.sso_support import configure_sso, role_credentials, start_session
    from tests.runtime.support import (
        AGENT,
        CUSTOMER_ACCOUNT,
        CUSTOMER_REGION,
        TABLES,
        TIER2_ENV,
        TIER3_ENV,
        USER,
        api_handler,
        http_event,
        lambda_context,
    )

    region = "us-east-1"
    kms = boto3.client("kms", region_name=region)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    os.environ.update(
        {
            **TIER2_ENV,
            **TIER3_ENV,
            "ACCOUNTS_TABLE": TABLES["ACCOUNTS_TABLE"],
            "SSO_TOKEN_KEY_ARN": key,
        }
    )
    wiring.reset()
    credentials = customer_credentials()
    account = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=CUSTOMER_REGION,
    )
    ec2 = account.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's ENIs
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    cluster = account.client("ecs").create_cluster(clusterName="agent-builder-cluster")
    account.client("logs").create_log_group(logGroupName="/agent-builder/agent-runs")

    def call(method: str, path: str, body: Any = None) -> Any:
        # The function API Gateway routes the path to (the /org routes have their own).
        event = http_event(method, path, user=USER, body=body)
        answer = api_handler(path)(event, lambda_context())
        return answer["statusCode"], json.loads(answer.get("body") or "null")

    status, organization = call("POST", "/org", {"name": "Bench"})
    if status != 201:
        raise SystemExit(f"the organisation was not founded: {organization}")
    organization_id = organization["organizationId"]
    status, agent = call("POST", "/agents", {**AGENT, "team": "t", "project": "p"})
    dynamodb = boto3.client("dynamodb", region_name=region)
    register_org_account(
        dynamodb,
        TABLES["ACCOUNTS_TABLE"],
        organization_id,
        account_id=CUSTOMER_ACCOUNT,
        region=CUSTOMER_REGION,
        cluster_arn=cluster["cluster"]["clusterArn"],
        subnet_ids=[subnet],
        security_group_id=group,
    )
    path = f"/agents/{agent['agentId']}/deployments"
    figures: dict[str, Counter[str]] = {}
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}:{model.name}"] += 1

    # Through the organisation's registered account role (a fresh function: the launcher
    # role is assumed too, then cached for later launches).
    wiring.reset()
    clients._session().events.register("before-call.*.*", count)
    status, run = call("POST", path, {})
    if status != 202:
        raise SystemExit(f"the enterprise deployment failed: {run}")
    figures["account-role"] = Counter(calls)

    # With the member's IAM Identity Center session.
    table = TABLES["ORGANIZATIONS_TABLE"]
    configure_sso(
        dynamodb, table, organization_id, account_id=CUSTOMER_ACCOUNT, sso_region=CUSTOMER_REGION
    )
    start_session(dynamodb, table, kms, key, organization_id, USER, sso_region=CUSTOMER_REGION)
    calls.clear()
    with Stubber(clients.client_in("sso", CUSTOMER_REGION)) as sso:
        sso.add_response("get_role_credentials", role_credentials(credentials))
        status, run = call("POST", path, {})
    if status != 202:
        raise SystemExit(f"the enterprise deployment with an SSO session failed: {run}")
    figures["sso"] = Counter(calls)
    clients._session().events.unregister("before-call.*.*", count)
    return figures


def main() -> int:
    missed = []
    print(f"(a) cold import, median of {RUNS} fresh interpreters each:")
    for module in HANDLER_MODULES:
        boto3_median, median, ratio, both_median = import_ratio(module)
        print(f"    import boto3          {boto3_median * 1000:7.1f} ms")
        print(f"    import {module:<15}{median * 1000:7.1f} ms")
        print(f"    ratio                 {ratio:7.2f}  (target <= {MAX_IMPORT_RATIO})")
        # The handlers defer boto3 to the first client; the first invocation pays for it.
        print(
            f"    {module} + boto3  {both_median * 1000:7.1f} ms  "
            f"({both_median / boto3_median:.2f}x, for information)"
        )
        if ratio > MAX_IMPORT_RATIO:
            missed.append(f"{module} import ratio {ratio:.2f} > {MAX_IMPORT_RATIO}")
    calls, enterprise = launch_calls()
    total = sum(calls.values())
    print(f"(b) AWS calls for one test launch: {total}  (target <= {MAX_LAUNCH_CALLS})")
    for name, number in calls.items():
        print(f"    {number} x {name}")
    if total > MAX_LAUNCH_CALLS:
        missed.append(f"{total} AWS calls > {MAX_LAUNCH_CALLS}")
    for via, counted in enterprise.items():
        print(
            f"    one enterprise deployment via {via}: {sum(counted.values())} AWS calls "
            "(for information)"
        )
        for name, number in counted.items():
            print(f"        {number} x {name}")
    if missed:
        print("MISSED: " + "; ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
