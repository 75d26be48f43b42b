"""Plain values <-> DynamoDB attribute values, without boto3's resource layer.

The low-level client is used everywhere (one model to load on a cold start); this
covers the types the tables hold: str, int, float, bool, None, dict and list.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


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
