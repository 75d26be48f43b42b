"""Domain exceptions. handlers/api.py maps them to HTTP in one place."""

from __future__ import annotations


class DomainError(Exception):
    """An expected refusal: `status` and `code` become the HTTP answer."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(DomainError):
    status = 400
    code = "VALIDATION_ERROR"


class InvalidNextToken(DomainError):
    status = 400
    code = "INVALID_NEXT_TOKEN"


class ImageNotAllowed(DomainError):
    status = 403
    code = "IMAGE_NOT_ALLOWED"


class AgentNotFound(DomainError):
    status = 404
    code = "AGENT_NOT_FOUND"


class RunNotFound(DomainError):
    status = 404
    code = "RUN_NOT_FOUND"


class AccountNotConnected(DomainError):
    status = 409
    code = "ACCOUNT_NOT_CONNECTED"


class UnknownTier(DomainError):
    status = 409
    code = "UNKNOWN_TIER"


class IdempotencyKeyReused(DomainError):
    status = 409
    code = "IDEMPOTENCY_KEY_REUSED"


class LaunchConflict(DomainError):
    status = 409
    code = "LAUNCH_CONFLICT"


class QuotaExceeded(DomainError):
    status = 429
    code = "QUOTA_EXCEEDED"


class RateLimited(DomainError):
    status = 429
    code = "RATE_LIMITED"


class AgentLimit(DomainError):
    status = 409
    code = "AGENT_LIMIT"


class CapacityExhausted(DomainError):
    """Every platform test slot is taken (maxConcurrentTestTasks); nothing was charged."""

    status = 503
    code = "CAPACITY_EXHAUSTED"


class FreeTierPaused(DomainError):
    """The platform's free tests are spent for the month, or the budget paused them."""

    status = 503
    code = "FREE_TIER_PAUSED"


class LaunchFailed(DomainError):
    """AWS refused to start the task; the run is FAILED and the test was given back."""

    status = 503
    code = "LAUNCH_FAILED"


# ---- Tier 2: connected AWS accounts -------------------------------------------------------


class InvalidRoleArn(DomainError):
    status = 400
    code = "INVALID_ROLE_ARN"


class RoleInPlatformAccount(DomainError):
    status = 400
    code = "ROLE_IN_PLATFORM_ACCOUNT"


class InvalidRegion(DomainError):
    status = 400
    code = "INVALID_REGION"


class ExternalIdMismatch(DomainError):
    """Not the caller's External ID: a bad value in the request, like any other (400)."""

    status = 400
    code = "EXTERNAL_ID_MISMATCH"


class AwsAccountNotFound(DomainError):
    status = 404
    code = "AWS_ACCOUNT_NOT_FOUND"


class AccountAlreadyConnected(DomainError):
    status = 409
    code = "ACCOUNT_ALREADY_CONNECTED"


class RoleValidationFailed(DomainError):
    """The role could not be assumed, or lacks a permission a deployment needs.

    `check` names the probe that failed; `retryable` marks the failures IAM's eventual
    consistency explains (a role or policy created seconds ago).
    """

    status = 422
    code = "ROLE_VALIDATION_FAILED"

    def __init__(self, check: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.retryable = retryable


class DeployFailed(DomainError):
    """The customer's account refused to start the run (its role, cluster or network)."""

    status = 422
    code = "DEPLOY_FAILED"


# ---- Tier 3: organisations ----------------------------------------------------------------


class RoleNotAllowed(DomainError):
    """The caller's role in their organisation does not allow this (viewers change nothing)."""

    status = 403
    code = "ROLE_NOT_ALLOWED"


class OrganizationCreationClosed(DomainError):
    """The platform owner closed organisation creation (allowOrganizationCreation=false)."""

    status = 403
    code = "ORGANIZATION_CREATION_CLOSED"


class RegionNotAllowed(DomainError):
    """The organisation's admins allow deployments only to other regions."""

    status = 403
    code = "REGION_NOT_ALLOWED"


class NotInOrganization(DomainError):
    status = 404
    code = "NOT_IN_ORGANIZATION"


class MemberNotFound(DomainError):
    status = 404
    code = "MEMBER_NOT_FOUND"


class InvitationNotFound(DomainError):
    """No such invitation, or not addressed to the caller's verified e-mail (404, not 403)."""

    status = 404
    code = "INVITATION_NOT_FOUND"


class AlreadyInOrganization(DomainError):
    """A user belongs to at most one organisation."""

    status = 409
    code = "ALREADY_IN_ORGANIZATION"


class LastAdmin(DomainError):
    """The organisation's last admin can neither leave nor be demoted."""

    status = 409
    code = "LAST_ADMIN"


class NoEnterpriseTarget(DomainError):
    """An enterprise deployment has nowhere to run: no SSO session, no registered account."""

    status = 409
    code = "NO_ENTERPRISE_TARGET"


class InvitationExpired(DomainError):
    """The invitation's time ran out: an admin must invite again."""

    status = 410
    code = "INVITATION_EXPIRED"


# ---- Tier 3: enterprise SSO and organisation accounts --------------------------------------


class InvalidSsoConfig(DomainError):
    """The SAML metadata or the IAM Identity Center settings cannot be used; nothing stored."""

    status = 422
    code = "INVALID_SSO_CONFIG"


class EmailDomainTaken(DomainError):
    """An e-mail domain is already claimed by another organisation."""

    status = 409
    code = "EMAIL_DOMAIN_TAKEN"


class SsoNotConfigured(DomainError):
    """The organisation has no IAM Identity Center settings (PUT /org/sso first)."""

    status = 409
    code = "SSO_NOT_CONFIGURED"


class SsoSessionExpired(DomainError):
    """The member's IAM Identity Center session expired or was revoked: sign in again."""

    status = 409
    code = "SSO_SESSION_EXPIRED"


class SsoUnavailable(DomainError):
    """IAM Identity Center refused or failed a call the platform cannot work around."""

    status = 422
    code = "SSO_REQUEST_FAILED"


class OrgAccountNotFound(DomainError):
    status = 404
    code = "ORG_ACCOUNT_NOT_FOUND"
