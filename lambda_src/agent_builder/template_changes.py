"""What updating an onboarding stack from one released template version to another changes.

Every released customer template is kept in dist/releases/ (never rewritten);
scripts/export_templates.py summarises each one into template_releases.json, bundled
with this code: per version its parameters, its resources (logical id and type) and, per
IAM role, the actions its policies allow and a fingerprint of each statement's scope. The
platform then compares any two released versions here, in the request, without parsing
templates: `changes(old, new)` is computed from the two templates' summaries, never
written by hand. A version that is not in the archive has no changes to show (None).

Beside them, `changes` carries the words of each release in between (`notes`): what the
release says it changes and why, from its template's `Metadata.ReleaseNotes` (released
with it, so they never change either). They explain; the computed changes are what holds.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RELEASES_FILE = Path(__file__).with_name("template_releases.json")

ROLE = "AWS::IAM::Role"
# Policies that attach statements to roles: AWS::IAM::Policy and ManagedPolicy's `Roles`.
ROLE_POLICIES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


class UnsupportedTemplate(ValueError):
    """The template uses an IAM construct the summary cannot describe faithfully."""


def _fingerprint(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _display_name(value: Any) -> str | None:
    """A role name as the customer reads it: literal text, `<Parameter>` for a Ref."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        rendered = [_display_name(part) for part in _as_list(parts)]
        if isinstance(separator, str) and all(part is not None for part in rendered):
            return separator.join(part for part in rendered if part is not None)
    return None


def _branches(items: list[Any]) -> list[Any]:
    """Both branches of statement-level Fn::If (either may apply), without AWS::NoValue."""
    flat: list[Any] = []
    for item in items:
        if isinstance(item, dict) and set(item) == {"Fn::If"} and len(item["Fn::If"]) == 3:
            flat.extend(_branches(list(item["Fn::If"][1:])))
        elif item != {"Ref": "AWS::NoValue"}:
            flat.append(item)
    return flat


def _statements(document: Any, where: str) -> dict[str, dict[str, Any]]:
    """Actions and a scope fingerprint per statement (keyed by Sid, else by actions).

    Allowed actions are listed as they are; a Deny statement's as `Deny <action>` and a
    NotAction statement's as `NotAction <action>` (everything but it), so that no statement
    goes unreported."""
    if not isinstance(document, dict):
        raise UnsupportedTemplate(f"{where}: the policy document is not a literal object")
    found: dict[str, dict[str, Any]] = {}
    for index, statement in enumerate(_branches(_as_list(document.get("Statement", [])))):
        if not isinstance(statement, dict):
            raise UnsupportedTemplate(f"{where}: statement {index} is not a literal object")
        effect = statement.get("Effect", "Allow")
        field = "NotAction" if "NotAction" in statement else "Action"
        named = _as_list(statement.get(field, []))
        if effect not in ("Allow", "Deny") or not all(isinstance(a, str) for a in named):
            raise UnsupportedTemplate(
                f"{where}: statement {index} has no literal Effect and actions; extend "
                "agent_builder/template_changes.py to describe it before releasing it"
            )
        label = ("Deny " if effect == "Deny" else "") + (
            "NotAction " if field == "NotAction" else ""
        )
        actions = sorted({f"{label}{action}" for action in named})
        key = str(statement.get("Sid") or ",".join(actions))
        scope = {k: v for k, v in statement.items() if k not in ("Sid", field)}
        if key in found:
            key = f"{key}#{index}"
        found[key] = {"actions": actions, "scope": _fingerprint(scope)}
    return found


