"""What is ours in this account and region, and what `cdk destroy --all` would leave behind.

    python scripts/teardown_plan.py [--prefix agent-builder]            # dry run: list only
    python scripts/teardown_plan.py --force                             # delete the leftovers
    python scripts/teardown_plan.py --expect-clean                      # exit 1 if any remain

Ours means: the prefix is a whole leading segment of the resource's name (`agent-builder-x`,
`agent-builder/x`, `/agent-builder/x`, `/aws/lambda/agent-builder-x`, `alias/agent-builder-x`)
or the resource carries the tag `Project=<prefix>`. `agent-builder2-x` and `other-agent-builder`
are not ours and are never touched.

For each resource the plan says whether a live stack owns it (CloudFormation deletes it),
whether `retainData` keeps it (a stack resource with DeletionPolicy Retain), or whether it
would be left behind. `--force` deletes only the leftovers of the kinds the runtime and
AWS create outside CloudFormation (log groups Lambda creates, task definitions, schedules
and schedule groups), and only once no stack of the platform exists. `--expect-clean`
(what `make destroy` ends with) fails while anything but what `retainData` keeps remains.

The region comes from AWS_REGION or AWS_DEFAULT_REGION.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_mode import assembly  # noqa: E402

LIVE = "live"
OWNED, RETAINED, LEFT_BEHIND = "stack", "retained (retainData)", "left behind"
# Kinds `--force` may delete: what exists outside CloudFormation by design.
DELETABLE = {"log group", "task definition", "schedule", "schedule group"}
# What `retainData=true` keeps after `cdk destroy` (the stacks' Retain resources).
RETAINED_KINDS = {"bucket", "table", "user pool", "repository"}


@dataclass(frozen=True)
class Found:
    service: str
    kind: str
    name: str
    arn: str = ""
    ids: frozenset[str] = field(default_factory=frozenset)  # every spelling a stack may use

    def spellings(self) -> set[str]:
        return {self.name, self.arn, *self.ids} - {""}


class Names:
    """The prefix as a whole leading segment of a name (after any AWS-owned path)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        p = re.escape(prefix)
        self._pattern = re.compile(
            rf"^(?:/aws/lambda/|/aws/ecs/containerinsights/|/aws/vendedlogs/|alias/|/)?{p}(?:[-/_.:]|$)",
            re.IGNORECASE,
        )

    def ours(self, name: str) -> bool:
        return bool(self._pattern.match(name))


def region_from_env(
    env: dict[str, str] | os._Environ[str] = os.environ, *, command: str = "make teardown-plan"
) -> str:
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise SystemExit(
            "No region: set AWS_REGION (or AWS_DEFAULT_REGION) to the platform's region, "
            f"e.g. AWS_REGION=us-east-1 {command}"
        )
    return region


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


