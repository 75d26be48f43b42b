"""Local mode signs in as a GitHub user through the OIDC bridge and its GitHub stand-in,
when the templates have the bridge (synthesized with githubClientId/-SecretName)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_mode.assembly import synthesize
from local_mode.harness import free_port
from local_mode.platform import LocalPlatform, Options
from tests.infra.test_stateful_ids import GITHUB_CONTEXT

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
