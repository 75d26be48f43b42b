"""UTC time in the shapes the tables and the API use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z: fixed width, so it sorts as a string."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def month(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def next_month_start(moment: datetime) -> datetime:
    """The first instant of the next calendar month (UTC): when the test quota resets."""
    moment = moment.astimezone(UTC)
    year, month_number = (
        (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    )
    return datetime(year, month_number, 1, tzinfo=UTC)


def minute_window(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def next_minute_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())