class Inventory:
    """Everything of ours, service by service, read-only."""

    def __init__(self, session: Any, names: Names) -> None:
        self.session = session
        self.names = names

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def stacks(self) -> list[Found]:
        cfn = self.client("cloudformation")
        return [
            Found("cloudformation", "stack", s["StackName"], s["StackId"])
            for s in _pages(cfn, "list_stacks", "StackSummaries")
            if s["StackStatus"] != "DELETE_COMPLETE" and self.names.ours(s["StackName"])
        ]

    def log_groups(self) -> list[Found]:
        return [
            Found("logs", "log group", g["logGroupName"], g.get("arn", "").removesuffix(":*"))
            for g in _pages(self.client("logs"), "describe_log_groups", "logGroups")
            if self.names.ours(g["logGroupName"])
        ]

    def task_definitions(self) -> list[Found]:
        ecs = self.client("ecs")
        families = [
            family
            for family in _pages(
                ecs,
                "list_task_definition_families",
                "families",
                familyPrefix=self.names.prefix,
                status="ALL",
            )
            if self.names.ours(family)
        ]
        found = []
        for family in families:
            for status in ("ACTIVE", "INACTIVE"):
                # ListTaskDefinitions' familyPrefix is a whole family name, not a prefix.
                for arn in _pages(
                    ecs,
                    "list_task_definitions",
                    "taskDefinitionArns",
                    familyPrefix=family,
                    status=status,
                ):
                    found.append(Found("ecs", "task definition", arn.rsplit("/", 1)[-1], arn))
        return found

    def clusters(self) -> list[Found]:
        return [
            Found("ecs", "cluster", arn.rsplit("/", 1)[-1], arn)
            for arn in _pages(self.client("ecs"), "list_clusters", "clusterArns")
            if self.names.ours(arn.rsplit("/", 1)[-1])
        ]

    def schedules(self) -> list[Found]:
        scheduler = self.client("scheduler")
        found = []
        groups = [g for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
        for group in groups:
            ours = self.names.ours(group["Name"])
            if ours:
                found.append(Found("scheduler", "schedule group", group["Name"], group["Arn"]))
            for schedule in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]:
                if ours or self.names.ours(schedule["Name"]):
                    found.append(
                        Found(
                            "scheduler",
                            "schedule",
                            f"{group['Name']}/{schedule['Name']}",
                            schedule["Arn"],
                        )
                    )
        return found

    def repositories(self) -> list[Found]:
        return [
            Found("ecr", "repository", r["repositoryName"], r["repositoryArn"])
            for r in _pages(self.client("ecr"), "describe_repositories", "repositories")
            if self.names.ours(r["repositoryName"])
        ]

    def buckets(self) -> list[Found]:
        return [
            Found("s3", "bucket", b["Name"], f"arn:aws:s3:::{b['Name']}")
            for b in self.client("s3").list_buckets().get("Buckets", [])
            if self.names.ours(b["Name"])
        ]

    def user_pools(self) -> list[Found]:
        cognito = self.client("cognito-idp")
        found = []
        for pool in _pages(cognito, "list_user_pools", "UserPools", MaxResults=60):
            if not self.names.ours(pool["Name"]):
                continue
            found.append(
                Found("cognito-idp", "user pool", pool["Name"], ids=frozenset({pool["Id"]}))
            )
            for idp in cognito.list_identity_providers(UserPoolId=pool["Id"], MaxResults=60)[
                "Providers"
            ]:
                found.append(
                    Found(
                        "cognito-idp", "identity provider", f"{pool['Name']}/{idp['ProviderName']}"
                    )
                )
        return found

    def iam(self) -> list[Found]:
        iam = self.client("iam")
        roles = [
            Found("iam", "role", r["RoleName"], r["Arn"])
            for r in _pages(iam, "list_roles", "Roles")
            if self.names.ours(r["RoleName"])
        ]
        policies = [
            Found("iam", "policy", p["PolicyName"], p["Arn"])
            for p in _pages(iam, "list_policies", "Policies", Scope="Local")
            if self.names.ours(p["PolicyName"])
        ]
        return roles + policies

    def topics(self) -> list[Found]:
        return [
            Found("sns", "topic", t["TopicArn"].rsplit(":", 1)[-1], t["TopicArn"])
            for t in _pages(self.client("sns"), "list_topics", "Topics")
            if self.names.ours(t["TopicArn"].rsplit(":", 1)[-1])
        ]

    def queues(self) -> list[Found]:
        urls = self.client("sqs").list_queues().get("QueueUrls", [])
        return [
            Found("sqs", "queue", url.rsplit("/", 1)[-1], ids=frozenset({url}))
            for url in urls
            if self.names.ours(url.rsplit("/", 1)[-1])
        ]

    def tables(self) -> list[Found]:
        return [
            Found("dynamodb", "table", name)
            for name in _pages(self.client("dynamodb"), "list_tables", "TableNames")
            if self.names.ours(name)
        ]

    def kms_aliases(self) -> list[Found]:
        return [
            Found("kms", "alias", a["AliasName"], a.get("AliasArn", ""))
            for a in _pages(self.client("kms"), "list_aliases", "Aliases")
            if self.names.ours(a["AliasName"])
        ]

    def secrets(self) -> list[Found]:
        return [
            Found("secretsmanager", "secret", s["Name"], s["ARN"])
            for s in _pages(self.client("secretsmanager"), "list_secrets", "SecretList")
            if self.names.ours(s["Name"])
        ]

    def budgets(self) -> list[Found]:
        account = self.client("sts").get_caller_identity()["Account"]
        try:
            budgets = self.client("budgets").describe_budgets(AccountId=account).get("Budgets", [])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NotFoundException":
                return []
            raise
        return [
            Found("budgets", "budget", b["BudgetName"])
            for b in budgets
            if self.names.ours(b["BudgetName"])
        ]

    def functions(self) -> list[Found]:
        return [
            Found("lambda", "function", f["FunctionName"], f["FunctionArn"])
            for f in _pages(self.client("lambda"), "list_functions", "Functions")
            if self.names.ours(f["FunctionName"])
        ]

    def alarms(self) -> list[Found]:
        return [
            Found("cloudwatch", "alarm", a["AlarmName"], a["AlarmArn"])
            for a in _pages(self.client("cloudwatch"), "describe_alarms", "MetricAlarms")
            if self.names.ours(a["AlarmName"])
        ]

    def tagged(self) -> list[Found]:
        """Anything else carrying Project=<prefix> (VPCs, subnets, security groups, ...)."""
        tagging = self.client("resourcegroupstaggingapi")
        found = []
        for mapping in _pages(
            tagging,
            "get_resources",
            "ResourceTagMappingList",
            TagFilters=[{"Key": "Project", "Values": [self.names.prefix]}],
        ):
            arn = mapping["ResourceARN"]
            service = arn.split(":")[2]
            resource = arn.split(":", 5)[-1]
            found.append(
                Found(
                    service,
                    "tagged resource",
                    resource,
                    arn,
                    frozenset({resource.rsplit("/", 1)[-1]}),
                )
            )
        return found

    def collectors(self) -> list[Callable[[], list[Found]]]:
        return [
            self.stacks,
            self.log_groups,
            self.task_definitions,
            self.clusters,
            self.schedules,
            self.repositories,
            self.buckets,
            self.user_pools,
            self.iam,
            self.topics,
            self.queues,
            self.tables,
            self.kms_aliases,
            self.secrets,
            self.budgets,
            self.functions,
            self.alarms,
            self.tagged,
        ]

    def everything(self) -> list[Found]:
        found: list[Found] = []
        for collect in self.collectors():
            found += collect()
        # A tagged resource already listed by name is listed once.
        named = {s for f in found if f.kind != "tagged resource" for s in f.spellings()}
        return [f for f in found if f.kind != "tagged resource" or not (f.spellings() & named)]