def _release_notes(template: Mapping[str, Any]) -> list[str]:
    """What the template's release says it changes (Metadata.ReleaseNotes.Changes)."""
    notes = ((template.get("Metadata") or {}).get("ReleaseNotes") or {}).get("Changes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise UnsupportedTemplate("Metadata.ReleaseNotes.Changes is not a list of texts")
    return list(notes)


def summarize(template: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a parsed CloudFormation template that `changes` compares or shows."""
    resources: dict[str, Any] = dict(template.get("Resources") or {})
    roles: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != ROLE:
            continue
        properties = resource.get("Properties") or {}
        statements: dict[str, dict[str, Any]] = {}
        for policy in properties.get("Policies") or []:
            name = policy.get("PolicyName")
            for key, value in _statements(policy.get("PolicyDocument"), logical_id).items():
                statements[f"{name}/{key}"] = value
        roles[logical_id] = {
            "name": _display_name(properties.get("RoleName")),
            "trust": _fingerprint(properties.get("AssumeRolePolicyDocument")),
            "managedPolicies": sorted(
                arn if isinstance(arn, str) else json.dumps(arn, sort_keys=True)
                for arn in properties.get("ManagedPolicyArns") or []
            ),
            "statements": statements,
        }
    for logical_id, resource in resources.items():
        if resource.get("Type") not in ROLE_POLICIES:
            continue
        properties = resource.get("Properties") or {}
        if properties.get("Users") or properties.get("Groups"):
            raise UnsupportedTemplate(f"{logical_id}: policies for users or groups")
        # A managed policy of this template counts for the roles that list it by Ref.
        attached = [
            {"Ref": role}
            for role, summary in roles.items()
            if json.dumps({"Ref": logical_id}, sort_keys=True) in summary["managedPolicies"]
        ]
        for target in [*(properties.get("Roles") or []), *attached]:
            role = target.get("Ref") if isinstance(target, dict) else None
            if role not in roles:
                raise UnsupportedTemplate(f"{logical_id}: attached to {target!r}, not a role here")
            document = properties.get("PolicyDocument")
            for key, value in _statements(document, logical_id).items():
                roles[role]["statements"][f"{logical_id}/{key}"] = value
    return {
        "parameters": sorted(template.get("Parameters") or {}),
        "resources": {key: str(resource.get("Type")) for key, resource in resources.items()},
        "roles": roles,
        "notes": _release_notes(template),
    }


def _actions(role: Mapping[str, Any] | None) -> set[str]:
    if role is None:
        return set()
    return {action for s in role["statements"].values() for action in s["actions"]}


def _scoped_statements(role: Mapping[str, Any] | None) -> dict[str, str]:
    if role is None:
        return {}
    return {key.split("/", 1)[-1]: s["scope"] for key, s in role["statements"].items()}


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Resources, per-role IAM actions and parameters that `new` adds or removes."""
    old_resources, new_resources = old["resources"], new["resources"]
    added = {k: t for k, t in new_resources.items() if old_resources.get(k) != t}
    removed = {k: t for k, t in old_resources.items() if new_resources.get(k) != t}
    permissions = []
    for role_id in sorted(set(old["roles"]) | set(new["roles"])):
        before, after = old["roles"].get(role_id), new["roles"].get(role_id)
        was, now = _actions(before), _actions(after)
        old_scopes, new_scopes = _scoped_statements(before), _scoped_statements(after)
        rescoped = sorted(
            key for key in set(old_scopes) & set(new_scopes) if old_scopes[key] != new_scopes[key]
        )
        trust_changed = (
            before is not None and after is not None and before["trust"] != after["trust"]
        )
        had = set((before or {}).get("managedPolicies", []))
        has = set((after or {}).get("managedPolicies", []))
        if (
            was == now
            and had == has
            and not rescoped
            and not trust_changed
            and (before is None) == (after is None)
        ):
            continue
        permissions.append(
            {
                "role": role_id,
                "roleName": (after or before or {}).get("name"),
                "change": "added" if before is None else "removed" if after is None else "changed",
                "actionsAdded": sorted(now - was),
                "actionsRemoved": sorted(was - now),
                "managedPoliciesAdded": sorted(has - had),
                "managedPoliciesRemoved": sorted(had - has),
                "statementsRescoped": rescoped,
                "trustPolicyChanged": trust_changed,
            }
        )
    return {
        "resources": {
            "added": [{"logicalId": k, "type": t} for k, t in sorted(added.items())],
            "removed": [{"logicalId": k, "type": t} for k, t in sorted(removed.items())],
        },
        "permissions": permissions,
        "parameters": {
            "added": sorted(set(new["parameters"]) - set(old["parameters"])),
            "removed": sorted(set(old["parameters"]) - set(new["parameters"])),
        },
    }


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class TemplateReleases:
    """The released templates' summaries, by version (template_releases.json)."""

    def __init__(self, releases: Mapping[str, Mapping[str, Any]]) -> None:
        self._releases = dict(releases)

    @classmethod
    def load(cls, path: Path = RELEASES_FILE) -> TemplateReleases:
        return cls(json.loads(path.read_text())["releases"])

    @property
    def versions(self) -> list[str]:
        return sorted(self._releases, key=_version_key)

    def changes(self, old: str, new: str) -> dict[str, Any] | None:
        """What updating a stack from `old` to `new` changes; None unless both are released.

        `notes`: the words of every release after `old` up to `new` that has some, oldest
        first (none when `new` is not newer)."""
        if old not in self._releases or new not in self._releases:
            return None
        between = [
            v for v in self.versions if _version_key(old) < _version_key(v) <= _version_key(new)
        ]
        return {
            "fromVersion": old,
            "toVersion": new,
            **diff(self._releases[old], self._releases[new]),
            "notes": [
                {"version": v, "changes": list(self._releases[v].get("notes") or [])}
                for v in between
                if self._releases[v].get("notes")
            ],
        }


@functools.cache
def bundled_releases() -> TemplateReleases:
    return TemplateReleases.load()


__all__ = [
    "RELEASES_FILE",
    "TemplateReleases",
    "UnsupportedTemplate",
    "bundled_releases",
    "diff",
    "summarize",
]
