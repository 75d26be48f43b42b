"""The platform's alarm topic: what the owner is told at once (e-mail, if subscribed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

MAX_SUBJECT = 100  # SNS's limit for an e-mail subject


class AlarmTopic:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic = topic_arn

    def raise_alarm(self, subject: str, message: str) -> None:
        self._client.publish(TopicArn=self._topic, Subject=subject[:MAX_SUBJECT], Message=message)