@dataclass(frozen=True)
class StackFacts:
    owned: dict[str, str]  # physical id or name -> stack name
    retained: set[str]


def stack_facts(session: Any, stacks: Iterable[Found]) -> StackFacts:
    cfn = session.client("cloudformation")
    owned: dict[str, str] = {}
    retained: set[str] = set()
    for stack in stacks:
        body = cfn.get_template(StackName=stack.arn or stack.name)["TemplateBody"]
        template = body if isinstance(body, dict) else json.loads(body)
        keep = {
            lid
            for lid, r in template.get("Resources", {}).items()
            if r.get("DeletionPolicy") == "Retain"
        }
        for resource in _pages(
            cfn, "list_stack_resources", "StackResourceSummaries", StackName=stack.name
        ):
            physical = resource.get("PhysicalResourceId", "")
            if not physical:
                continue
            owned[physical] = stack.name
            if resource["LogicalResourceId"] in keep:
                retained.add(physical)
    return StackFacts(owned, retained)


def status(found: Found, facts: StackFacts, *, retain_data: bool, stacks_live: bool) -> str:
    if found.kind == "stack":
        return LIVE
    spellings = found.spellings()
    if spellings & facts.retained:
        return RETAINED
    if any(s in facts.owned for s in spellings):
        return f"{OWNED} {next(facts.owned[s] for s in spellings if s in facts.owned)}"
    if not stacks_live and retain_data and found.kind in RETAINED_KINDS:
        return RETAINED
    return LEFT_BEHIND


