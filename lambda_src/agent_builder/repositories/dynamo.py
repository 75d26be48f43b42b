"""Plain values <-> DynamoDB attribute values, without boto3's resource layer.

The low-level client is used everywhere (one model to load on a cold start); this
covers the types the tables hold: str, int, float, bool, None, dict and list.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONDITION_FAILED = "ConditionalCheckFailed"


def to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {key: to_attr(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(item) for item in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_attr(attr: dict[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {key: from_attr(item) for key, item in value.items()}
    if kind == "L":
        return [from_attr(item) for item in value]
    raise TypeError(f"unexpected DynamoDB type {kind}")


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: to_attr(value) for key, value in values.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: from_attr(value) for key, value in item.items()}


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


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


@dataclass(frozen=True)
class Cancelled:
    """A cancelled TransactWriteItems: one reason code per item, in the items' order."""

    codes: tuple[str, ...]
    # The item as it was, for items sent with ReturnValuesOnConditionCheckFailure=ALL_OLD.
    old_items: tuple[dict[str, Any] | None, ...]
    # The original error, to re-raise when the caller has no answer for these reasons.
    error: Exception

    def failed(self, index: int) -> bool:
        """The condition of item `index` failed (and so cancelled the transaction)."""
        return self.codes[index : index + 1] == (CONDITION_FAILED,)

    @property
    def conflict(self) -> bool:
        """Another transaction was writing one of the items at the same moment."""
        return "TransactionConflict" in self.codes


def transact(client: DynamoDBClient, items: list[dict[str, Any]]) -> Cancelled | None:
    """Run one TransactWriteItems: None if it was written, or why it was cancelled.

    Every other error is raised as botocore raised it.
    """
    from botocore.exceptions import ClientError

    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        reasons = exc.response.get("CancellationReasons", [])
        return Cancelled(
            codes=tuple(str(reason.get("Code", "None")) for reason in reasons),
            old_items=tuple(
                from_item(dict(reason["Item"])) if reason.get("Item") else None
                for reason in reasons
            ),
            error=exc,
        )
    return None
