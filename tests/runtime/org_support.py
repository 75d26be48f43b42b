"""Organisation test helpers: users of three roles and an outsider, acting over the API."""

from __future__ import annotations

from typing import Any

from tests.runtime.support import OTHER_USER, USER, Answer, ApiCall

ADMIN = USER
DEV = "6f1d2c3b-0000-4000-8000-0000000000de"
VIEWER = "6f1d2c3b-0000-4000-8000-0000000000e1"
OUTSIDER = OTHER_USER
EMAILS = {
    ADMIN: "ada@example.com",
    DEV: "dev@example.com",
    VIEWER: "vic@example.com",
    OUTSIDER: "out@example.org",
}


def as_user(api: ApiCall, user: str) -> ApiCall:
    def call(method: str, path: str, **kwargs: Any) -> Answer:
        return api(method, path, user=user, email=EMAILS[user], **kwargs)

    return call


def found(api: ApiCall, user: str = ADMIN, name: str = "Acme") -> dict[str, Any]:
    answer = as_user(api, user)("POST", "/org", body={"name": name})
    assert answer.status == 201, answer.body
    return dict(answer.body)


def invite(api: ApiCall, user: str, role: str, by: str = ADMIN) -> str:
    answer = as_user(api, by)(
        "POST", "/org/invitations", body={"email": EMAILS[user], "role": role}
    )
    assert answer.status == 201, answer.body
    return str(answer.body["invitationId"])


def join(api: ApiCall, user: str, role: str, by: str = ADMIN) -> None:
    invitation = invite(api, user, role, by)
    answer = as_user(api, user)("POST", f"/org/invitations/{invitation}/accept")
    assert answer.status == 200, answer.body
    assert answer.body["role"] == role


# ---- an organisation's registered AWS account (Tier 3 deployments) ---------------------------

ORG_EXTERNAL_ID = "org-external-id-0123456789abcdefghijklmnopqrstu"
ORG_TOKEN_DIGEST = "0" * 64


def register_org_account(
    dynamodb: Any,
    accounts_table: str,
    organization_id: str,
    *,
    account_id: str,
    region: str,
    cluster_arn: str,
    subnet_ids: list[str],
    security_group_id: str,
    prefix: str = "agent-builder",
) -> None:
    """What an account's StackSet stack registration stores for the organisation
    (services/org_accounts.py, after the same validation as Tier 2)."""
    from datetime import UTC, datetime

    from agent_builder import timeutil
    from agent_builder.repositories.org_accounts import OrgAccountsRepository

    repository = OrgAccountsRepository(dynamodb, accounts_table)
    now = timeutil.iso(datetime.now(UTC))
    repository.create(
        organization_id, external_id=ORG_EXTERNAL_ID, token_digest=ORG_TOKEN_DIGEST, now_iso=now
    )
    repository.connect(
        organization_id,
        external_id=ORG_EXTERNAL_ID,
        connection={
            "roleArn": f"arn:aws:iam::{account_id}:role/{prefix}-deployer",
            "accountId": account_id,
            "region": region,
            "resourcePrefix": prefix,
            "clusterArn": cluster_arn,
            "subnetIds": subnet_ids,
            "securityGroupId": security_group_id,
            "templateVersion": "1.2.0",
            "connectedAt": now,
            "registrationStackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/s/1",
        },
        token_digest=ORG_TOKEN_DIGEST,
        bound_stack_id=None,
    )
