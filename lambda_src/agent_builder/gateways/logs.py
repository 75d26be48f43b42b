"""CloudWatch Logs: the runner's output, one stream per task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_builder.errors import InvalidNextToken
from agent_builder.repositories.dynamo import error_code

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient


@dataclass(frozen=True)
class LogPage:
    events: list[tuple[int, str]]
    next_token: str | None


class RunLogsGateway:
    def __init__(self, client: CloudWatchLogsClient, *, group_name: str) -> None:
        self._client = client
        self._group = group_name

    def page(self, stream: str, next_token: str | None, limit: int) -> LogPage:
        """One page from the head of the stream; an absent stream is an empty page."""
        from botocore.exceptions import ClientError

        params: dict[str, Any] = {
            "logGroupName": self._group,
            "logStreamName": stream,
            "startFromHead": True,
            "limit": limit,
        }
        if next_token:
            params["nextToken"] = next_token
        try:
            response = self._client.get_log_events(**params)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                return LogPage([], None)
            if code == "InvalidParameterException" and next_token:
                raise InvalidNextToken("nextToken is not a token this API issued") from None
            raise
        events = [
            (int(event.get("timestamp", 0)), str(event.get("message", "")))
            for event in response.get("events", [])
        ]
        forward = response.get("nextForwardToken")
        # CloudWatch hands back the same token at the end of the stream (for now).
        return LogPage(events, forward if forward and forward != next_token else None)
