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


class LaunchFailed(DomainError):
    """AWS refused to start the task; the run is FAILED and the test was given back."""

    status = 503
    code = "LAUNCH_FAILED"
