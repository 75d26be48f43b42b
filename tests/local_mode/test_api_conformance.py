"""The API against its own OpenAPI document: schemathesis on local mode, as a gate.

One local mode for the module (local_mode/harness.py). schemathesis (pinned in
requirements-dev.txt) loads the document local mode serves (dist/openapi.json, checked
here to be that file), signs requests with a real emulator-signed Cognito token, and runs
its engine (what `schemathesis run` runs) with every check, the examples, coverage,
fuzzing and stateful phases, a fixed seed and bounded examples. Any failed check, server
error or engine error fails the test, with schemathesis's own reproduction for each.

Launch routes spend the caller's monthly quota and start the real runner: local mode is
synthesized with a large quota and launch rate, and examples are bounded.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local_mode.assembly import ROOT
from local_mode.harness import LocalMode, start_local_mode, stop_local_mode

pytestmark = pytest.mark.local_mode

SEED = 20261202
STATEFUL = "Stateful tests"  # the label of the stateful phase's scenario
MAX_EXAMPLES = 8
STATEFUL_MAX_STEPS = 6
# Launches spend the quota (429 QUOTA_EXCEEDED is documented, but a spent quota would hide
# the 202 paths) and each starts the runner: far more than a run makes. Agents too (409
# AGENT_LIMIT would hide the 201 paths of the stateful phase). The platform's concurrent
# task ceiling stays as configured: it bounds the runner processes (503 is documented).
CONTEXT = (
    "freeTestsPerMonth=10000",
    "platformFreeTestsPerMonth=100000",
    "launchesPerMinute=600",
    "maxAgentsPerUser=10000",
)

# Checks turned off or narrowed, each with its reason (every other check runs as is).
CHECKS: dict[str, Any] = {
    "enabled": True,
    # API Gateway HTTP APIs answer an undeclared method on a known path 404 {"message":
    # "Not Found"} (no 405; local mode answers as they do): nothing the API can change.
    "unsupported_method": {"enabled": False},
}


def _accepting(*statuses: str) -> dict[str, Any]:
    """positive_data_acceptance's defaults (2xx, 401, 403, 404, 409, 429) and `statuses`."""
    return {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "429", *statuses]
            }
        }
    }


# Operations where schema-valid data is still refused for facts no schema can state, each
# with its reason; positive_data_acceptance keeps its defaults everywhere else.
OPERATIONS: list[dict[str, Any]] = [
    # nextToken is opaque: a generated one was not issued by the platform (400
    # INVALID_NEXT_TOKEN); a forged or stale token must be refused, not read.
    {"include-path": "/agents", "include-method": "GET", **_accepting("400")},
    {"include-path": "/runs", "include-method": "GET", **_accepting("400")},
    {"include-path": "/runs/{runId}/logs", "include-method": "GET", **_accepting("400")},
    # Connecting needs the External ID issued to this user, the platform's deployer role
    # name in an account other than the platform's (400 EXTERNAL_ID_MISMATCH,
    # INVALID_ROLE_ARN...), and a role that can really be assumed (422
    # ROLE_VALIDATION_FAILED): generated ARNs name no real role.
    {"include-path": "/aws-account", "include-method": "PUT", **_accepting("400", "422")},
    # team/project are for an organisation's agents (400 for a caller in none); region is
    # for an organisation's deployments, and a real AWS region (400 INVALID_REGION).
    {"include-path": "/agents", "include-method": "POST", **_accepting("400")},
    {
        "include-path": "/agents/{agentId}/deployments",
        "include-method": "POST",
        **_accepting("400"),
    },
    # Opaque page tokens, as above; /org/audit's from/to must be ISO-8601 times.
    {"include-path": "/audit", "include-method": "GET", **_accepting("400")},
    {"include-path": "/org/members", "include-method": "GET", **_accepting("400")},
    {"include-path": "/org/invitations", "include-method": "GET", **_accepting("400")},
    {"include-path": "/org/audit", "include-method": "GET", **_accepting("400")},
    # Names must be printable (no control characters, not only spaces), regions real AWS
    # region names, a PATCH must change something, an e-mail be an address.
    {"include-path": "/org", "include-method": "POST", **_accepting("400")},
    {"include-path": "/org", "include-method": "PATCH", **_accepting("400")},
    {"include-path": "/org/invitations", "include-method": "POST", **_accepting("400")},
    # An invitation expires after 7 days (410 INVITATION_EXPIRED).
    {
        "include-path": "/org/invitations/{invitationId}/accept",
        "include-method": "POST",
        **_accepting("410"),
    },
]


@dataclass
class Outcome:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    seconds: float = 0.0


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    log_path = tmp_path_factory.mktemp("local-mode") / "local-mode.log"
    local = start_local_mode(log_path, *CONTEXT)
    try:
        yield local
    finally:
        stop_local_mode(local)


@pytest.fixture(scope="module")
def token(local_mode: LocalMode) -> str:
    return local_mode.sign_in("conformance@example.com")


