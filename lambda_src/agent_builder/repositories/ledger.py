"""The launch ledger: charging and refunding a test, each in ONE DynamoDB transaction.

Charging puts the run (the idempotency record), adds one to the month's test counter
if it is below the limit, adds one to the per-minute launch window if it is below the
rate, and creates the profile if missing. Nothing is read first, so concurrent
launches can never exceed the quota; a cancelled transaction says which condition
failed. Refunding marks the run finished and takes the test back off the counter,
again atomically, and only once (the run's status rank guards it).

Both take the audit event of what they do into the same transaction: the record exists
exactly when the charge or refund happened, at no extra call, and a replayed runId
(cancelled by the run's condition) records nothing.

The owner's ceilings live in the same transaction as the user's quota (CONTRACT.md
"Ceilings"): a platform-wide count of test tasks running now, taken at the charge and
given back exactly once when the run ends (its terminal update and the release are one
transaction, and the run's status rank lets only one terminal update through), and a
platform-wide count of the month's free tests. Both are usage items of the reserved
user PLATFORM_USER, which no Cognito `sub` can be.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent_builder import timeutil
from agent_builder.audit import AuditEvent
from agent_builder.errors import (
    CapacityExhausted,
    FreeTierPaused,
    LaunchConflict,
    QuotaExceeded,
    RateLimited,
)
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import (
    error_code,
    from_item,
    to_item,
    transact,
    update_parts,
)
from agent_builder.repositories.profiles import DEFAULT_TIER
from agent_builder.repositories.runs import STATUS_RANK, TERMINAL_RANK, stored_run

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from agent_builder.receipts import Spend

# Usage counters are kept a year after their month for history, then expire.
USAGE_RETENTION = timedelta(days=365)
# A per-minute window is useless after its minute; keep it a day for troubleshooting.
WINDOW_RETENTION = timedelta(days=1)
# The usage items of the platform as a whole. Cognito subs are UUIDs: never "#...".
PLATFORM_USER = "#platform"
RUNNING_PERIOD = "running"
# Stored on a run that holds one of the running-task slots until it ends.
SLOT = "holdsSlot"
PLATFORM_PERIOD = "platformPeriod"
# Set on the platform's month item while the free tier is paused (FreeTierSwitch).
PAUSED_AT = "pausedAt"
# How soon to try again when every slot is taken: a test runs for minutes, not hours.
CAPACITY_RETRY_SECONDS = 30


def tests_period(moment: datetime) -> str:
    return f"tests#{timeutil.month(moment)}"


def window_period(moment: datetime) -> str:
    return f"launches#{timeutil.minute_window(moment)}"


@dataclass(frozen=True)
class Limits:
    tests_per_month: int
    launches_per_minute: int
    # The owner's ceilings (None / 0: none), charged with the platform's own tests only.
    max_running_tests: int | None = None
    platform_tests_per_month: int = 0


def charged_period(run: dict[str, Any]) -> str:
    """The usage item a platform run was charged to (the month it was created in)."""
    return str(run.get("period") or tests_period(timeutil.parse_iso(run["createdAt"])))


class LaunchLedger:
    def __init__(
        self,
        client: DynamoDBClient,
        *,
        runs_table: str,
        usage_table: str,
        profiles_table: str,
        audit: AuditLog | None = None,
    ) -> None:
        self._client = client
        self._runs = runs_table
        self._usage = usage_table
        self._profiles = profiles_table
        # Without it (the task-events function has no audit table) no event can be given.
        self._audit = audit

    def _audit_items(self, event: AuditEvent) -> list[dict[str, Any]]:
        """The event's records (an organisation's run: its trail too), last in the
        transaction so that the other items keep their indexes."""
        if self._audit is None:
            raise RuntimeError("this ledger was built without the audit table")
        return self._audit.transaction_items(event)

    def _new_run_item(self, run: dict[str, Any]) -> dict[str, Any]:
        """Put the run unless its id exists: an existing one is an idempotent replay."""
        return {
            "Put": {
                "TableName": self._runs,
                "Item": to_item(stored_run(run)),
                "ConditionExpression": "attribute_not_exists(runId)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _window_item(self, user_id: str, now: datetime, limits: Limits) -> dict[str, Any]:
        """Count one launch in this minute's window, unless the window is full."""
        window_end = timeutil.next_minute_start(now)
        return {
            "Update": {
                "TableName": self._usage,
                "Key": {"userId": {"S": user_id}, "period": {"S": window_period(now)}},
                "UpdateExpression": "ADD launches :one SET expiresAt = if_not_exists(expiresAt, :expires)",
                "ConditionExpression": "attribute_not_exists(launches) OR launches < :rate",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":rate": {"N": str(limits.launches_per_minute)},
                    ":expires": {"N": str(timeutil.epoch(window_end + WINDOW_RETENTION))},
                },
            }
        }

    def charge(
        self,
        run: dict[str, Any],
        *,
        email: str | None,
        now: datetime,
        limits: Limits,
        audit: AuditEvent | None = None,
    ) -> dict[str, Any] | None:
        """Store the run and count the test. Returns None when charged, or the existing
        run when this runId already exists (an idempotent replay, not counted again).

        Raises QuotaExceeded / RateLimited (with Retry-After) when a limit is reached.
        """
        run = {**run, "period": tests_period(now)}
        user = {"S": run["userId"]}
        reset = timeutil.next_month_start(now)
        profile_names = {"#tier": "tier", "#createdAt": "createdAt"}
        profile_values: dict[str, Any] = {
            ":tier": {"S": DEFAULT_TIER},
            ":now": {"S": timeutil.iso(now)},
        }
        profile_update = (
            "SET #tier = if_not_exists(#tier, :tier), #createdAt = if_not_exists(#createdAt, :now)"
        )
        if email:
            profile_names["#email"] = "email"
            profile_values[":email"] = {"S": email}
            profile_update += ", #email = if_not_exists(#email, :email)"
        items: list[Any] = [
            self._new_run_item(run),
            {
                "Update": {
                    "TableName": self._usage,
                    "Key": {"userId": user, "period": {"S": run["period"]}},
                    "UpdateExpression": "ADD testsUsed :one SET expiresAt = if_not_exists(expiresAt, :expires)",
                    "ConditionExpression": "attribute_not_exists(testsUsed) OR testsUsed < :limit",
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":limit": {"N": str(limits.tests_per_month)},
                        ":expires": {"N": str(timeutil.epoch(reset + USAGE_RETENTION))},
                    },
                }
            },
            self._window_item(run["userId"], now, limits),
            {
                "Update": {
                    "TableName": self._profiles,
                    "Key": {"userId": user},
                    "UpdateExpression": profile_update,
                    "ExpressionAttributeNames": profile_names,
                    "ExpressionAttributeValues": profile_values,
                }
            },
        ]
        retry_after = str(max(1, int((reset - now).total_seconds())))
        # Index in `items` -> the refusal its condition means (the run's is a replay).
        refusals: dict[int, Exception] = {
            1: QuotaExceeded(
                f"all {limits.tests_per_month} tests of {timeutil.month(now)} are used; "
                f"the quota resets at {timeutil.iso(reset)}",
                headers={"Retry-After": retry_after},
            ),
            2: rate_limited(limits, now),
        }
        if limits.max_running_tests is not None:
            refusals[len(items)] = CapacityExhausted(
                f"all {limits.max_running_tests} test slots of the platform are in use; "
                "no test was charged: try again shortly",
                headers={"Retry-After": str(CAPACITY_RETRY_SECONDS)},
            )
            items.append(self._take_slot(limits.max_running_tests))
            run[SLOT] = True
        # Every platform test counts on the platform's month, which is also where the
        # budget's kill switch pauses the free tier (FreeTierSwitch): one item, one
        # condition, no read.
        platform_month = len(items)
        items.append(
            self._count_platform_test(run["period"], limits.platform_tests_per_month, reset)
        )
        run[PLATFORM_PERIOD] = run["period"]
        items[0] = self._new_run_item(run)
        if audit is not None:
            items.extend(self._audit_items(audit))
        cancelled = transact(self._client, items)
        if cancelled is None:
            return None
        if len(cancelled.codes) == len(items):
            if cancelled.failed(0):
                return cancelled.old_items[0] or {"runId": run["runId"]}
            for index, refusal in refusals.items():
                if cancelled.failed(index):
                    raise refusal from None
            if cancelled.failed(platform_month):
                paused = (cancelled.old_items[platform_month] or {}).get(PAUSED_AT)
                raise free_tier_paused(now, paused_at=paused) from None
        if cancelled.conflict:
            raise launch_conflict() from None
        raise cancelled.error

    def _take_slot(self, cap: int) -> dict[str, Any]:
        """One more platform test task running, unless `cap` run already."""
        return {
            "Update": {
                "TableName": self._usage,
                "Key": _platform_key(RUNNING_PERIOD),
                "UpdateExpression": "ADD running :one",
                "ConditionExpression": "attribute_not_exists(running) OR running < :cap",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":cap": {"N": str(cap)}},
            }
        }

    def _count_platform_test(self, period: str, cap: int, reset: datetime) -> dict[str, Any]:
        """One more of the platform's tests this month, unless the free tier is paused
        this month or (`cap` > 0) `cap` are spent."""
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":expires": {"N": str(timeutil.epoch(reset + USAGE_RETENTION))},
        }
        condition = f"attribute_not_exists({PAUSED_AT})"
        if cap:
            condition += " AND (attribute_not_exists(testsUsed) OR testsUsed < :cap)"
            values[":cap"] = {"N": str(cap)}
        return {
            "Update": {
                "TableName": self._usage,
                "Key": _platform_key(period),
                "UpdateExpression": "ADD testsUsed :one SET expiresAt = if_not_exists(expiresAt, :expires)",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
                # Which of the two refused: a pause names itself in the item.
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def running_tests(self) -> int:
        """Platform test tasks holding a slot now (what the ceiling compares)."""
        response = self._client.get_item(
            TableName=self._usage, Key=_platform_key(RUNNING_PERIOD), ConsistentRead=True
        )
        return int(response.get("Item", {}).get("running", {}).get("N", "0"))

    def _settlements(self, stored: dict[str, Any], *, refund: bool) -> list[dict[str, Any]]:
        """What ending this run gives back besides the user's test: its slot, and the
        platform's free test when the test itself is given back."""
        items: list[dict[str, Any]] = []
        if stored.get(SLOT):
            items.append(
                {
                    "Update": {
                        "TableName": self._usage,
                        "Key": _platform_key(RUNNING_PERIOD),
                        "UpdateExpression": "ADD running :minus",
                        "ConditionExpression": "running > :zero",
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":zero": {"N": "0"}},
                    }
                }
            )
        if refund and stored.get(PLATFORM_PERIOD):
            items.append(
                {
                    "Update": {
                        "TableName": self._usage,
                        "Key": _platform_key(str(stored[PLATFORM_PERIOD])),
                        "UpdateExpression": "ADD testsUsed :minus",
                        "ConditionExpression": "testsUsed > :zero",
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":zero": {"N": "0"}},
                    }
                }
            )
        return items

    def _stored(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run as charged: a run built in memory does not know what charge() stored."""
        if SLOT in run or PLATFORM_PERIOD in run or "statusRank" in run:
            return run
        response = self._client.get_item(
            TableName=self._runs, Key={"runId": {"S": run["runId"]}}, ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else run

    def finish(
        self,
        run: dict[str, Any],
        *,
        status: str,
        fields: dict[str, Any],
        task_arn: str,
        spent: Spend | None = None,
    ) -> bool:
        """A task's end that costs its test (it ran): the run moves to `status` and gives
        its slot back, and its receipt's tokens and cost are added to its month,
        atomically and once. False when stale (already finished, or not this run's task)."""
        stored = self._stored(run)
        rank = STATUS_RANK[status]
        update, names, values = update_parts(
            {**fields, "status": status, "statusRank": rank, "taskArn": task_arn}
        )
        names.update({"#rank": "statusRank", "#task": "taskArn"})
        values.update({":terminal": {"N": str(TERMINAL_RANK)}, ":task": {"S": task_arn}})
        run_update = {
            "TableName": self._runs,
            "Key": {"runId": {"S": run["runId"]}},
            "UpdateExpression": update,
            "ConditionExpression": "attribute_exists(runId) AND #rank < :terminal"
            " AND (attribute_not_exists(#task) OR #task = :task)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        items: list[Any] = [{"Update": run_update}, *self._settlements(stored, refund=False)]
        if spent is not None:
            items.append({"Update": self._month_update(run, spent, refund=False)})
        cancelled = transact(self._client, items)
        if cancelled is None:
            return True
        if cancelled.failed(0):
            return False
        raise cancelled.error

    def _month_update(self, run: dict[str, Any], spent: Spend | None, *, refund: bool) -> Any:
        """The run's month item: the test given back (`refund`, never below zero) and/or
        the receipt's tokens and dollars added (CONTRACT.md "Receipts")."""
        adds: list[str] = []
        values: dict[str, Any] = {}
        update: dict[str, Any] = {
            "TableName": self._usage,
            "Key": {"userId": {"S": run["userId"]}, "period": {"S": charged_period(run)}},
        }
        if refund:
            adds.append("testsUsed :minus")
            values.update({":minus": {"N": "-1"}, ":zero": {"N": "0"}})
            update["ConditionExpression"] = "testsUsed > :zero"
        if spent is not None:
            adds += ["inputTokens :in", "outputTokens :out", "estimatedCostUsd :usd"]
            values.update(
                {
                    ":in": {"N": str(spent.input_tokens)},
                    ":out": {"N": str(spent.output_tokens)},
                    ":usd": {"N": str(spent.cost_usd)},
                }
            )
        update["UpdateExpression"] = "ADD " + ", ".join(adds)
        update["ExpressionAttributeValues"] = values
        return update

    def month_usage(self, user_id: str, now: datetime) -> dict[str, Any]:
        """The user's month: tests spent, and the tokens and estimated dollars of its runs."""
        response = self._client.get_item(
            TableName=self._usage,
            Key={"userId": {"S": user_id}, "period": {"S": tests_period(now)}},
            ProjectionExpression="testsUsed, inputTokens, outputTokens, estimatedCostUsd",
        )
        item = from_item(response.get("Item", {}))
        return {
            "testsUsed": int(item.get("testsUsed", 0)),
            "inputTokens": int(item.get("inputTokens", 0)),
            "outputTokens": int(item.get("outputTokens", 0)),
            "estimatedCostUsd": float(item.get("estimatedCostUsd", 0)),
        }

    def open_uncharged(
        self, run: dict[str, Any], *, now: datetime, limits: Limits
    ) -> dict[str, Any] | None:
        """Store a run that costs no test (it runs in the customer's account): the run
        and the per-minute launch window, in one transaction. Returns None when stored,
        or the existing run for a replayed runId; RateLimited when the window is full."""
        cancelled = transact(
            self._client,
            [self._new_run_item(run), self._window_item(run["userId"], now, limits)],
        )
        if cancelled is None:
            return None
        if cancelled.failed(0):
            return cancelled.old_items[0] or {"runId": run["runId"]}
        if cancelled.failed(1):
            raise rate_limited(limits, now) from None
        if cancelled.conflict:
            raise launch_conflict() from None
        raise cancelled.error

    def finish_and_refund(
        self,
        run: dict[str, Any],
        *,
        status: str,
        fields: dict[str, Any],
        task_arn: str | None = None,
        require_no_task: bool = False,
        audit: AuditEvent | None = None,
        spent: Spend | None = None,
    ) -> bool:
        """Finish the run with `status` and give its test back, atomically and once.

        False when the run was already finished (nothing changed, nothing audited). If
        only the counter refused (already at zero), the run is still finished, without a
        refund, and the audit record says `refunded: false`.
        """
        rank = STATUS_RANK[status]
        run_fields = {**fields, "status": status, "statusRank": rank, "refunded": True}
        if task_arn:
            run_fields["taskArn"] = task_arn
        update, names, values = update_parts(run_fields)
        names["#rank"] = "statusRank"
        values[":terminal"] = {"N": str(TERMINAL_RANK)}
        condition = "attribute_exists(runId) AND #rank < :terminal"
        if require_no_task:
            names["#task"] = "taskArn"
            condition += " AND attribute_not_exists(#task)"
        elif task_arn:
            names["#task"] = "taskArn"
            values[":task"] = {"S": task_arn}
            condition += " AND (attribute_not_exists(#task) OR #task = :task)"
        run_update: dict[str, Any] = {
            "TableName": self._runs,
            "Key": {"runId": {"S": run["runId"]}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        # One update of the month item: a transaction may touch an item only once.
        refund = self._month_update(run, spent, refund=True)
        stored = self._stored(run)
        items: list[Any] = [
            {"Update": run_update},
            {"Update": refund},
            *self._settlements(stored, refund=True),
        ]
        if audit is not None:
            items.extend(self._audit_items(audit.with_details(refunded=True)))
        cancelled = transact(self._client, items)
        if cancelled is None:
            return True
        if cancelled.failed(0):
            return False
        if cancelled.failed(1):
            month = self._month_update(run, spent, refund=False) if spent is not None else None
            return self._finish_without_refund(run_update, stored, audit, month)
        raise cancelled.error

    def _finish_without_refund(
        self,
        run_update: dict[str, Any],
        stored: dict[str, Any],
        audit: AuditEvent | None,
        month: dict[str, Any] | None,
    ) -> bool:
        # Same update, but it records that nothing was given back; the slot still is.
        names = run_update["ExpressionAttributeNames"]
        values = dict(run_update["ExpressionAttributeValues"])
        for alias, name in names.items():
            if name == "refunded":
                values[":" + alias[1:]] = {"BOOL": False}
        run_update = {**run_update, "ExpressionAttributeValues": values}
        items: list[Any] = [{"Update": run_update}, *self._settlements(stored, refund=False)]
        if month is not None:
            items.append({"Update": month})
        if audit is not None:
            items.extend(self._audit_items(audit.with_details(refunded=False)))
        if len(items) > 1:
            cancelled = transact(self._client, items)
            if cancelled is None:
                return True
            if cancelled.failed(0):
                return False
            raise cancelled.error
        from botocore.exceptions import ClientError

        try:
            self._client.update_item(**run_update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


def free_tier_paused(now: datetime, *, paused_at: Any = None) -> FreeTierPaused:
    """The refusal of a platform test while the free tier is paused or the platform's
    free tests of the month are spent: both last until the month turns (or the owner
    resumes a pause)."""
    reset = timeutil.next_month_start(now)
    why = (
        "the platform's free tier is paused: this month's AWS budget is spent"
        if paused_at
        else "the platform's free tests for this month are all used"
    )
    return FreeTierPaused(
        f"{why}; no test was charged; free tests resume at {timeutil.iso(reset)} at the latest",
        headers={"Retry-After": str(max(1, int((reset - now).total_seconds())))},
    )


def _platform_key(period: str) -> dict[str, Any]:
    return {"userId": {"S": PLATFORM_USER}, "period": {"S": period}}


def rate_limited(limits: Limits, now: datetime) -> RateLimited:
    window_end = timeutil.next_minute_start(now)
    return RateLimited(
        f"at most {limits.launches_per_minute} launches per minute; "
        f"try again at {timeutil.iso(window_end)}",
        headers={"Retry-After": str(max(1, int((window_end - now).total_seconds())))},
    )


def launch_conflict() -> LaunchConflict:
    return LaunchConflict(
        "another launch of yours is being recorded at this moment; retry",
        headers={"Retry-After": "1"},
    )
