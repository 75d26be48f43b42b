"""The artifacts bucket: the run's request document the agent runner reads, and the
result document it writes (which the task-event handler reads for the receipt)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# A result holds the answer (at most MAX_OUTPUT_TOKENS of text) and a few fields.
MAX_RESULT_BYTES = 1024 * 1024


def request_key(run_id: str) -> str:
    return f"runs/{run_id}/request.json"


def result_key(run_id: str) -> str:
    return f"runs/{run_id}/result.json"


class ArtifactsGateway:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def put_request(self, run_id: str, document: dict[str, Any]) -> str:
        key = request_key(run_id)
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(document, ensure_ascii=False).encode(),
            ContentType="application/json",
        )
        return key

    def read_result(self, run_id: str) -> dict[str, Any] | None:
        """The runner's result.json, or None when it wrote none (or not a readable one)."""
        from botocore.exceptions import ClientError

        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=result_key(run_id))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied"):
                return None
            raise
        if int(answer.get("ContentLength") or 0) > MAX_RESULT_BYTES:
            return None
        try:
            document = json.loads(answer["Body"].read(MAX_RESULT_BYTES + 1))
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