def raw_request(
    local: LocalMode, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """What curl --data-binary sends: the bytes as they are."""
    request = urllib.request.Request(local.url + path, data=body, method=method, headers=headers)  # noqa: S310 - local http URL
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


BODY_TAKING = [
    ("POST", "/agents"),
    ("POST", "/agents/{agentId}/tests"),
    ("POST", "/agents/{agentId}/deployments"),
    ("POST", "/aws-account/onboarding"),
    ("PUT", "/aws-account"),
    ("POST", "/org"),
    ("PATCH", "/org"),
    ("PUT", "/org/members/{userId}"),
    ("POST", "/org/invitations"),
]


@pytest.fixture(scope="module")
def agent_id(local_mode: LocalMode, token: str) -> str:
    answer = local_mode.request(
        "POST",
        "/agents",
        token=token,
        body={"name": "conformance", "model": "amazon.nova-micro-v1:0", "instructions": "Hi."},
    )
    assert answer.status == 201, answer.body
    return str(answer.body["agentId"])


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("application/json", b"\xff", 400, "INVALID_BODY"),
        ("application/json", b'{"input": "\xff\xfe"}', 400, "INVALID_BODY"),
        ("text/plain", b"{}", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/octet-stream", b"\xff", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("multipart/form-data", b"--x--", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
def test_unreadable_and_non_json_bodies_are_4xx_through_http(
    local_mode: LocalMode,
    token: str,
    agent_id: str,
    content_type: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    """curl --data-binary $'\\xff' and -H 'content-type: text/plain', on every body route."""
    for method, path in BODY_TAKING:
        got = raw_request(
            local_mode,
            method,
            path.replace("{agentId}", agent_id).replace("{userId}", "someone"),
            body,
            {"content-type": content_type, "authorization": f"Bearer {token}"},
        )
        assert got == (status, got[1]) and got[1]["error"]["code"] == code, (method, path, got)


def test_json_in_any_case_is_json_through_http(local_mode: LocalMode, token: str) -> None:
    body = {"name": "upper", "model": "amazon.nova-micro-v1:0", "instructions": "Hi."}
    got = raw_request(
        local_mode,
        "POST",
        "/agents",
        json.dumps(body).encode(),
        {"content-type": "APPLICATION/JSON; Charset=UTF-8", "authorization": f"Bearer {token}"},
    )
    assert got[0] == 201, got


def test_the_served_document_is_the_exported_one(local_mode: LocalMode) -> None:
    answer = local_mode.request("GET", "/_local/openapi.json")
    assert answer.status == 200
    assert answer.body == json.loads((ROOT / "dist" / "openapi.json").read_text())


def run_schemathesis(local: LocalMode, token: str) -> Outcome:
    from schemathesis import openapi
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import Status, from_schema
    from schemathesis.engine import events as engine_events

    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": local.url,
            "headers": {"Authorization": f"Bearer {token}"},
            "continue-on-failure": True,
            "request-timeout": 30,
            "workers": 1,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": CHECKS,
            "operations": OPERATIONS,
            "phases": {
                "examples": {"enabled": True, "fill-missing": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": STATEFUL_MAX_STEPS},
            },
        }
    )
    schema = openapi.from_url(f"{local.url}/_local/openapi.json", config=config)
    outcome = Outcome()
    began = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            recorder = event.recorder
            outcome.operations.add(recorder.label)
            outcome.cases += len(recorder.cases)
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    outcome.statuses.setdefault(recorder.label, set()).add(
                        interaction.response.status_code
                    )
            for checks in recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        outcome.failures.append(
                            f"{recorder.label} [{check.name}] {check.failure_info.failure.title}: "
                            f"{check.failure_info.failure.message}\n"
                            f"{check.failure_info.code_sample}"
                        )
        elif isinstance(event, engine_events.NonFatalError):
            outcome.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, engine_events.FatalError):
            outcome.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, engine_events.EngineFinished):
            outcome.failures += [f"{f.title}: {f.message}" for f in event.failures]
    outcome.seconds = time.monotonic() - began
    return outcome


def test_the_api_conforms_to_its_openapi_document(
    local_mode: LocalMode, token: str, tmp_path: Path
) -> None:
    outcome = run_schemathesis(local_mode, token)
    summary = (
        f"schemathesis: {len(outcome.operations)} operations, {outcome.cases} cases, "
        f"{len(outcome.failures)} failures, {len(outcome.errors)} errors, "
        f"{outcome.seconds:.0f} s"
    )
    print(summary)
    (tmp_path / "failures.txt").write_text(
        "\n\n".join(sorted(set(outcome.failures)) + outcome.errors)
    )
    print(tmp_path / "failures.txt")
    print(json.dumps({k: sorted(v) for k, v in sorted(outcome.statuses.items())}, indent=1))
    unique = sorted(set(outcome.failures))
    assert not unique and not outcome.errors, (
        summary + "\n\n" + "\n\n".join(unique[:30] + outcome.errors[:10])
    )
    # Every documented operation was exercised, and with more than a handful of cases.
    document = json.loads((ROOT / "dist" / "openapi.json").read_text())
    documented = sum(len(operations) for operations in document["paths"].values())
    assert outcome.operations == {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
    } | {STATEFUL}, sorted(outcome.operations)
    # The stateful phase followed the document's links: created agents were read, tested.
    assert {201, 202} <= outcome.statuses.get(STATEFUL, set()), outcome.statuses
    assert outcome.cases >= 10 * documented
    # Launch routes answered 202 at least once (a spent quota or a broken body would not).
    assert 202 in outcome.statuses.get("POST /agents/{agentId}/tests", set()), outcome.statuses
    assert outcome.seconds < 180, summary
