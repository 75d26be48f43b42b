"""The runs table: one item per run, keyed by runId, listed per user via GSI byUser.

`statusRank` orders the states so that every write is a conditional update that can
only move a run forward: events arriving late or twice never move it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_builder.repositories.dynamo import error_code, from_item, update_parts
from agent_builder.runs import FAILED, PENDING, RUNNING, STOPPED

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Stored with every run as `statusRank`: conditions compare it to move runs forward only.
STATUS_RANK = {PENDING: 0, RUNNING: 1, STOPPED: 2, FAILED: 3}
TERMINAL_RANK = STATUS_RANK[STOPPED]
BY_USER_INDEX = "byUser"
BY_ORGANIZATION_INDEX = "byOrganization"


def stored_run(run: dict[str, Any]) -> dict[str, Any]:
    """The run as an item holds it: with the rank of its status."""
    return {**run, "statusRank": STATUS_RANK[run["status"]]}


class RunsRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, run_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key={"runId": {"S": run_id}})
        item = response.get("Item")
        return from_item(item) if item else None

    def list_by_user(
        self, user_id: str, limit: int, after: dict[str, str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Newest first; `after` and the returned cursor are {runId, createdAt}."""
        return self._list(BY_USER_INDEX, "userId", user_id, limit, after)

    def list_by_organization(
        self, organization_id: str, limit: int, after: dict[str, str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """An organisation's runs (of its agents), newest first, as list_by_user."""
        return self._list(BY_ORGANIZATION_INDEX, "organizationId", organization_id, limit, after)

    def _list(
        self, index: str, key: str, value: str, limit: int, after: dict[str, str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#key = :value",
            "ExpressionAttributeNames": {"#key": key},
            "ExpressionAttributeValues": {":value": {"S": value}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after:
            params["ExclusiveStartKey"] = {
                key: {"S": value},
                "runId": {"S": after["runId"]},
                "createdAt": {"S": after["createdAt"]},
            }
        response = self._client.query(**params)
        last = response.get("LastEvaluatedKey")
        cursor = (
            {"runId": last["runId"]["S"], "createdAt": last["createdAt"]["S"]} if last else None
        )
        return [from_item(item) for item in response.get("Items", [])], cursor

    def advance(self, run_id: str, task_arn: str, status: str, fields: dict[str, Any]) -> bool:
        """Record a task state if it moves the run forward; False if stale or not ours.

        Same-rank updates are allowed for PENDING and RUNNING (later details of the same
        state), never for STOPPED: a duplicate STOPPED event changes nothing.
        """
        from botocore.exceptions import ClientError

        rank = STATUS_RANK[status]
        update, names, values = update_parts(
            {**fields, "status": status, "statusRank": rank, "taskArn": task_arn}
        )
        names.update({"#rank": "statusRank", "#task": "taskArn"})
        values.update({":rank": {"N": str(rank)}, ":task": {"S": task_arn}})
        comparison = "<" if rank >= TERMINAL_RANK else "<="
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"runId": {"S": run_id}},
                UpdateExpression=update,
                ConditionExpression=(
                    f"attribute_exists(runId) AND #rank {comparison} :rank"
                    " AND (attribute_not_exists(#task) OR #task = :task)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def fail(self, run_id: str, fields: dict[str, Any]) -> bool:
        """Finish a run that never got a task as FAILED (no test to give back)."""
        from botocore.exceptions import ClientError

        rank = STATUS_RANK[FAILED]
        update, names, values = update_parts({**fields, "status": FAILED, "statusRank": rank})
        names["#rank"] = "statusRank"
        values[":terminal"] = {"N": str(TERMINAL_RANK)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"runId": {"S": run_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(runId) AND #rank < :terminal",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
