"""Registration messages from customers' onboarding stacks (SNS-backed custom resource).

Anyone who can reach the registration topic's queue may send a message, so every message
is untrusted: it is acted on only if its ResponseURL is CloudFormation's own response
bucket (gateways/cfn_response.py). A Create connects only with the user's single-use,
unexpired registration token (the Launch Stack link's NoEcho parameter), consumed in the
same conditional write that connects and binds the registering StackId; an Update acts
only for the bound stack (or, unbound, with a valid token); a Delete disconnects only the
live registration of the bound stack, and only once the stored role confirms that the
stack is being deleted. Every acted-on message gets an answer (a Delete always SUCCESS);
refusals answer a generic reason that names no account and no other user's facts. The
rules: lambda_src/CONTRACT.md "Registration".
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.audit import FAILURE, AuditEvent
from agent_builder.errors import DomainError, InvalidInput, InvalidRegion, RoleValidationFailed
from agent_builder.gateways.cfn_response import (
    MAX_REASON,
    ResponseSender,
    url_host,
)
from agent_builder.gateways.role_chain import RoleChain
from agent_builder.repositories.accounts import (
    CONNECTED,
    AccountChanged,
    AccountsRepository,
    RegistrationProof,
)
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.org_accounts import OrgAccountChanged, organization_of
from agent_builder.services.accounts import (
    REGISTRATION_PATIENCE_SECONDS,
    AccountService,
    Candidate,
    token_digest,
)
from agent_builder.services.org_accounts import OrgAccountService
from agent_builder.validation import (
    ACCOUNT_ID,
    EXTERNAL_ID,
    MAX_SUBNETS,
    RESOURCE_PREFIX,
    SECURITY_GROUP,
    STACK_ARN,
    SUBNET,
    is_aws_region,
    parse_version,
)

logger = Logger(child=True)

SUCCESS, FAILED = "SUCCESS", "FAILED"
INTERNAL_REASON = (
    "the platform hit an internal error (it has been logged); retry the stack operation"
)
# One answer for every message that cannot be believed (unknown External ID; missing,
# wrong, expired or used token; another stack), so the reason tells a forger nothing.
NOT_VERIFIED_REASON = (
    "the registration could not be verified: launch the stack from a fresh Launch Stack "
    "link (POST /aws-account/onboarding); each link registers once, within 24 hours"
)
TOKEN_LENGTH = 43
# The stack status in which CloudFormation sends a stack deletion's Delete requests.
DELETING = "DELETE_IN_PROGRESS"


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str | None = None


class RegistrationService:
    def __init__(
        self,
        accounts: AccountService,
        repository: AccountsRepository,
        audit: AuditLog,
        sender: ResponseSender,
        chain: RoleChain,
        *,
        project: str,
        patience: float = REGISTRATION_PATIENCE_SECONDS,
        clock: Callable[[], datetime] = timeutil.utcnow,
        organizations: OrgAccountService | None = None,
    ) -> None:
        self._service = accounts
        self._organizations = organizations
        self._accounts = repository
        self._audit = audit
        self._sender = sender
        self._chain = chain
        self._project = project
        self._patience = patience
        self._clock = clock

    def handle(self, message: str) -> str:
        """Act on one message and answer CloudFormation; returns the status sent."""
        try:
            request = json.loads(message)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            logger.warning("registration message is not a JSON object; ignored")
            return "ignored"
        url = request.get("ResponseURL")
        if not self._sender.accepts(url):
            logger.warning(
                "registration refused: ResponseURL is not a CloudFormation S3 URL",
                host=url_host(url),
            )
            return "refused"
        kind = request.get("RequestType")
        logger.info(
            "registration message", request_type=str(kind)[:20], stack=_text(request.get("StackId"))
        )
        try:
            if kind in ("Create", "Update"):
                outcome = self._connect(request)
            elif kind == "Delete":
                outcome = self._delete(request)
            else:
                outcome = Outcome(FAILED, "unknown RequestType")
        except Exception:
            logger.exception("registration failed unexpectedly", request_type=str(kind)[:20])
            if kind == "Delete":
                # Never block a stack deletion; Lambda's retry attempts the disconnect again.
                self._answer(request, Outcome(SUCCESS))
                raise
            self._answer(request, Outcome(FAILED, INTERNAL_REASON))
            return FAILED
        self._answer(request, outcome)
        return outcome.status

    # ---- Create / Update ------------------------------------------------------------------

    def _connect(self, request: dict[str, Any]) -> Outcome:
        props = request.get("ResourceProperties")
        props = props if isinstance(props, dict) else {}
        external_id = props.get("ExternalId")
        if not isinstance(external_id, str) or not EXTERNAL_ID.match(external_id):
            return Outcome(FAILED, "ExternalId is missing or malformed")
        stack_id = _text(request.get("StackId"))
        if STACK_ARN.match(stack_id) is None:
            return Outcome(FAILED, NOT_VERIFIED_REASON)
        record = self._accounts.find_by_external_id(external_id)
        if record is None:
            logger.warning("registration with an unknown External ID", stack=stack_id)
            return Outcome(FAILED, NOT_VERIFIED_REASON)
        organization_id = organization_of(record)
        if organization_id is not None:
            return self._connect_organization(organization_id, record, request, props)
        user_id = str(record["userId"])
        bound = record.get("registrationStackId") == stack_id and record.get("status") == CONNECTED
        if bound and request.get("RequestType") == "Create":
            # The same Create delivered again (SNS and SQS deliver at least once): the
            # first one connected this stack and consumed the token; change nothing.
            logger.info("registration already made by this stack")
            return Outcome(SUCCESS)
        if bound:
            proof = RegistrationProof(
                stack_id=stack_id,
                physical_id=str(record.get("registrationPhysicalId") or ""),
                token_digest=None,
                now=self._now(),
            )
        else:
            digest = self._valid_token(record, props.get("RegistrationToken"))
            if digest is None:
                logger.warning("registration without a valid registration token", stack=stack_id)
                self._refused(user_id, "registration token missing, wrong, expired or used")
                return Outcome(FAILED, NOT_VERIFIED_REASON)
            proof = RegistrationProof(
                stack_id=stack_id,
                physical_id=self._physical_id(request),
                token_digest=digest,
                now=self._now(),
            )
        try:
            candidate = self._candidate(props, request, external_id)
            self._service.refuse_other_account(record, candidate.account_id)
            self._service.connect_candidate(
                user_id, candidate, patience=self._patience, registration=proof
            )
        except RoleValidationFailed as exc:
            return Outcome(FAILED, exc.message)  # audited by connect_candidate
        except AccountChanged:
            # Another registration or connect won meanwhile, or the token was used or
            # replaced while this one was validated: nothing was written.
            self._refused(user_id, "the connection changed while the role was validated")
            return Outcome(FAILED, NOT_VERIFIED_REASON)
        except DomainError as exc:
            self._refused(user_id, exc.message, account_id=_text(props.get("AccountId")))
            return Outcome(FAILED, exc.message)
        return Outcome(SUCCESS)

    def _valid_token(self, record: dict[str, Any], token: object) -> str | None:
        """The token's digest if it is the record's unexpired, unused token."""
        stored = record.get("registrationTokenHash")
        expires = record.get("registrationTokenExpiresAt")
        if (
            not isinstance(token, str)
            or len(token) != TOKEN_LENGTH
            or not isinstance(stored, str)
            or expires is None
        ):
            return None
        digest = token_digest(token)
        if not hmac.compare_digest(digest.encode(), stored.encode()):
            return None
        if int(expires) <= self._now():
            return None
        return digest

    def _refused(self, user_id: str, reason: str, *, account_id: str | None = None) -> None:
        self._audit.record(
            AuditEvent(
                user_id,
                "account.registration",
                result=FAILURE,
                account_id=account_id,
                reason=reason,
                details={"via": "registration"},
            )
        )

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def _candidate(
        self, props: dict[str, Any], request: dict[str, Any], external_id: str
    ) -> Candidate:
        account_id = self._service.check_role_arn(props.get("RoleArn"))
        if props.get("AccountId") != account_id:
            raise InvalidInput("AccountId is not the account of RoleArn")
        region = props.get("Region")
        if not is_aws_region(region):
            raise InvalidRegion("Region is not an AWS region where ECS is available")
        assert isinstance(region, str)
        stack = STACK_ARN.match(str(request.get("StackId") or ""))
        if stack is None or stack["account"] != account_id or stack["region"] != region:
            raise InvalidInput("the stack is not in AccountId and Region")
        prefix = props.get("ResourcePrefix") or self._project
        if not isinstance(prefix, str) or not RESOURCE_PREFIX.match(prefix):
            raise InvalidInput("ResourcePrefix is malformed")
        cluster = f"arn:aws:ecs:{region}:{account_id}:cluster/{prefix}-cluster"
        if props.get("ClusterArn") != cluster:
            raise InvalidInput(f"ClusterArn must be the stack's cluster {cluster}")
        subnets = props.get("SubnetIds")
        if isinstance(subnets, str):
            subnets = [part.strip() for part in subnets.split(",") if part.strip()]
        if (
            not isinstance(subnets, list)
            or not 1 <= len(subnets) <= MAX_SUBNETS
            or not all(isinstance(s, str) and SUBNET.match(s) for s in subnets)
        ):
            raise InvalidInput("SubnetIds must be 1 to 16 subnet ids")
        group = props.get("SecurityGroupId")
        if not isinstance(group, str) or not SECURITY_GROUP.match(group):
            raise InvalidInput("SecurityGroupId must be a security group id")
        version = props.get("TemplateVersion")
        if parse_version(version) is None:
            raise InvalidInput("TemplateVersion must be a version like 1.0.0")
        return Candidate(
            role_arn=str(props["RoleArn"]),
            account_id=account_id,
            external_id=external_id,
            region=region,
            resource_prefix=prefix,
            via="registration",
            cluster_arn=cluster,
            subnet_ids=tuple(subnets),
            security_group_id=group,
            template_version=str(version),
            stack_id=_text(request.get("StackId")),
        )

    # ---- Delete ---------------------------------------------------------------------------

    def _delete(self, request: dict[str, Any]) -> Outcome:
        """Always SUCCESS (a customer can always delete their stack); disconnects only the
        live registration of the stack bound to it, once the stack is really being deleted."""
        props = request.get("ResourceProperties")
        props = props if isinstance(props, dict) else {}
        external_id = props.get("ExternalId")
        stack_id = _text(request.get("StackId"))
        if not isinstance(external_id, str) or not EXTERNAL_ID.match(external_id):
            return Outcome(SUCCESS)
        record = self._accounts.find_by_external_id(external_id)
        organization_id = organization_of(record) if record is not None else None
        if record is not None and organization_id is not None:
            return self._delete_organization(organization_id, record, request, props)
        if (
            record is None
            or record.get("status") != CONNECTED
            or record.get("registrationStackId") != stack_id
        ):
            # A rolled-back Create, another stack, or already disconnected.
            logger.info("stack deleted; nothing connected to it")
            return Outcome(SUCCESS)
        if request.get("PhysicalResourceId") != record.get("registrationPhysicalId"):
            # CloudFormation cleaning up a replaced resource, or rolling back an update:
            # not the live registration, which stays connected.
            logger.info("delete of a registration that is not the live one; nothing changed")
            return Outcome(SUCCESS)
        user_id = str(record["userId"])
        if not self._stack_is_deleting(record, user_id, stack_id):
            logger.warning("delete not confirmed by the stack's status; nothing changed")
            return Outcome(SUCCESS)
        self._service.disconnect_record(user_id, record, via="registration")
        return Outcome(SUCCESS)

    def _stack_is_deleting(self, record: dict[str, Any], user_id: str, stack_id: str) -> bool:
        """Ask the stack itself, through the stored role (launcher -> deployer, which may
        DescribeStacks on its own stack only), whether it is being deleted."""
        from botocore.exceptions import BotoCoreError, ClientError

        stack = STACK_ARN.match(stack_id)
        if stack is None:
            return False
        try:
            session = self._chain.assume_connection(
                record, user_id=user_id, region=stack["region"], purpose="registration"
            )
            answer = session.client("cloudformation").describe_stacks(StackName=stack_id)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("could not read the stack's status", error=type(exc).__name__)
            return False
        stacks = answer.get("Stacks") or []
        return (
            len(stacks) == 1
            and stacks[0].get("StackId") == stack_id
            and stacks[0].get("StackStatus") == DELETING
        )

    # ---- an organisation's accounts (many per External ID) -------------------------------

    def _connect_organization(
        self,
        organization_id: str,
        record: dict[str, Any],
        request: dict[str, Any],
        props: dict[str, Any],
    ) -> Outcome:
        """One account of the organisation's StackSet: with the organisation's current
        token (multi-use), or an Update of the stack already bound to that account."""
        stack_id = _text(request.get("StackId"))
        if self._organizations is None:
            logger.error("an organisation's registration, but no organisation service wired")
            return Outcome(FAILED, NOT_VERIFIED_REASON)
        account_id = _text(props.get("AccountId"))
        bound = dict((record.get("accounts") or {}).get(account_id) or {})
        is_bound = bool(bound) and bound.get("registrationStackId") == stack_id
        if is_bound and request.get("RequestType") == "Create":
            logger.info("registration already made by this stack")
            return Outcome(SUCCESS)
        digest = None
        if not is_bound:
            digest = self._organizations.token_matches(record, props.get("RegistrationToken"))
            if digest is None:
                logger.warning("organisation registration without its token", stack=stack_id)
                return Outcome(FAILED, NOT_VERIFIED_REASON)
        physical_id = (
            str(bound.get("registrationPhysicalId")) if is_bound else self._physical_id(request)
        )
        try:
            candidate = self._candidate(props, request, str(props["ExternalId"]))
            self._organizations.register(
                organization_id,
                candidate,
                stack_id=stack_id,
                physical_id=physical_id,
                token_digest=digest,
                patience=self._patience,
            )
        except RoleValidationFailed as exc:
            return Outcome(FAILED, exc.message)
        except OrgAccountChanged:
            # The token was replaced meanwhile, or another stack holds this account.
            return Outcome(FAILED, NOT_VERIFIED_REASON)
        except DomainError as exc:
            return Outcome(FAILED, exc.message)
        return Outcome(SUCCESS)

    def _delete_organization(
        self,
        organization_id: str,
        record: dict[str, Any],
        request: dict[str, Any],
        props: dict[str, Any],
    ) -> Outcome:
        """Always SUCCESS; disconnects that one account only when this stack registered it,
        the physical id is the live one, and the stack says it is being deleted."""
        if self._organizations is None:
            return Outcome(SUCCESS)
        stack_id = _text(request.get("StackId"))
        stack = STACK_ARN.match(stack_id)
        account_id = stack["account"] if stack else ""
        bound = dict((record.get("accounts") or {}).get(account_id) or {})
        if not bound or bound.get("registrationStackId") != stack_id:
            logger.info("stack deleted; no organisation account bound to it")
            return Outcome(SUCCESS)
        if request.get("PhysicalResourceId") != bound.get("registrationPhysicalId"):
            logger.info("delete of a registration that is not the live one; nothing changed")
            return Outcome(SUCCESS)
        connection = {**bound, "externalId": record.get("externalId")}
        if not self._stack_is_deleting(connection, f"org-{organization_id}", stack_id):
            logger.warning("delete not confirmed by the stack's status; nothing changed")
            return Outcome(SUCCESS)
        self._organizations.unregister(
            organization_id,
            account_id,
            stack_id=stack_id,
            physical_id=str(bound.get("registrationPhysicalId")),
        )
        return Outcome(SUCCESS)

    # ---- the answer -----------------------------------------------------------------------

    def _answer(self, request: dict[str, Any], outcome: Outcome) -> None:
        response: dict[str, Any] = {
            "Status": outcome.status,
            "PhysicalResourceId": self._physical_id(request),
            "StackId": _text(request.get("StackId")),
            "RequestId": _text(request.get("RequestId")),
            "LogicalResourceId": _text(request.get("LogicalResourceId")),
        }
        if outcome.reason:
            response["Reason"] = outcome.reason[:MAX_REASON]
        self._sender.send(str(request["ResponseURL"]), response)
        logger.info("answered CloudFormation", status=outcome.status, reason=outcome.reason)

    def _physical_id(self, request: dict[str, Any]) -> str:
        given = request.get("PhysicalResourceId")
        if (
            request.get("RequestType") != "Create"
            and isinstance(given, str)
            and 0 < len(given) <= 1024
        ):
            return given
        props = request.get("ResourceProperties")
        account = props.get("AccountId") if isinstance(props, dict) else None
        if isinstance(account, str) and ACCOUNT_ID.fullmatch(account):
            return f"{self._project}-registration-{account}"
        return f"{self._project}-registration"


def _text(value: object) -> str:
    return value[:1024] if isinstance(value, str) else ""
