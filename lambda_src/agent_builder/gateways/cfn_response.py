"""Answering CloudFormation: a PUT of the custom resource's response to its ResponseURL.

The URL comes from an untrusted message, so it is used only if it is what CloudFormation
hands out, a pre-signed S3 URL: https, default port, no credentials in it, and a host
under `s3...amazonaws.com` (virtual-hosted or path style, global, regional, dualstack).
Anything else is never contacted: the platform is no relay for requests to other hosts.
urllib does not follow redirects for PUT, so S3 cannot send the request elsewhere either.

Local mode (no S3, no CloudFormation) records answers at a loopback URL: it sets
LOCAL_RESPONSE_URL_PREFIX, which settings accept only as an http://127.0.0.1 or
http://localhost prefix and which a deployed function never has.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from aws_lambda_powertools import Logger

logger = Logger(child=True)

S3_HOST = re.compile(
    r"^(?:[a-z0-9][a-z0-9.-]{0,253}\.)?s3(?:[.-](?:dualstack|[a-z]{2}(?:-gov)?-[a-z]+-[0-9]))*"
    r"\.amazonaws\.com$"
)
MAX_URL = 8192
# CloudFormation reads at most 4096 bytes of response; keep the reason well inside that.
MAX_REASON = 1000


def is_response_url(url: object) -> bool:
    if not isinstance(url, str) or len(url) > MAX_URL:
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.username is None
        and parts.password is None
        and port in (None, 443)
        and bool(S3_HOST.match(parts.hostname or ""))
    )


def url_host(url: object) -> str:
    """Only the host, for logs: the rest of a pre-signed URL is a credential."""
    try:
        return (urlsplit(url).hostname or "")[:255] if isinstance(url, str) else ""
    except ValueError:
        return ""


def _open(request: Request, timeout: float) -> Any:
    return urlopen(request, timeout=timeout)  # noqa: S310 - only checked https S3 URLs


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class ResponseSender:
    def __init__(
        self,
        *,
        local_prefix: str | None = None,
        opener: Callable[..., Any] = _open,
        attempts: int = 3,
        sleep: Callable[[float], None] = _sleep,
    ) -> None:
        self._local_prefix = local_prefix
        self._open = opener
        self._attempts = attempts
        self._sleep = sleep

    def accepts(self, url: object) -> bool:
        if self._local_prefix and isinstance(url, str) and url.startswith(self._local_prefix):
            return "/../" not in url and len(url) <= MAX_URL
        return is_response_url(url)

    def send(self, url: str, response: dict[str, Any]) -> None:
        """PUT the response; retried, then raised (the Lambda retry re-sends it)."""
        if not self.accepts(url):
            raise ValueError("not a CloudFormation response URL")
        body = json.dumps(response).encode()
        for attempt in range(1, self._attempts + 1):
            # The pre-signed URL signs no content type: send an empty one, as cfn-response does.
            request = Request(  # noqa: S310 - scheme and host checked above
                url,
                data=body,
                method="PUT",
                headers={"Content-Type": "", "Content-Length": str(len(body))},
            )
            try:
                with self._open(request, timeout=10) as answer:
                    status = getattr(answer, "status", 200)
                if 200 <= status < 300:
                    return
                logger.warning("response PUT answered", status=status, attempt=attempt)
            except Exception as exc:
                logger.warning("response PUT failed", error=type(exc).__name__, attempt=attempt)
                if attempt == self._attempts:
                    raise
            self._sleep(attempt)
        raise RuntimeError("CloudFormation's response URL did not accept the response")
