"""Local mode's web console at /: the files of web/, config.json, gzip, security headers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from local_mode.console import WEB, Console, accepts_gzip, local_config
from local_mode.gateway import Request

pytestmark = pytest.mark.local_mode

ENVIRONMENT = {
    "ALLOWED_MODELS": "amazon.nova-micro-v1:0,amazon.nova-lite-v1:0",
    "MAX_OUTPUT_TOKENS": "512",
}


def get(console: Console, path: str, encoding: str = "", method: str = "GET") -> object:
    headers = {"accept-encoding": encoding} if encoding else {}
    return console.answer(Request(method, path, path, "", headers, b"", "127.0.0.1"))


@pytest.fixture
def console() -> Console:
    return Console(lambda: local_config(ENVIRONMENT, "us-east-1"))


def test_the_root_is_the_console_page_with_its_security_headers(console: Console) -> None:
    answer = get(console, "/")
    assert answer is not None
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.body == (WEB / "index.html").read_bytes()
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_modules_are_gzipped_when_the_browser_asks(console: Console) -> None:
    plain = get(console, "/js/api.js")
    packed = get(console, "/js/api.js", "gzip, deflate, br")
    assert plain is not None and packed is not None
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-type"].startswith("text/javascript")
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "accept-encoding"
    assert gzip.decompress(packed.body) == plain.body == (WEB / "js" / "api.js").read_bytes()
    assert len(packed.body) < len(plain.body) / 2


def test_gzip_refused_with_q_zero_is_not_sent() -> None:
    assert accepts_gzip("gzip")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("br, deflate")
    assert not accepts_gzip("")


def test_config_json_says_local_sign_in_and_the_allowed_models(console: Console) -> None:
    answer = get(console, "/config.json")
    assert answer is not None
    config = json.loads(answer.body)
    assert config == {
        "mode": "local",
        "apiUrl": "",
        "region": "us-east-1",
        "allowedModels": ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"],
        "maxOutputTokens": 512,
    }
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    ["/me", "/agents", "/agents/abc", "/js/missing.js", "/../cdk.json", "/js/../../cdk.json"],
)
def test_api_routes_missing_files_and_escapes_are_left_to_the_api(
    console: Console, path: str
) -> None:
    assert get(console, path) is None


def test_only_get_and_head_are_the_consoles(console: Console) -> None:
    assert get(console, "/", method="POST") is None
    assert get(console, "/", method="HEAD") is not None


def test_every_file_of_web_is_served(console: Console) -> None:
    for file in WEB.rglob("*"):
        if file.is_file():
            path = "/" + file.relative_to(WEB).as_posix()
            answer = get(console, path)
            assert answer is not None and answer.body == Path(file).read_bytes(), path
