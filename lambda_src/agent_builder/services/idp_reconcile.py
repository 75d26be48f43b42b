"""The organisations' SAML IdPs stay on the web client across platform deploys (Tier 3).

The web client is a CloudFormation resource of the Identity stack. Organisations add their
`org-<organizationId>` IdPs to it at runtime (gateways/saml_providers.py, PUT /org/sso),
and every deploy that updates the client writes the template's SupportedIdentityProviders,
which do not name them: every enterprise SSO sign-in would break after an upgrade. The
Identity stack's custom resource (constructs/idp_reconcile.py) depends on the client and
carries the client's template properties, so CloudFormation sends it a Create when it first
appears and an Update exactly when the client's properties changed, each after the client's
own update finished; the same function also runs on a schedule, without a template.

Races with a runtime PUT or DELETE /org/sso, each a read-modify-write of the client:
- its write lands before CloudFormation's: CloudFormation drops its provider, and this
  reconcile, which comes after, finds the IdP in the pool (the runtime creates the IdP
  before it writes the client) and puts it back;
- it runs while this reconcile runs: both are `SamlProviders.reconcile_client`, which
  checks a fresh read and goes again until the client's `org-*` providers are the pool's;
  a provider deleted between this one's list and its write makes Cognito refuse the write
  (InvalidParameterException), and the next round lists the pool without it;
- it read the client before CloudFormation's write and wrote after it (a window of a few
  hundred milliseconds): its write has every provider but the pre-deploy settings, which
  would silently undo the deploy's change to the client (callback URLs, scopes...) while
  CloudFormation believes it applied. Decided: this reconcile writes the template's
  settings back wherever the client differs, with the providers, rather than failing the
  deploy (a rollback would put the old settings back and need the owner to deploy again).
  The scheduled run has no template and only puts providers back.

Failures: what is usually transient (throttling, Cognito's internal errors, IAM not yet
letting a just-created role act, writers that kept racing) is tried again with backoff
until shortly before the function's timeout; whatever still fails answers FAILED with a
Reason that says what failed and what the owner can do, and CloudFormation rolls the
update back (its rollback writes the previous client settings and sends this resource an
Update back to them, which reconciles again). A Delete answers SUCCESS and calls nothing:
deleting the pool deletes its IdPs, so `cdk destroy` never waits on this.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from agent_builder.gateways.cfn_response import MAX_REASON, url_host

if TYPE_CHECKING:
    from agent_builder.gateways.cfn_response import ResponseSender
    from agent_builder.gateways.saml_providers import ClientReconciled, SamlProviders

logger = Logger(child=True)

SUCCESS = "SUCCESS"
FAILED = "FAILED"
# The custom resource's one instance per stack: its id never changes, so an Update never
# makes CloudFormation delete "the old one".
PHYSICAL_ID = "org-identity-providers"
# The template's client properties, as constructs/idp_reconcile.py names them.
CLIENT_PROPERTY = "Client"
TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "InternalErrorException",
        "ConcurrentModificationException",
        # A provider deleted between the list and the write (DELETE /org/sso).
        "InvalidParameterException",
        # IAM takes a while to let a just-created role act (the first deploy).
        "AccessDeniedException",
    }
)
# What is left of the function's time when it stops trying, to answer in time.
ANSWER_MARGIN_MS = 20_000
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 16.0


class ReconcileFailed(Exception):
    """The reconcile still failed after its attempts; the message says why."""


def _describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _transient(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) in TRANSIENT_CODES
    # Connection and read timeouts, and writers that kept racing (reconcile_client).
    return isinstance(exc, BotoCoreError | RuntimeError)


class IdpReconcileService:
    def __init__(
        self,
        providers: SamlProviders,
        sender: ResponseSender,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._providers = providers
        self._sender = sender
        self._sleep = sleep

    def handle(self, event: Mapping[str, Any], *, remaining_ms: Callable[[], int]) -> str:
        """A CloudFormation request (answered at its ResponseURL) or a scheduled event;
        returns what was done."""
        if "RequestType" in event:
            return self.custom_resource(event, remaining_ms=remaining_ms)
        if event.get("source") == "aws.events":
            result = self.reconcile(None, remaining_ms=remaining_ms)
            return "reconciled" if result.wrote else "unchanged"
        logger.warning("neither a CloudFormation request nor a scheduled event; ignored")
        return "ignored"

    def reconcile(
        self, template: Mapping[str, Any] | None, *, remaining_ms: Callable[[], int]
    ) -> ClientReconciled:
        """`SamlProviders.reconcile`, tried again while the failure looks transient and
        time is left; ReconcileFailed says what failed last."""
        delay = FIRST_DELAY_SECONDS
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._providers.reconcile(template)
            except Exception as exc:
                out_of_time = remaining_ms() < ANSWER_MARGIN_MS + delay * 1000
                if not _transient(exc) or out_of_time:
                    logger.exception("reconcile failed", attempt=attempt)
                    raise ReconcileFailed(
                        f"{_describe(exc)} (after {attempt} attempt{'s' if attempt > 1 else ''})"
                    ) from exc
                logger.warning(
                    "reconcile failed; trying again", error=_describe(exc), attempt=attempt
                )
                self._sleep(delay)
                delay = min(delay * 2, MAX_DELAY_SECONDS)

    def custom_resource(self, event: Mapping[str, Any], *, remaining_ms: Callable[[], int]) -> str:
        url = event.get("ResponseURL")
        if not self._sender.accepts(url):
            logger.warning("request without a CloudFormation response URL", host=url_host(url))
            return "refused"
        kind = event.get("RequestType")
        logger.info("custom resource request", request_type=str(kind)[:20])
        if kind == "Delete":
            return self._answer(event, SUCCESS)
        if kind not in ("Create", "Update"):
            return self._answer(event, FAILED, f"unknown RequestType {str(kind)[:20]!r}")
        properties = event.get("ResourceProperties")
        template = properties.get(CLIENT_PROPERTY) if isinstance(properties, Mapping) else None
        if not isinstance(template, Mapping):
            return self._answer(event, FAILED, f"the {CLIENT_PROPERTY} property is missing")
        try:
            result = self.reconcile(template, remaining_ms=remaining_ms)
        except ReconcileFailed as exc:
            # Every failure lands here (reconcile wraps them all), so CloudFormation always
            # gets an answer rather than waiting for the ServiceTimeout.
            return self._answer(
                event,
                FAILED,
                f"Could not put the organisations' SSO identity providers (org-*) back on the "
                f"web client after CloudFormation updated it: {exc}. Enterprise SSO sign-in "
                "needs them; CloudFormation rolls this update back. Fix the cause (the "
                "function's log group has the details), then deploy again.",
            )
        return self._answer(event, SUCCESS, data={"Added": str(len(result.added))})

    def _answer(
        self,
        event: Mapping[str, Any],
        status: str,
        reason: str | None = None,
        *,
        data: Mapping[str, str] | None = None,
    ) -> str:
        given = event.get("PhysicalResourceId")
        response: dict[str, Any] = {
            "Status": status,
            # A failed Create answers the id CloudFormation will Delete: ours, a no-op.
            "PhysicalResourceId": given if isinstance(given, str) and given else PHYSICAL_ID,
            "StackId": str(event.get("StackId") or ""),
            "RequestId": str(event.get("RequestId") or ""),
            "LogicalResourceId": str(event.get("LogicalResourceId") or ""),
        }
        if reason:
            response["Reason"] = reason[:MAX_REASON]
        if data:
            response["Data"] = dict(data)
        self._sender.send(str(event["ResponseURL"]), response)
        logger.info("answered CloudFormation", status=status, reason=reason)
        return status


__all__ = ["PHYSICAL_ID", "IdpReconcileService", "ReconcileFailed"]
