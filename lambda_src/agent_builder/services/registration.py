"""Registration messages from customers' onboarding stacks (SNS-backed custom resource).

Anyone may publish to the registration topic, so every message is untrusted: it is acted
on only if its ResponseURL is a CloudFormation pre-signed S3 URL (gateways/cfn_response.py),
connects only with an External ID the platform issued and through the same validation as
a pasted role, and every acted-on message gets an answer (a Delete always SUCCESS). The
rules: lambda_src/CONTRACT.md "Registration".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder.audit import FAILURE, AuditEvent
from agent_builder.errors import DomainError, InvalidInput, InvalidRegion, RoleValidationFailed
from agent_builder.gateways.cfn_response import (
    MAX_REASON,
    ResponseSender,
    url_host,
)
from agent_builder.repositories.accounts import CONNECTED, AccountsRepository
from agent_builder.repositories.audit import AuditLog
from agent_builder.services.accounts import (
    REGISTRATION_PATIENCE_SECONDS,
    AccountService,
    Candidate,
)
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
UNKNOWN_ID_REASON = (
    "unknown External ID: launch the stack from the Launch Stack link the platform shows you "
    "(POST /aws-account/onboarding), with the External ID it gives"
)


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
        *,
        project: str,
        patience: float = REGISTRATION_PATIENCE_SECONDS,
    ) -> None:
        self._service = accounts
        self._accounts = repository
        self._audit = audit
        self._sender = sender
        self._project = project
        self._patience = patience

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
        record = self._accounts.find_by_external_id(external_id)
        if record is None:
            logger.warning(
                "registration with an unknown External ID", stack=_text(request.get("StackId"))
            )
            return Outcome(FAILED, UNKNOWN_ID_REASON)
        user_id = str(record["userId"])
        try:
            candidate = self._candidate(props, request, external_id)
            self._service.refuse_other_account(record, candidate.account_id)
            self._service.connect_candidate(user_id, candidate, patience=self._patience)
        except RoleValidationFailed as exc:
            return Outcome(FAILED, exc.message)  # audited by connect_candidate
        except DomainError as exc:
            self._audit.record(
                AuditEvent(
                    user_id,
                    "account.registration",
                    result=FAILURE,
                    account_id=_text(props.get("AccountId")),
                    reason=exc.message,
                    details={"via": "registration"},
                )
            )
            return Outcome(FAILED, exc.message)
        return Outcome(SUCCESS)

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
        props = request.get("ResourceProperties")
        props = props if isinstance(props, dict) else {}
        external_id = props.get("ExternalId")
        account_id = props.get("AccountId")
        if not isinstance(external_id, str) or not EXTERNAL_ID.match(external_id):
            return Outcome(SUCCESS)
        record = self._accounts.find_by_external_id(external_id)
        if (
            record is not None
            and record.get("status") == CONNECTED
            and record.get("accountId") == account_id
        ):
            self._service.disconnect_record(str(record["userId"]), record, via="registration")
        else:
            # A rolled-back Create, another account's stack, or already disconnected.
            logger.info("stack deleted; nothing connected to it")
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
