"""Answering CloudFormation: a PUT of the custom resource's response to its ResponseURL.

The URL comes from an untrusted message, so it is used only if it is what CloudFormation
hands out: a pre-signed URL into its own response bucket,
`cloudformation-custom-resource-response-<region without dashes>`, over https on the
default port, with no credentials in it, virtual-hosted
(`<bucket>.s3.amazonaws.com`, `<bucket>.s3-<region>.amazonaws.com`,
`<bucket>.s3.<region>.amazonaws.com`) or path style (`s3[.-<region>].amazonaws.com/<bucket>/`).
Anything else is never contacted: the platform is no relay for requests to other hosts
or other buckets. urllib does not follow redirects for PUT, so S3 cannot send the request
elsewhere either.

There is no local-mode exception here: local mode answers at the same kind of URL and
points urllib's https transport for those hosts at its emulated S3 (local_mode/plumbing.py,
`install_s3_response_transport`), a process-wide opener that only local mode's process
installs.
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

RESPONSE_BUCKET = r"cloudformation-custom-resource-response-[a-z]{2}(?:gov)?[a-z]+[0-9]"
_S3_ENDPOINT = r"s3(?:[.-][a-z]{2}(?:-gov)?-[a-z]+-[0-9])?\.amazonaws\.com"
VIRTUAL_HOST = re.compile(rf"^{RESPONSE_BUCKET}\.{_S3_ENDPOINT}$")
PATH_HOST = re.compile(rf"^{_S3_ENDPOINT}$")
PATH_BUCKET = re.compile(rf"^/{RESPONSE_BUCKET}/[^/]")
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
    if (
        parts.scheme != "https"
        or parts.username is not None
        or parts.password is not None
        or port not in (None, 443)
        or "/../" in parts.path
        or "\\" in url
    ):
        return False
    host = parts.hostname or ""
    if VIRTUAL_HOST.match(host):
        return parts.path.startswith("/")
    return bool(PATH_HOST.match(host) and PATH_BUCKET.match(parts.path))


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
        opener: Callable[..., Any] = _open,
        attempts: int = 3,
        sleep: Callable[[float], None] = _sleep,
    ) -> None:
        self._open = opener
        self._attempts = attempts
        self._sleep = sleep

    def accepts(self, url: object) -> bool:
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
