"""GET /me: the profile is created on first call, and usage is reported."""

from __future__ import annotations

from tests.runtime.support import OTHER_USER, TESTS_PER_MONTH, USER, ApiCall, Platform


def test_first_call_creates_a_freemium_profile(api: ApiCall, platform: Platform) -> None:
    answer = api("GET", "/me")

    assert answer.status == 200
    assert answer.body["userId"] == USER
    assert answer.body["tier"] == "freemium"
    assert answer.body["email"] == "ada@example.com"
    assert answer.body["usage"]["testsUsed"] == 0
    assert answer.body["usage"]["testsLimit"] == TESTS_PER_MONTH
    [profile] = platform.table_items("PROFILES_TABLE")
    assert profile["userId"] == USER and profile["tier"] == "freemium"


def test_repeated_calls_keep_the_first_creation_time_and_tier(
    api: ApiCall, platform: Platform
) -> None:
    api("GET", "/me")
    [first] = platform.table_items("PROFILES_TABLE")
    platform.client("dynamodb").update_item(
        TableName=platform.env["PROFILES_TABLE"],
        Key={"userId": {"S": USER}},
        UpdateExpression="SET tier = :t",
        ExpressionAttributeValues={":t": {"S": "personal"}},
    )

    answer = api("GET", "/me")

    [second] = platform.table_items("PROFILES_TABLE")
    assert second["createdAt"] == first["createdAt"]
    assert answer.body["tier"] == "personal"  # an upgrade is never reset to freemium


def test_each_user_sees_only_their_own_profile(api: ApiCall, platform: Platform) -> None:
    api("GET", "/me")
    answer = api("GET", "/me", user=OTHER_USER, email=None)

    assert answer.body["userId"] == OTHER_USER
    assert answer.body["email"] is None
    assert len(platform.table_items("PROFILES_TABLE")) == 2


def test_request_without_a_jwt_subject_is_401_and_writes_nothing(
    api: ApiCall, platform: Platform
) -> None:
    answer = api("GET", "/me", user=None)

    assert answer.status == 401
    assert answer.error_code == "UNAUTHENTICATED"
    assert platform.table_items("PROFILES_TABLE") == []


def test_unknown_route_answers_404_with_the_error_shape(api: ApiCall) -> None:
    answer = api("GET", "/nothing-here")

    assert answer.status == 404
    assert answer.body == {"error": {"code": "NOT_FOUND", "message": "no such route"}}
