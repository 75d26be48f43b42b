"""The runs table: one item per run, keyed by runId, listed per user via GSI byUser.

`statusRank` orders the states so that every write is a conditional update that can
only move a run forward: events arriving late or twice never move it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_builder.repositories.dynamo import error_code, from_item, to_attr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PENDING, RUNNING, STOPPED, FAILED = "PENDING", "RUNNING", "STOPPED", "FAILED"
STATUS_RANK = {PENDING: 0, RUNNING: 1, STOPPED: 2, FAILED: 3}
TERMINAL_RANK = STATUS_RANK[STOPPED]
BY_USER_INDEX = "byUser"


def update_parts(fields: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """SET expression, names and values for `fields` (None values are skipped)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    for index, (name, value) in enumerate(fields.items()):
        if value is None:
            continue
        names[f"#f{index}"] = name
        values[f":f{index}"] = to_attr(value)
        sets.append(f"#f{index} = :f{index}")
    return "SET " + ", ".join(sets), names, values


class RunsRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    @property
    def table(self) -> str:
        return self._table

    def get(self, run_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key={"runId": {"S": run_id}})
        item = response.get("Item")
        return from_item(item) if item else None

    def list_by_user(
        self, user_id: str, limit: int, after: dict[str, str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Newest first; `after` and the returned cursor are {runId, createdAt}."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_USER_INDEX,
            "KeyConditionExpression": "userId = :user",
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after:
            params["ExclusiveStartKey"] = {
                "userId": {"S": user_id},
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
