"""The artifacts bucket: the run's request document the agent runner reads."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
