"""The release archive (dist/releases/) and the changes the platform computes from it.

Released customer templates stay as published: a customer's stack runs one of them, and
what updating it changes is computed from it and the latest one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_builder.template_changes import (
    RELEASES_FILE,
    TemplateReleases,
    UnsupportedTemplate,
    diff,
    summarize,
)
from scripts.export_templates import (
    RELEASES_DIR,
    ReleaseChanged,
    archive_release,
    release_index,
    release_path,
)
from tests.infra.conftest import ROOT

LOCK_FILE = ROOT / "stacks" / "customer_onboarding.lock"
# Published, so frozen: these hashes never change (1.0.0 is `git show
# 15d8a1b:dist/customer-onboarding.yaml`, 1.1.0 added response streaming, 1.2.0 the
# registration token, 1.3.0 organisations' cost-allocation tags and allowed regions).
RELEASED = {
    "1.0.0": "ec6a5b4fbe5a1443becea99068f75454c60a2f26c24896068d5f7e67477a52ed",
    "1.1.0": "298b40e673751621f654726db42a3e65b06c770a1b1cd90665c7c4bc7a1fbc7a",
    "1.2.0": "3cd77a3a81f13c5660741098bf78069b2b31f6f7152671459c2432f4247a753c",
    "1.3.0": "28e28b6bbb9feaa94ff98bd4c0b8c57ba02ac7ae7ae019c88f5b9fcafec81ba5",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(version: str) -> dict[str, Any]:
    return dict(yaml.safe_load(release_path(version).read_text()))


# ---- the archive ---------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "digest"), sorted(RELEASED.items()))
def test_released_templates_never_change(version: str, digest: str) -> None:
    assert sha256(release_path(version)) == digest, (
        f"dist/releases/customer-onboarding-{version}.yaml changed: a released template is "
        "what customers' stacks run; restore it and release the change under a new version"
    )


def test_every_archived_file_has_the_hash_recorded_at_its_release() -> None:
    recorded = json.loads(RELEASES_FILE.read_text())["releases"]
    files = {p.name for p in RELEASES_DIR.glob("*")}
    assert files == {f"customer-onboarding-{v}.yaml" for v in recorded}
    for version, entry in recorded.items():
        assert sha256(release_path(version)) == entry["sha256"], version


def test_the_locked_version_is_released_as_locked() -> None:
    version, digest = LOCK_FILE.read_text().split()
    assert release_path(version).exists(), (
        f"templateVersion {version} is locked but not in dist/releases/: run "
        "`python scripts/export_templates.py --update-lock` and commit dist/releases/"
    )
    assert sha256(release_path(version)) == digest


def test_the_bundled_summaries_are_what_the_archive_says() -> None:
    recorded = json.loads(RELEASES_FILE.read_text())
    assert release_index(RELEASES_DIR, recorded) == recorded, (
        "lambda_src/agent_builder/template_releases.json is stale: run "
        "`python scripts/export_templates.py` and commit it"
    )


def test_no_released_file_was_ever_modified_in_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    modified = subprocess.run(
        ["git", "log", "--diff-filter=MDR", "--format=%h %s", "--", "dist/releases/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert modified == "", f"commits that changed a released template:\n{modified}"


def test_a_released_version_is_never_rewritten(tmp_path: Path) -> None:
    assert archive_release("1.2.0", "first\n", tmp_path) is True
    assert archive_release("1.2.0", "first\n", tmp_path) is False

    with pytest.raises(ReleaseChanged, match=r"1\.2\.0 is released and never changes"):
        archive_release("1.2.0", "second\n", tmp_path)
    assert release_path("1.2.0", tmp_path).read_text() == "first\n"


def test_the_index_refuses_a_file_changed_after_its_release(tmp_path: Path) -> None:
    shutil.copy(release_path("1.0.0"), tmp_path)
    recorded = release_index(tmp_path)
    path = release_path("1.0.0", tmp_path)
    path.write_text(path.read_text().replace("InvokeModel\n", "InvokeModel*\n"))

    with pytest.raises(ReleaseChanged, match="changed after its release"):
        release_index(tmp_path, recorded)


def test_the_index_refuses_a_released_file_that_went_missing(tmp_path: Path) -> None:
    shutil.copy(release_path("1.0.0"), tmp_path)
    recorded = release_index(tmp_path)
    release_path("1.0.0", tmp_path).unlink()

    with pytest.raises(ReleaseChanged, match="missing"):
        release_index(tmp_path, recorded)


def test_the_index_takes_only_versioned_release_names(tmp_path: Path) -> None:
    (tmp_path / "customer-onboarding-latest.yaml").write_text("{}\n")

    with pytest.raises(SystemExit, match=r"MAJOR\.MINOR\.PATCH"):
        release_index(tmp_path)


# ---- what a version changes ----------------------------------------------------------------


def test_1_1_0_adds_exactly_response_streaming_to_the_agent_task_role() -> None:
    changes = diff(summarize(load("1.0.0")), summarize(load("1.1.0")))

    assert changes == {
        "resources": {"added": [], "removed": []},
        "permissions": [
            {
                "role": "AgentsTaskRoleBA3BBC07",
                "roleName": "<ResourcePrefix>-agent-task",
                "change": "changed",
                "actionsAdded": ["bedrock:InvokeModelWithResponseStream"],
                "actionsRemoved": [],
                "managedPoliciesAdded": [],
                "managedPoliciesRemoved": [],
                "statementsRescoped": [],
                "trustPolicyChanged": False,
            }
        ],
        "parameters": {"added": [], "removed": []},
    }


def test_1_3_0_lets_tasks_carry_cost_tags_and_adds_the_optional_region_limit() -> None:
    changes = diff(summarize(load("1.2.0")), summarize(load("1.3.0")))

    # The region limit is a policy of its own, created only with AllowedRegions.
    ((added,),) = [changes["resources"]["added"]]
    assert added["type"] == "AWS::IAM::Policy"
    assert added["logicalId"].startswith("DeployerAllowedRegions")
    assert changes["resources"]["removed"] == []
    assert changes["parameters"] == {"added": ["AllowedRegions"], "removed": []}
    (deployer,) = changes["permissions"]
    assert deployer["roleName"] == "agent-builder-deployer"
    assert deployer["actionsRemoved"] == []
    # Nothing new is allowed: every added action is a denial (outside AllowedRegions).
    assert deployer["actionsAdded"]
    assert all(a.startswith("Deny ") for a in deployer["actionsAdded"])
    assert "Deny ecs:RunTask" in deployer["actionsAdded"]
    assert "Deny iam:PassRole" not in deployer["actionsAdded"]
    # The tag keys a task may carry: RunTask and tagging on create, nothing else.
    assert deployer["statementsRescoped"] == [
        "RunTheRunnerFamilyOnPrefixedCluster",
        "TagOnlyWhatItCreates",
    ]
    assert deployer["trustPolicyChanged"] is False
    assert deployer["managedPoliciesAdded"] == deployer["managedPoliciesRemoved"] == []


def test_an_update_shows_the_words_of_every_release_it_crosses() -> None:
    releases = TemplateReleases.load()
    notes = load("1.3.0")["Metadata"]["ReleaseNotes"]["Changes"][0]

    crossing = releases.changes("1.1.0", "1.3.0")
    assert crossing is not None
    # 1.2.0 was released before releases carried words; 1.3.0 says what it changes.
    assert [n["version"] for n in crossing["notes"]] == ["1.3.0"]
    assert crossing["notes"][0]["changes"][0] == notes
    assert "cost-allocation" in notes
    assert releases.changes("1.3.0", "1.3.0")["notes"] == []  # type: ignore[index]
    assert releases.changes("1.3.0", "1.2.0")["notes"] == []  # type: ignore[index]


def test_the_template_being_released_has_words_of_its_own() -> None:
    from stacks.config import PlatformConfig
    from stacks.onboarding_templates import handed_out, render_customer_template
    from tests.infra.conftest import default_context

    config = PlatformConfig.from_context(default_context().get)
    template = yaml.safe_load(render_customer_template(handed_out(config)))

    notes = template["Metadata"].get("ReleaseNotes", {})
    assert notes.get("Version") == config.template_version, (
        "stacks/customer_onboarding_stack.py RELEASE_VERSION/RELEASE_CHANGES describe another "
        "version: write what this templateVersion changes for the customers who update"
    )
    assert notes["Changes"] and all(len(text.split()) >= 20 for text in notes["Changes"])
    earlier = [
        summarize(load(v))["notes"]
        for v in TemplateReleases.load().versions
        if v != config.template_version
    ]
    assert notes["Changes"] not in earlier


def test_release_notes_that_are_not_texts_stop_the_release() -> None:
    template = copy.deepcopy(BASE)
    template["Metadata"] = {"ReleaseNotes": {"Version": "9.9.9", "Changes": [{"Ref": "X"}]}}

    with pytest.raises(UnsupportedTemplate, match="ReleaseNotes"):
        summarize(template)


def test_the_platform_compares_any_two_released_versions() -> None:
    releases = TemplateReleases.load()

    assert releases.versions[:2] == ["1.0.0", "1.1.0"]
    assert releases.changes("1.0.0", "1.0.0") == {
        "fromVersion": "1.0.0",
        "toVersion": "1.0.0",
        "resources": {"added": [], "removed": []},
        "permissions": [],
        "parameters": {"added": [], "removed": []},
        "notes": [],
    }
    assert releases.changes("0.9.0", "1.1.0") is None
    assert releases.changes("1.0.0", "9.9.9") is None


def _role(actions: list[str], resource: Any = "*", sid: str = "Work") -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    }
                ]
            },
            "RoleName": {"Fn::Join": ["", [{"Ref": "ResourcePrefix"}, "-worker"]]},
            "Policies": [
                {
                    "PolicyName": "inline",
                    "PolicyDocument": {
                        "Statement": [
                            {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
                        ]
                    },
                }
            ],
        },
    }


BASE: dict[str, Any] = {
    "Parameters": {"ResourcePrefix": {"Type": "String"}, "VpcId": {"Type": "String"}},
    "Resources": {
        "Worker": _role(["ecs:RunTask", "ecs:StopTask"]),
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Deployer": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "agent-deployer"}},
        "DeployerPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "p",
                "Roles": [{"Ref": "Deployer"}],
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}
                    ]
                },
            },
        },
    },
}


def test_resources_parameters_and_each_roles_actions_are_compared() -> None:
    new = copy.deepcopy(BASE)
    del new["Parameters"]["VpcId"]
    new["Parameters"]["SubnetIds"] = {"Type": "String"}
    del new["Resources"]["Queue"]
    new["Resources"]["Topic"] = {"Type": "AWS::SNS::Topic"}
    new["Resources"]["Worker"] = _role(["ecs:RunTask", "ecs:DescribeTasks"], resource="arn:x")
    new["Resources"]["Reader"] = _role(["s3:GetObject"])
    new["Resources"]["DeployerPolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": ["cloudformation:DescribeStacks"], "Resource": "arn:stack"}
    )

    changes = diff(summarize(BASE), summarize(new))

    assert changes["resources"] == {
        "added": [
            {"logicalId": "Reader", "type": "AWS::IAM::Role"},
            {"logicalId": "Topic", "type": "AWS::SNS::Topic"},
        ],
        "removed": [{"logicalId": "Queue", "type": "AWS::SQS::Queue"}],
    }
    assert changes["parameters"] == {"added": ["SubnetIds"], "removed": ["VpcId"]}
    by_role = {change["role"]: change for change in changes["permissions"]}
    assert set(by_role) == {"Deployer", "Reader", "Worker"}
    assert by_role["Deployer"]["roleName"] == "agent-deployer"
    assert by_role["Deployer"]["actionsAdded"] == ["cloudformation:DescribeStacks"]
    assert by_role["Reader"]["change"] == "added"
    assert by_role["Reader"]["actionsAdded"] == ["s3:GetObject"]
    assert by_role["Worker"] == {
        "role": "Worker",
        "roleName": "<ResourcePrefix>-worker",
        "change": "changed",
        "actionsAdded": ["ecs:DescribeTasks"],
        "actionsRemoved": ["ecs:StopTask"],
        "managedPoliciesAdded": [],
        "managedPoliciesRemoved": [],
        "statementsRescoped": ["Work"],
        "trustPolicyChanged": False,
    }


def test_a_narrower_statement_or_a_new_trust_condition_is_a_change_too() -> None:
    new = copy.deepcopy(BASE)
    worker = new["Resources"]["Worker"]["Properties"]
    worker["Policies"][0]["PolicyDocument"]["Statement"][0]["Condition"] = {
        "StringEquals": {"ecs:cluster": "arn:cluster"}
    }
    worker["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] = {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }

    (change,) = diff(summarize(BASE), summarize(new))["permissions"]

    assert change["role"] == "Worker"
    assert change["actionsAdded"] == change["actionsRemoved"] == []
    assert change["statementsRescoped"] == ["Work"]
    assert change["trustPolicyChanged"] is True


def test_denials_not_actions_and_managed_policies_are_reported_too() -> None:
    new = copy.deepcopy(BASE)
    policy = new["Resources"]["DeployerPolicy"]["Properties"]["PolicyDocument"]
    policy["Statement"] += [
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    ]
    new["Resources"]["Deployer"]["Properties"]["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    ]

    (change,) = diff(summarize(BASE), summarize(new))["permissions"]

    assert change["role"] == "Deployer"
    assert change["actionsAdded"] == ["Deny s3:*", "NotAction iam:*"]
    assert change["managedPoliciesAdded"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]


def test_conditional_statements_and_the_templates_own_managed_policies_count() -> None:
    new = copy.deepcopy(BASE)
    policy = new["Resources"]["DeployerPolicy"]["Properties"]["PolicyDocument"]
    policy["Statement"].append(
        {
            "Fn::If": [
                "CreateVpc",
                {"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"},
                {"Ref": "AWS::NoValue"},
            ]
        }
    )
    new["Resources"]["Extra"] = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "PolicyDocument": {
                "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]
            }
        },
    }
    new["Resources"]["Deployer"]["Properties"]["ManagedPolicyArns"] = [{"Ref": "Extra"}]

    changes = diff(summarize(BASE), summarize(new))

    (change,) = changes["permissions"]
    assert change["actionsAdded"] == ["ec2:DescribeVpcs", "sqs:SendMessage"]
    assert changes["resources"]["added"] == [
        {"logicalId": "Extra", "type": "AWS::IAM::ManagedPolicy"}
    ]


def test_a_statement_that_computes_its_actions_stops_the_release() -> None:
    template = copy.deepcopy(BASE)
    policy = template["Resources"]["DeployerPolicy"]["Properties"]["PolicyDocument"]
    policy["Statement"].append({"Effect": "Allow", "Action": [{"Ref": "Actions"}], "Resource": "*"})

    with pytest.raises(UnsupportedTemplate, match="extend"):
        summarize(template)
