"""Tier 2: deploying a run into the connected customer account (the tier router's
`customer` target, tier personal).

This chooses the account (the user's connection) and how to get there (the launcher
role, then the customer's deployer role with the External ID and the user as
SourceIdentity); services/account_launcher.py does the rest, as for Tier 3. Why, and the
exact shapes: lambda_src/CONTRACT.md "Customer runs".
"""

from __future__ import annotations

from typing import Any

from agent_builder import runs as lifecycle
from agent_builder.errors import AccountNotConnected
from agent_builder.gateways.role_chain import ACCESS_DENIED, RoleChain
from agent_builder.repositories.accounts import CONNECTED, AccountsRepository
from agent_builder.repositories.dynamo import error_code
from agent_builder.services.account_launcher import AccountLauncher, AccountTarget


def _assume_failure(exc: Exception) -> str:
    if error_code(exc) in ACCESS_DENIED:
        return (
            "the platform could not assume your deployer role: check the onboarding stack "
            "still exists with the same External ID, or reconnect (PUT /aws-account)"
        )
    return lifecycle.launch_failure_reason(exc)


class CustomerLauncher:
    def __init__(
        self, *, accounts: AccountsRepository, chain: RoleChain, launcher: AccountLauncher
    ) -> None:
        self._accounts = accounts
        self._chain = chain
        self._launcher = launcher

    def launch(self, request: lifecycle.LaunchRequest) -> dict[str, Any]:
        user_id = request.caller.user_id
        account = self._accounts.get(user_id)
        if account is None or account.get("status") != CONNECTED:
            raise AccountNotConnected(
                "deployments go to your own AWS account, which is not connected: connect it "
                "first (POST /aws-account/onboarding)"
            )
        region = str(account["region"])
        return self._launcher.launch(
            request,
            AccountTarget.of_connection(
                account,
                kind="customer",
                region=region,
                session=lambda: self._chain.assume_connection(
                    account, user_id=user_id, region=region, purpose="deploy"
                ),
                refused=_assume_failure,
            ),
        )
