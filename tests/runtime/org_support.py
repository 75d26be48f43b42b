"""Organisation test helpers: users of three roles and an outsider, acting over the API."""

from __future__ import annotations

from typing import Any

from tests.runtime.support import OTHER_USER, USER, Answer, ApiCall

ADMIN = USER
DEV = "6f1d2c3b-0000-4000-8000-0000000000de"
VIEWER = "6f1d2c3b-0000-4000-8000-0000000000e1"
OUTSIDER = OTHER_USER
EMAILS = {
    ADMIN: "ada@example.com",
    DEV: "dev@example.com",
    VIEWER: "vic@example.com",
    OUTSIDER: "out@example.org",
}


def as_user(api: ApiCall, user: str) -> ApiCall:
    def call(method: str, path: str, **kwargs: Any) -> Answer:
        return api(method, path, user=user, email=EMAILS[user], **kwargs)

    return call


def found(api: ApiCall, user: str = ADMIN, name: str = "Acme") -> dict[str, Any]:
    answer = as_user(api, user)("POST", "/org", body={"name": name})
    assert answer.status == 201, answer.body
    return dict(answer.body)


def invite(api: ApiCall, user: str, role: str, by: str = ADMIN) -> str:
    answer = as_user(api, by)(
        "POST", "/org/invitations", body={"email": EMAILS[user], "role": role}
    )
    assert answer.status == 201, answer.body
    return str(answer.body["invitationId"])


def join(api: ApiCall, user: str, role: str, by: str = ADMIN) -> None:
    invitation = invite(api, user, role, by)
    answer = as_user(api, user)("POST", f"/org/invitations/{invitation}/accept")
    assert answer.status == 200, answer.body
    assert answer.body["role"] == role