def delete(session: Any, found: Found) -> None:
    if found.kind == "log group":
        session.client("logs").delete_log_group(logGroupName=found.name)
    elif found.kind == "task definition":
        ecs = session.client("ecs")
        with contextlib.suppress(ClientError):  # an INACTIVE revision is deregistered already
            ecs.deregister_task_definition(taskDefinition=found.arn)
        ecs.delete_task_definitions(taskDefinitions=[found.arn])
    elif found.kind == "schedule":
        group, name = found.name.split("/", 1)
        session.client("scheduler").delete_schedule(GroupName=group, Name=name)
    elif found.kind == "schedule group":
        session.client("scheduler").delete_schedule_group(Name=found.name)
    else:  # pragma: no cover - guarded by DELETABLE
        raise ValueError(f"--force never deletes a {found.kind}")


def plan(*, prefix: str, retain_data: bool, session: Any = None) -> list[tuple[Found, str]]:
    session = session or boto3.session.Session(region_name=region_from_env())
    inventory = Inventory(session, Names(prefix))
    found = inventory.everything()
    stacks = [f for f in found if f.kind == "stack"]
    facts = stack_facts(session, stacks)
    return [(f, status(f, facts, retain_data=retain_data, stacks_live=bool(stacks))) for f in found]


def print_plan(rows: list[tuple[Found, str]]) -> None:
    if not rows:
        print("nothing of ours in this account and region")
        return
    by_service: dict[str, list[tuple[Found, str]]] = {}
    for row in rows:
        by_service.setdefault(row[0].service, []).append(row)
    for service in sorted(by_service):
        print(f"{service}:")
        for found, state in sorted(by_service[service], key=lambda r: (r[0].kind, r[0].name)):
            print(f"  {found.kind:<18} {found.name:<72} {state}")
    left = [f for f, s in rows if s == LEFT_BEHIND]
    print(f"\n{len(rows)} resources of ours; {len(left)} would be left behind by cdk destroy")


def remove_leftovers(session: Any, rows: list[tuple[Found, str]]) -> list[Found]:
    """Delete the leftovers --force may delete; refuses while any stack of ours exists."""
    stacks = [f.name for f, s in rows if s == LIVE]
    if stacks:
        raise SystemExit(f"refusing to delete while stacks still exist: {', '.join(stacks)}")
    # Schedules before their groups; a group's deletion takes the rest of its schedules.
    order = ["schedule", "schedule group", "task definition", "log group"]
    doomed = [f for f, s in rows if s == LEFT_BEHIND and f.kind in DELETABLE]
    for found in sorted(doomed, key=lambda f: order.index(f.kind)):
        print(f"deleting {found.kind} {found.name}")
        try:
            delete(session, found)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
    return doomed


def unexpected(rows: list[tuple[Found, str]]) -> list[tuple[Found, str]]:
    """What must not exist after a teardown: everything but what retainData keeps."""
    return [(f, s) for f, s in rows if s != RETAINED]


def main(argv: list[str] | None = None) -> int:
    context = assembly.cdk_context()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=assembly.project_prefix())
    parser.add_argument(
        "--retain-data",
        action="store_true",
        default=str(context.get("retainData")).lower() == "true",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true", help="delete the leftovers, then check")
    mode.add_argument("--expect-clean", action="store_true", help="exit 1 if anything remains")
    args = parser.parse_args(argv)

    session = boto3.session.Session(region_name=region_from_env())
    rows = plan(prefix=args.prefix, retain_data=args.retain_data, session=session)
    print_plan(rows)
    if args.force:
        remove_leftovers(session, rows)
        rows = plan(prefix=args.prefix, retain_data=args.retain_data, session=session)
    if args.force or args.expect_clean:
        remaining = unexpected(rows)
        if remaining:
            print(
                "\nstill here after the teardown (delete by hand, or find what holds them):",
                file=sys.stderr,
            )
            for found, state in remaining:
                print(f"  {found.service} {found.kind} {found.name} ({state})", file=sys.stderr)
            return 1
        print("nothing left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
