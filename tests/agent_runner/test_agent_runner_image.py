"""The runner image's build files (no Docker engine here: the image is built by cdk deploy)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER_DIR = ROOT / "agent_runner"


def instructions() -> list[tuple[str, str]]:
    lines = (RUNNER_DIR / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    pairs = [line.strip().split(None, 1) for line in lines if line.strip()]
    return [(p[0].upper(), p[1] if len(p) > 1 else "") for p in pairs if not p[0].startswith("#")]


def test_base_image_comes_from_ecr_public_with_a_pinned_tag() -> None:
    bases = [arg for op, arg in instructions() if op == "FROM"]

    assert len(bases) == 1
    assert re.fullmatch(r"public\.ecr\.aws/docker/library/python:3\.\d+-slim-\w+", bases[0])


def test_the_container_runs_as_a_non_root_numeric_user() -> None:
    users = [arg for op, arg in instructions() if op == "USER"]

    assert users and users[-1].isdigit() and users[-1] != "0"


def test_entrypoint_is_exec_form_so_python_receives_sigterm() -> None:
    entrypoints = [arg for op, arg in instructions() if op == "ENTRYPOINT"]

    assert json.loads(entrypoints[-1]) == ["python", "/app/runner.py"]


def test_the_build_context_holds_only_what_the_image_copies() -> None:
    allowed = {
        line[1:]
        for line in (RUNNER_DIR / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {arg.split()[0] for op, arg in instructions() if op == "COPY"}

    assert copied == allowed == {"requirements.txt", "runner.py"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
        if match:
            pins[match.group(1).split("[")[0].lower()] = match.group(2)
    return pins


def test_the_image_installs_the_boto3_the_tests_ran_against() -> None:
    image = _pins(RUNNER_DIR / "requirements.txt")
    # constraints.txt is the frozen environment every test runs in.
    tested = _pins(ROOT / "constraints.txt")

    assert image["boto3"] == tested["boto3"]
    assert image["botocore"] == tested["botocore"]


def test_every_image_dependency_is_pinned_to_one_version() -> None:
    lines = [
        line
        for line in (RUNNER_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert lines and all("==" in line for line in lines)
