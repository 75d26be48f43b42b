"""STS: the platform's launcher role, then a customer's deployer role.

The functions' own role may assume only the launcher role, and customers' deployer roles
trust only the launcher. Hop one (launcher) carries no source identity, so its
credentials serve every user and are kept until five minutes before they expire; hop two
(customer) names the platform user as the session's SourceIdentity, which then appears
on every call in the customer's CloudTrail and cannot be changed down the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import clients, timeutil
from agent_builder.validation import STS_NAME

logger = Logger(child=True)

# What STS answers when the role's trust policy (or the External ID) says no.
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
LAUNCHER_REFRESH_MARGIN = timedelta(minutes=5)
# The shortest session STS grants: a request needs seconds, not an hour.
CUSTOMER_SESSION_SECONDS = 900


def source_identity(user_id: str) -> str:
    """The platform user as STS accepts it: the Cognito `sub` (a UUID), never an email.

    A subject STS would refuse (other characters, too long) becomes a stable digest.
    """
    if STS_NAME.match(user_id):
        return user_id
    return "user-" + hashlib.sha256(user_id.encode()).hexdigest()[:40]


class LauncherUnavailable(Exception):
    """The platform's launcher role could not be assumed (its trust or the caller's policy)."""


class CustomerSession:
    """Temporary credentials in one customer account and region."""

    def __init__(
        self,
        credentials: Mapping[str, Any],
        *,
        region: str,
        factory: Callable[..., Any] = clients.client_with,
    ) -> None:
        self._credentials = credentials
        self.region = region
        self._factory = factory

    def client(self, service: str) -> Any:
        return self._factory(service, region=self.region, credentials=self._credentials)


class RoleChain:
    def __init__(
        self,
        sts: Any,
        *,
        launcher_role_arn: str,
        session_prefix: str,
        factory: Callable[..., Any] = clients.client_with,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._sts = sts
        self._launcher = launcher_role_arn
        self._prefix = session_prefix
        self._factory = factory
        self._clock = clock
        self._cached: Mapping[str, Any] | None = None

    def _launcher_credentials(self) -> Mapping[str, Any]:
        cached = self._cached
        if cached is not None and cached["Expiration"] - LAUNCHER_REFRESH_MARGIN > self._clock():
            return cached
        from botocore.exceptions import ClientError

        try:
            response = self._sts.assume_role(
                RoleArn=self._launcher, RoleSessionName=self._session_name("launcher")
            )
        except ClientError as exc:
            # The platform's own configuration, not the customer's: a bug (5xx), logged.
            raise LauncherUnavailable(f"cannot assume {self._launcher}") from exc
        self._cached = response["Credentials"]
        return self._cached

    def assume(
        self, *, role_arn: str, external_id: str, region: str, user_id: str, purpose: str
    ) -> CustomerSession:
        """Credentials in the customer's account. A botocore ClientError from the second
        hop (AccessDenied: trust policy or External ID) is the caller's to explain."""
        sts = self._factory("sts", region=None, credentials=self._launcher_credentials())
        response = sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName=self._session_name(purpose),
            ExternalId=external_id,
            SourceIdentity=source_identity(user_id),
            DurationSeconds=CUSTOMER_SESSION_SECONDS,
        )
        return CustomerSession(response["Credentials"], region=region, factory=self._factory)

    def assume_connection(
        self, connection: Mapping[str, Any], *, user_id: str, region: str, purpose: str
    ) -> CustomerSession:
        """`assume` with a connected account's role and External ID (its accounts item)."""
        return self.assume(
            role_arn=str(connection["roleArn"]),
            external_id=str(connection["externalId"]),
            region=region,
            user_id=user_id,
            purpose=purpose,
        )

    def _session_name(self, purpose: str) -> str:
        return f"{self._prefix}-{purpose}"[:64]
