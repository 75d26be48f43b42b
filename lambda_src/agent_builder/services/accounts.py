"""Tier 2: connecting a customer's AWS account (POST /aws-account/onboarding, PUT, GET,
DELETE /aws-account) and the validation both ways of connecting end in.

One External ID per user, one connected account per user; connecting upgrades
freemium to personal, disconnecting undoes it. The rules, refusals and their order:
lambda_src/CONTRACT.md "Tier 2: connected AWS accounts".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.audit import FAILURE, AuditEvent
from agent_builder.errors import (
    AccountAlreadyConnected,
    AwsAccountNotFound,
    ExternalIdMismatch,
    InvalidInput,
    InvalidRegion,
    InvalidRoleArn,
    RoleInPlatformAccount,
    RoleValidationFailed,
)
from agent_builder.gateways.customer_account import UNKNOWN_VERSION, AccountProbe
from agent_builder.gateways.role_chain import ACCESS_DENIED, RoleChain
from agent_builder.repositories.accounts import (
    CONNECTED,
    AccountChanged,
    AccountsRepository,
    RegistrationProof,
    RegistrationToken,
    TierChanged,
)
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import error_code
from agent_builder.repositories.profiles import DEFAULT_TIER, ProfilesRepository
from agent_builder.services.caller import Caller
from agent_builder.template_changes import TemplateReleases, bundled_releases
from agent_builder.validation import (
    RESOURCE_PREFIX,
    ROLE_ARN,
    SECURITY_GROUP,
    SUBNET,
    is_aws_region,
    parse_version,
)

logger = Logger(child=True)

EXTERNAL_ID_BYTES = 32  # token_urlsafe(32): 43 characters, 256 random bits
UPGRADES = {"freemium": "personal"}
DOWNGRADES = {"personal": "freemium"}
# Registration messages arrive right after CloudFormation created the role and its
# policy; IAM may take a few seconds to honour them.
REGISTRATION_PATIENCE_SECONDS = 40.0
REGISTRATION_TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, 256 random bits
REGISTRATION_TOKEN_LIFETIME = timedelta(hours=24)


def new_external_id() -> str:
    return secrets.token_urlsafe(EXTERNAL_ID_BYTES)


def token_digest(token: str) -> str:
    """What is stored of a registration token: its SHA-256, hex (256 random bits: no salt
    or slow hash is needed, nobody can guess a preimage)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_registration_token(now: datetime) -> tuple[str, RegistrationToken]:
    """A fresh single-use token and what the accounts item keeps of it."""
    token = secrets.token_urlsafe(REGISTRATION_TOKEN_BYTES)
    expires = int((now + REGISTRATION_TOKEN_LIFETIME).timestamp())
    return token, RegistrationToken(token_digest(token), expires)


def registers_automatically(topic_arn: str, region: str) -> bool:
    """A custom resource's SNS topic must be in the stack's region: the platform's topic
    serves stacks launched in the platform's region; elsewhere the stack skips
    registration and the customer pastes its RoleArn output."""
    topic_region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else ""
    return region == topic_region


def template_outdated(version: object, latest: str) -> bool | None:
    """True/False comparing MAJOR.MINOR.PATCH numerically; None if the version is unknown."""
    current, newest = parse_version(version), parse_version(latest)
    if current is None or newest is None:
        return None
    return current < newest


def update_stack_url(region: str, stack: str, template_url: str) -> str:
    """CloudFormation's update-stack page for `stack` (its id, or its name), with the
    "replace the template" step already pointing at `template_url`."""
    query = urlencode({"stackId": stack, "templateURL": template_url}, quote_via=quote, safe="")
    return (
        f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/update/template?{query}"
    )


def launch_stack_url(
    region: str, template_url: str, stack_name: str, params: dict[str, str]
) -> str:
    """CloudFormation's quick-create page with the stack name and parameters filled in."""
    query = urlencode(
        {
            "templateURL": template_url,
            "stackName": stack_name,
            **{f"param_{key}": value for key, value in params.items()},
        },
        quote_via=quote,
        safe="",
    )
    return (
        f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/quickcreate?{query}"
    )


@dataclass(frozen=True)
class Candidate:
    """A connection to validate: what a registration message or a pasted ARN says."""

    role_arn: str
    account_id: str
    external_id: str
    region: str
    resource_prefix: str
    via: str
    cluster_arn: str | None = None
    subnet_ids: tuple[str, ...] | None = None
    security_group_id: str | None = None
    # A registration says both; for a pasted role they are read from the stack of this
    # name (the Launch Stack link's stackName).
    template_version: str | None = None
    stack_id: str | None = None
    stack_name: str | None = None


