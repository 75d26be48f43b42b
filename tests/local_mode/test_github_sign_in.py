"""Local mode signs in as a GitHub user through the OIDC bridge and its GitHub stand-in,
when the templates have the bridge (synthesized with githubClientId/-SecretName)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_mode.assembly import synthesize
from local_mode.harness import free_port
from local_mode.platform import LocalPlatform, Options
from tests.infra.conftest import GITHUB_CONTEXT

pytestmark = pytest.mark.local_mode


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    cdk_out = tmp_path_factory.mktemp("github") / "cdk.out"
    synthesize(cdk_out, GITHUB_CONTEXT)
    platform = LocalPlatform(Options(cdk_out=cdk_out, aws_port=free_port(), api_port=free_port()))
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()


def test_github_claims_are_those_of_a_verified_bridge_token(local: LocalPlatform) -> None:
    assert local.github is not None
    claims = local.github.github_claims("Linus@Example.com")
    account = local.github.standin.account("linus@example.com")
    assert claims == {
        "sub": str(account.id),
        "email": "linus@example.com",
        "email_verified": True,
        "name": account.name,
        "picture": account.avatar_url,
    }
    # The same GitHub user again: the same subject.
    assert local.github.github_claims("linus@example.com")["sub"] == claims["sub"]
    assert local.info()["githubSignIn"] is True


def test_local_github_refuses_an_unverified_primary_email(local: LocalPlatform) -> None:
    from local_mode.github_bridge import BridgeFlowError

    assert local.github is not None
    local.github.standin.behaviour.unverified_email = True
    try:
        with pytest.raises(BridgeFlowError, match="not verified"):
            local.github.github_claims("unverified@example.com")
    finally:
        local.github.standin.behaviour.unverified_email = False


def test_without_github_settings_local_mode_has_no_github(tmp_path: Path) -> None:
    from local_mode.assembly import CDK_OUT, load_stacks, synthesized
    from local_mode.github_bridge import BRIDGE_HANDLER

    stacks = load_stacks(synthesized(CDK_OUT))
    handlers = {
        r.get("Properties", {}).get("Handler") for s in stacks.values() for _, r in s.functions()
    }
    assert BRIDGE_HANDLER not in handlers  # the default cdk.json configures no GitHub


def _call(local: LocalPlatform, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    body = kwargs.get("body")
    request = urllib.request.Request(  # noqa: S310 - local mode's own http address
        local.api_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {kwargs['token']}"} if "token" in kwargs else {}),
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local mode
        return dict(json.loads(response.read()))


def test_github_through_the_bridge_then_email_is_one_user(local: LocalPlatform) -> None:
    """The issue's done-when: GitHub first (the bridge's real flow and the sign-up
    triggers), then e-mail for the same verified address: one userId."""
    github = _call(
        local, "POST", "/_local/sign-in", body={"email": "ada@example.com", "provider": "github"}
    )
    email = _call(local, "POST", "/_local/sign-in", body={"email": "ada@example.com"})
    first = _call(local, "GET", "/me", token=github["accessToken"])
    second = _call(local, "GET", "/me", token=email["accessToken"])
    assert first["userId"] == second["userId"]
    assert first["email"] == "ada@example.com"
