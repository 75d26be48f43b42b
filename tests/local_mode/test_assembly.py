"""The one reader of cdk.json and cdk.out: what it finds, and when it synthesizes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from local_mode import assembly
from local_mode.assembly import (
    Stack,
    TemplateError,
    cdk_context,
    context_overrides,
    function_tables,
    is_fresh,
    load_stacks,
    project_prefix,
    synthesized,
)

pytestmark = pytest.mark.local_mode


@pytest.fixture(scope="module")
def stacks() -> dict[str, Stack]:
    return load_stacks(synthesized())


def test_context_overrides_stay_strings_as_cdk_synth_passes_them() -> None:
    assert context_overrides(["freeTestsPerMonth=3", "allowedModels=a,b", "x="]) == {
        "freeTestsPerMonth": "3",
        "allowedModels": "a,b",
        "x": "",
    }
    for bad in ("novalue", "=3"):
        with pytest.raises(ValueError, match="key=value"):
            context_overrides([bad])


def test_context_is_cdk_json_with_overrides_on_top() -> None:
    on_disk = json.loads(assembly.CDK_JSON.read_text())["context"]
    assert cdk_context() == on_disk
    assert cdk_context({"projectName": "acme"})["projectName"] == "acme"
    assert project_prefix() == on_disk["projectName"]
    assert project_prefix({"projectName": "acme"}) == "acme"


def test_stacks_know_their_names_without_the_prefix(stacks: dict[str, Stack]) -> None:
    prefix = project_prefix()
    assert {stack.tags["Project"] for stack in stacks.values()} == {prefix}
    assert sorted(stack.short_name for stack in stacks.values()) == [
        "control-plane",
        "identity",
        "platform",
        "web-content",
        "web-hosting",
    ]


def test_every_table_a_function_is_given_is_found_with_its_keys_indexes_and_ttl(
    stacks: dict[str, Stack],
) -> None:
    tables = function_tables(stacks)
    assert sorted(tables) == [
        "ACCOUNTS_TABLE",
        "AGENTS_TABLE",
        "AUDIT_TABLE",
        "ORGANIZATIONS_TABLE",
        "PROFILES_TABLE",
        "RUNS_TABLE",
        "USAGE_TABLE",
    ]
    runs = tables["RUNS_TABLE"]
    assert runs.key_schema == [("runId", "HASH")]
    assert runs.index_names == ["byUser", "byOrganization"]
    organizations = tables["ORGANIZATIONS_TABLE"]
    assert organizations.key_schema == [("organizationId", "HASH"), ("item", "RANGE")]
    assert organizations.index_names == ["byInvitation"]
    assert organizations.ttl_attribute == "purgeAt"
    assert runs.ttl_attribute == "expiresAt"
    assert tables["AGENTS_TABLE"].key_schema == [("userId", "HASH"), ("agentId", "RANGE")]
    assert tables["ACCOUNTS_TABLE"].index_names == ["byExternalId"]
    assert tables["ACCOUNTS_TABLE"].ttl_attribute is None
    for table in tables.values():
        declared = stacks[table.stack].resources[table.logical_id]
        assert declared["Type"] == "AWS::DynamoDB::Table"
        assert declared["Properties"] == table.properties


def _function(environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Handler": "handlers.x.handler", "Environment": {"Variables": environment}},
    }


def _table(hash_key: str) -> dict[str, Any]:
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {"KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}]},
    }


def test_tables_are_followed_across_stacks_through_their_exports() -> None:
    data = Stack(
        "Data",
        "p-data",
        {
            "Resources": {"T1": _table("id"), "Key": {"Type": "AWS::KMS::Key"}},
            "Outputs": {
                "O": {"Value": {"Ref": "T1"}, "Export": {"Name": "p-data:T1"}},
                "K": {"Value": {"Ref": "Key"}, "Export": {"Name": "p-data:Key"}},
            },
        },
        [],
    )
    api = Stack(
        "Api",
        "p-api",
        {
            "Resources": {
                "Fn": _function(
                    {
                        "THINGS_TABLE": {"Fn::ImportValue": "p-data:T1"},
                        "LOCAL_TABLE": {"Ref": "T2"},
                        "KEY_ID": {"Fn::ImportValue": "p-data:Key"},
                        "PLAIN": "value",
                    }
                ),
                "T2": _table("pk"),
            }
        },
        ["Data"],
    )
    tables = function_tables({"Data": data, "Api": api})
    assert {name: (t.stack, t.logical_id) for name, t in tables.items()} == {
        "THINGS_TABLE": ("Data", "T1"),
        "LOCAL_TABLE": ("Api", "T2"),
    }


def test_one_variable_naming_two_tables_is_an_error() -> None:
    stack = Stack(
        "S",
        "s",
        {
            "Resources": {
                "A": _function({"T": {"Ref": "One"}}),
                "B": _function({"T": {"Ref": "Two"}}),
                "One": _table("a"),
                "Two": _table("b"),
            }
        },
        [],
    )
    with pytest.raises(TemplateError, match="T names One in one function and Two"):
        function_tables({"S": stack})


def _copy_manifest(tmp_path: Path) -> Path:
    cdk_out = tmp_path / "cdk.out"
    cdk_out.mkdir()
    shutil.copy(synthesized() / "manifest.json", cdk_out / "manifest.json")
    return cdk_out


def test_cdk_out_older_than_a_source_of_the_app_is_stale(tmp_path: Path) -> None:
    cdk_out = _copy_manifest(tmp_path)
    assert is_fresh(cdk_out)
    newest = assembly._newest_source()
    os.utime(cdk_out / "manifest.json", (newest - 10, newest - 10))
    assert not is_fresh(cdk_out)
    assert not is_fresh(tmp_path / "nothing-here")


def test_a_fresh_cdk_out_is_reused_without_synthesizing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cdk_out = _copy_manifest(tmp_path)

    def no_synth(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("synthesized although cdk.out was fresh")

    monkeypatch.setattr(assembly, "synthesize", no_synth)
    assert synthesized(cdk_out) == cdk_out


def test_a_stale_cdk_out_is_replaced_whole_by_a_new_synthesis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cdk_out = tmp_path / "cdk.out"
    cdk_out.mkdir()
    (cdk_out / "left-over.json").write_text("{}")
    calls: list[Path] = []

    def fake_synth(outdir: Path, overrides: Any = None) -> None:
        calls.append(outdir)
        (outdir / "manifest.json").write_text('{"artifacts": {}}')

    monkeypatch.setattr(assembly, "synthesize", fake_synth)
    assert synthesized(cdk_out) == cdk_out
    assert len(calls) == 1 and calls[0] != cdk_out  # written beside it, then swapped in
    assert sorted(p.name for p in cdk_out.iterdir()) == ["manifest.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["cdk.out"]  # no staging left behind