class ConnectionValidator:
    """Assume the role with the External ID, then probe what a deployment uses."""

    def __init__(
        self,
        chain: RoleChain,
        *,
        launcher_role_arn: str,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._chain = chain
        self._launcher = launcher_role_arn
        # Looked up when called, so that tests can stand in for the clock.
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))
        self._monotonic = monotonic or (lambda: time.monotonic())

    def validate(
        self, candidate: Candidate, user_id: str, *, patience: float = 0.0
    ) -> dict[str, Any]:
        """The connection to store; RoleValidationFailed naming the failed check.

        With `patience`, failures IAM's eventual consistency explains are retried with
        backoff for up to that many seconds.
        """
        deadline = self._monotonic() + patience
        delay = 2.0
        while True:
            try:
                return self._validate_once(candidate, user_id)
            except RoleValidationFailed as exc:
                if not exc.retryable or self._monotonic() + delay > deadline:
                    raise
                logger.info("validation will be retried", check=exc.check, delay=delay)
                self._sleep(delay)
                delay = min(delay * 2, 10.0)

    def _validate_once(self, candidate: Candidate, user_id: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            session = self._chain.assume(
                role_arn=candidate.role_arn,
                external_id=candidate.external_id,
                region=candidate.region,
                user_id=user_id,
                purpose="validate",
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in ACCESS_DENIED:
                raise RoleValidationFailed(
                    "assumeRole",
                    f"the platform could not assume the role {candidate.role_arn}: check the "
                    f"trust policy (it must trust {self._launcher}) and the External ID",
                    retryable=True,
                ) from None
            if code == "RegionDisabledException":
                raise RoleValidationFailed(
                    "assumeRole", f"STS is not activated in {candidate.region} for this account"
                ) from None
            raise
        prefix = candidate.resource_prefix
        probe = AccountProbe(session)
        cluster_arn = probe.cluster(candidate.cluster_arn or f"{prefix}-cluster")
        probe.tasks(cluster_arn)
        network = probe.network(
            prefix=prefix,
            subnet_ids=candidate.subnet_ids,
            security_group_id=candidate.security_group_id,
        )
        probe.log_group(f"/{prefix}/agent-runs")
        version, stack_id = candidate.template_version, candidate.stack_id
        if version is None and candidate.stack_name:
            stack = probe.onboarding_stack(candidate.stack_name, role_arn=candidate.role_arn)
            version, stack_id = stack.template_version, stack.stack_id
        return {
            "roleArn": candidate.role_arn,
            "accountId": candidate.account_id,
            "region": candidate.region,
            "resourcePrefix": prefix,
            "clusterArn": cluster_arn,
            "subnetIds": list(network.subnet_ids),
            "securityGroupId": network.security_group_id,
            "templateVersion": version or UNKNOWN_VERSION,
            "stackId": stack_id,
            "connectedVia": candidate.via,
        }


class AccountService:
    def __init__(
        self,
        accounts: AccountsRepository,
        profiles: ProfilesRepository,
        audit: AuditLog,
        validator: ConnectionValidator,
        *,
        project: str,
        platform_account_id: str,
        platform_region: str,
        customer_role_name: str,
        registration_topic_arn: str,
        template_url: str,
        template_version: str,
        releases: TemplateReleases | None = None,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._accounts = accounts
        self._profiles = profiles
        self._audit = audit
        self._validator = validator
        self._project = project
        self._platform_account = platform_account_id
        self._platform_region = platform_region
        self._role_name = customer_role_name
        self._topic = registration_topic_arn
        self._template_url = template_url
        self._version = template_version
        self._releases = releases if releases is not None else bundled_releases()
        self._clock = clock

    # ---- POST /aws-account/onboarding -------------------------------------------------

    def onboarding(self, caller: Caller, region: str | None, rotate: bool) -> dict[str, Any]:
        region = region or self._platform_region
        if not is_aws_region(region):
            raise InvalidRegion(f"{region!r} is not an AWS region where ECS is available")
        moment = self._clock()
        now = timeutil.iso(moment)
        # Every answer carries a new single-use registration token (in the Launch Stack
        # link only); it replaces the previous one, of which only the hash was kept.
        token, stored = new_registration_token(moment)
        self._profiles.ensure(caller.user_id, caller.email, now)
        record = self._accounts.get(caller.user_id)
        issued = False
        if record is None:
            external_id = new_external_id()
            if self._accounts.create_pending(caller.user_id, external_id, now, stored):
                issued = True
                self._audit.record(
                    AuditEvent(caller.user_id, "account.onboarding", details={"region": region})
                )
                logger.info("external id created")
                record = {"externalId": external_id}
            else:
                record = self._accounts.get(caller.user_id) or {}
        elif rotate:
            if record.get("status") == CONNECTED:
                raise AccountAlreadyConnected(
                    f"AWS account {record.get('accountId')} is connected with this External ID: "
                    "disconnect it (DELETE /aws-account) before rotating"
                )
            external_id = new_external_id()
            try:
                self._accounts.rotate(
                    caller.user_id,
                    record["externalId"],
                    external_id,
                    now,
                    AuditEvent(caller.user_id, "account.rotate_external_id"),
                    stored,
                )
                issued = True
            except AccountChanged:
                raise AccountAlreadyConnected(
                    "the External ID changed or was connected meanwhile; try again"
                ) from None
            logger.info("external id rotated")
            record = {"externalId": external_id}
        if not issued:
            self._accounts.issue_token(caller.user_id, stored)
        return self._onboarding_view(record["externalId"], token, region)

    def _onboarding_view(self, external_id: str, token: str, region: str) -> dict[str, Any]:
        automatic = registers_automatically(self._topic, region)
        return {
            "externalId": external_id,
            "region": region,
            "stackName": self.stack_name,
            "templateUrl": self._template_url,
            "registration": "automatic" if automatic else "manual",
            "launchStackUrl": launch_stack_url(
                region,
                self._template_url,
                self.stack_name,
                {
                    "ExternalId": external_id,
                    "RegistrationToken": token,
                    "PlatformAccountId": self._platform_account,
                    "RegistrationTopicArn": self._topic if automatic else "",
                },
            ),
        }

    @property
    def stack_name(self) -> str:
        """The onboarding stack's name, as the Launch Stack link prefills it."""
        return f"{self._project}-onboarding"

    # ---- PUT /aws-account ---------------------------------------------------------------

    def connect(
        self,
        caller: Caller,
        *,
        role_arn: str,
        external_id: str,
        region: str,
        resource_prefix: str | None = None,
        subnet_ids: list[str] | None = None,
        security_group_id: str | None = None,
    ) -> dict[str, Any]:
        account_id = self.check_role_arn(role_arn)
        if not is_aws_region(region):
            raise InvalidRegion(f"{region!r} is not an AWS region where ECS is available")
        prefix = resource_prefix or self._project
        if not RESOURCE_PREFIX.match(prefix):
            raise InvalidInput("resourcePrefix must be the onboarding stack's ResourcePrefix")
        if (subnet_ids is None) != (security_group_id is None):
            raise InvalidInput("give subnetIds and securityGroupId together, or neither")
        if subnet_ids is not None and not all(SUBNET.match(s) for s in subnet_ids):
            raise InvalidInput("subnetIds must be subnet ids (subnet-...)")
        if security_group_id is not None and not SECURITY_GROUP.match(security_group_id):
            raise InvalidInput("securityGroupId must be a security group id (sg-...)")
        record = self._accounts.get(caller.user_id)
        if record is None or not hmac.compare_digest(
            str(record.get("externalId", "")).encode(), external_id.encode()
        ):
            raise ExternalIdMismatch(
                "externalId is not the External ID the platform gave you "
                "(POST /aws-account/onboarding shows it)"
            )
        candidate = Candidate(
            role_arn=role_arn,
            account_id=account_id,
            external_id=external_id,
            region=region,
            resource_prefix=prefix,
            via="api",
            subnet_ids=tuple(subnet_ids) if subnet_ids else None,
            security_group_id=security_group_id,
            stack_name=self.stack_name,
        )
        self.refuse_other_account(record, account_id)
        return self.account_view(self.connect_candidate(caller.user_id, candidate))

    def check_role_arn(self, role_arn: object) -> str:
        """The role's account id; the three 400s of a role ARN, in this order."""
        match = ROLE_ARN.match(role_arn) if isinstance(role_arn, str) else None
        if match is None:
            raise InvalidRoleArn(
                "roleArn must look like arn:aws:iam::<12-digit account>:role/<name>"
            )
        if match["account"] == self._platform_account:
            raise RoleInPlatformAccount(
                "roleArn is in the platform's own AWS account: connect your own account"
            )
        if match["name"] != self._role_name:
            raise InvalidRoleArn(
                f"roleArn must be the role the onboarding stack creates, named {self._role_name}"
            )
        return match["account"]

    @staticmethod
    def refuse_other_account(record: dict[str, Any], account_id: str) -> None:
        if record.get("status") == CONNECTED and record.get("accountId") != account_id:
            raise AccountAlreadyConnected(
                f"AWS account {record.get('accountId')} is connected: disconnect it first "
                "(DELETE /aws-account, or delete its onboarding stack)"
            )

    def connect_candidate(
        self,
        user_id: str,
        candidate: Candidate,
        *,
        patience: float = 0.0,
        registration: RegistrationProof | None = None,
    ) -> dict[str, Any]:
        """Validate, then store the connection and upgrade the tier, in one transaction.
        A validation failure is audited and raised (422); nothing is stored."""
        try:
            connection = self._validator.validate(candidate, user_id, patience=patience)
        except RoleValidationFailed as exc:
            logger.info("validation failed", check=exc.check, account_id=candidate.account_id)
            self._audit.record(
                AuditEvent(
                    user_id,
                    "account.validate",
                    result=FAILURE,
                    account_id=candidate.account_id,
                    reason=exc.message,
                    details={"region": candidate.region, "via": candidate.via},
                )
            )
            raise
        connection["connectedAt"] = timeutil.iso(self._clock())
        for attempt in (1, 2):
            tier = self._tier(user_id)
            try:
                self._accounts.connect(
                    user_id,
                    candidate.external_id,
                    connection,
                    tier_change=(tier, UPGRADES[tier]) if tier in UPGRADES else None,
                    audit=AuditEvent(
                        user_id,
                        "account.connect",
                        account_id=candidate.account_id,
                        details={
                            "region": candidate.region,
                            "via": candidate.via,
                            "tier": UPGRADES.get(tier, tier),
                        },
                    ),
                    registration=registration,
                )
            except TierChanged:
                if attempt == 2:
                    raise
                continue
            except AccountChanged:
                if registration is not None:
                    raise
                raise ExternalIdMismatch(
                    "the External ID was rotated while the role was being validated; "
                    "use the current one"
                ) from None
            break
        logger.info("account connected", account_id=candidate.account_id, via=candidate.via)
        return {**connection, "status": CONNECTED, "externalId": candidate.external_id}

    # ---- GET / DELETE /aws-account ----------------------------------------------------------

    def get(self, caller: Caller) -> dict[str, Any]:
        return self.account_view(self.require_connected(caller.user_id))

    def require_connected(self, user_id: str) -> dict[str, Any]:
        record = self._accounts.get(user_id)
        if record is None or record.get("status") != CONNECTED:
            raise AwsAccountNotFound(
                "no AWS account is connected (POST /aws-account/onboarding starts connecting one)"
            )
        return record

    def disconnect(self, caller: Caller) -> None:
        record = self.require_connected(caller.user_id)
        self.disconnect_record(caller.user_id, record, via="api")

    def disconnect_record(self, user_id: str, record: dict[str, Any], *, via: str) -> bool:
        """Forget the connection and undo the upgrade; False if it was already gone."""
        for attempt in (1, 2):
            tier = self._tier(user_id)
            try:
                self._accounts.disconnect(
                    user_id,
                    account_id=str(record["accountId"]),
                    tier_change=(tier, DOWNGRADES[tier]) if tier in DOWNGRADES else None,
                    audit=AuditEvent(
                        user_id,
                        "account.disconnect",
                        account_id=str(record["accountId"]),
                        details={
                            "region": record.get("region"),
                            "via": via,
                            "tier": DOWNGRADES.get(tier, tier),
                        },
                    ),
                )
            except TierChanged:
                if attempt == 2:
                    raise
                continue
            except AccountChanged:
                return False
            break
        logger.info("account disconnected", account_id=record["accountId"], via=via)
        return True

    def _tier(self, user_id: str) -> str:
        profile = self._profiles.get(user_id) or {}
        return str(profile.get("tier") or DEFAULT_TIER)

    def account_view(self, record: dict[str, Any]) -> dict[str, Any]:
        # Connections stored before versions were read from the stack have none: unknown.
        version = str(record.get("templateVersion") or UNKNOWN_VERSION)
        outdated = template_outdated(version, self._version)
        update: dict[str, Any] = {"updateUrl": None, "changes": None}
        if outdated:
            update = {
                "updateUrl": update_stack_url(
                    str(record.get("region")),
                    str(record.get("stackId") or self.stack_name),
                    self._template_url,
                ),
                "changes": self._releases.changes(version, self._version),
            }
            if update["changes"] is None:
                logger.warning(
                    "no release summary to compare the templates",
                    template_version=version,
                    latest=self._version,
                )
        return {
            "status": record.get("status"),
            "accountId": record.get("accountId"),
            "roleArn": record.get("roleArn"),
            "region": record.get("region"),
            "resourcePrefix": record.get("resourcePrefix"),
            "clusterArn": record.get("clusterArn"),
            "subnetIds": list(record.get("subnetIds") or []),
            "securityGroupId": record.get("securityGroupId"),
            "connectedAt": record.get("connectedAt"),
            "connectedVia": record.get("connectedVia"),
            "templateVersion": version,
            "latestTemplateVersion": self._version,
            "templateOutdated": outdated,
            **update,
        }
