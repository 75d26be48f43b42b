"""The local HTTP server answers like API Gateway wherever a client can tell.

The real server (gateway.serve) on a free port, in front of a function that echoes the
payload v2 event it is given, so each test sees both what the client gets and what the
function would have received.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_mode.bench import burst, keep_alive_and_new_connections
from local_mode.gateway import (
    API_HANDLER,
    ApiDefinition,
    Cors,
    Gateway,
    LocalServices,
    Route,
)
from local_mode.harness import free_port
from local_mode.http_server import serve
from local_mode.jwt_check import Authorizer, JwtVerifier

pytestmark = pytest.mark.local_mode

ROUTES = [
    Route("GET", "/me", authorized=False),
    Route("GET", "/agents/{agentId}", authorized=False),
    Route("DELETE", "/agents/{agentId}", authorized=False),
    Route("POST", "/agents", authorized=False),
    Route("GET", "/runs/{runId}/logs", authorized=False),
]


def echo(handler: str, event: dict[str, Any]) -> dict[str, Any]:
    assert handler == API_HANDLER
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "routeKey": event["routeKey"],
                "rawPath": event["rawPath"],
                "path": event["requestContext"]["http"]["path"],
                "pathParameters": event.get("pathParameters"),
                "body": event.get("body"),
            }
        ),
    }


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    gateway = Gateway(
        ApiDefinition(routes=ROUTES, cors=Cors(), api_id="local", account_id="123456789012"),
        # Never asked: the routes here need no token.
        JwtVerifier(Authorizer("https://issuer", ("client",), "authorization"), "http://unused"),
        echo,
        LocalServices(
            sign_in=lambda email: {},
            openapi_path=Path("/nonexistent"),
            deliver_sns=lambda topic, message: None,
            info=dict,
        ),
    )
    gateway.ready.set()
    port = free_port()
    httpd = serve(gateway, port)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", port
    httpd.shutdown()
    httpd.server_close()


def raw_exchange(server: tuple[str, int], request: bytes, timeout: float = 5) -> bytes:
    """Send `request` as is; everything the server answers until it closes or goes quiet."""
    with socket.create_connection(server, timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body) if body else None


def get(server: tuple[str, int], method: str, path: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(*server, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        connection.close()


# ---- connections -------------------------------------------------------------------------


def test_a_burst_of_50_concurrent_requests_gets_no_connection_reset(
    server: tuple[str, int],
) -> None:
    # socketserver's listen backlog of 5 turned such a burst into resets and timeouts.
    assert burst(server, "/me", 50) == Counter({"200": 50})


def test_a_keep_alive_connection_does_not_stall_and_is_no_slower_than_new_connections(
    server: tuple[str, int],
) -> None:
    keep_alive_and_new_connections(server, "/me", 4, rounds=2)  # warm-up
    rounds = keep_alive_and_new_connections(server, "/me", 40, rounds=4)
    kept = [latency for round_kept, _ in rounds for latency in round_kept]
    fresh = [latency for _, round_fresh in rounds for latency in round_fresh]
    assert len(kept) == len(fresh) == 40
    # The stall was Nagle's algorithm against delayed ACKs: ~40 ms on every request.
    assert statistics.median(kept) < 0.015, f"median {statistics.median(kept) * 1000:.1f} ms"
    assert sum(kept) <= sum(fresh) * 1.1, (sum(kept), sum(fresh))


# ---- framing -------------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["abc", "-1", "1.5", "9" * 30])
def test_an_invalid_content_length_gets_400_json_and_the_connection_closes(
    server: tuple[str, int], length: str
) -> None:
    raw = raw_exchange(
        server,
        f"POST /agents HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode(),
        timeout=3,
    )
    status, headers, body = parse(raw)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body == {"message": "Bad Request"}


def test_two_different_content_lengths_get_400(server: tuple[str, int]) -> None:
    raw = raw_exchange(
        server,
        b"POST /agents HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        timeout=3,
    )
    assert parse(raw)[0] == 400


def test_a_chunked_body_reaches_the_function_whole(server: tuple[str, int]) -> None:
    raw = raw_exchange(
        server,
        b"POST /agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b'5\r\n{"a":\r\n3;ext=1\r\n 1}\r\n0\r\n\r\n',
    )
    status, _, body = parse(raw)
    assert status == 200
    assert body["body"] == '{"a": 1}'


def test_a_malformed_chunked_body_gets_400(server: tuple[str, int]) -> None:
    raw = raw_exchange(
        server,
        b"POST /agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n",
        timeout=3,
    )
    status, headers, body = parse(raw)
    assert (status, body) == (400, {"message": "Bad Request"})
    assert headers["connection"] == "close"


def test_a_malformed_request_line_gets_json_not_an_html_page(server: tuple[str, int]) -> None:
    status, headers, body = parse(raw_exchange(server, b"GET\r\n\r\n", timeout=3))
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert body == {"message": "Bad Request"}


# ---- methods and paths ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_methods_no_route_has_get_api_gateways_404_json(
    server: tuple[str, int], method: str
) -> None:
    raw = raw_exchange(
        server, f"{method} /me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    status, headers, body = parse(raw)
    assert (status, body) == (404, {"message": "Not Found"})
    assert headers["content-type"] == "application/json"


def test_percent_encoded_segments_are_decoded_before_routing(server: tuple[str, int]) -> None:
    status, event = get(server, "GET", "/agents/abc%2Ddef")
    assert status == 200
    assert event["routeKey"] == "GET /agents/{agentId}"
    assert event["pathParameters"] == {"agentId": "abc-def"}
    # API Gateway HTTP APIs hand the function the decoded path, in rawPath too.
    assert event["rawPath"] == event["path"] == "/agents/abc-def"
    status, event = get(server, "GET", "/%6De")
    assert (status, event["routeKey"]) == (200, "GET /me")
    status, event = get(server, "GET", "/agents/caf%C3%A9%20au%20lait")
    assert event["pathParameters"] == {"agentId": "café au lait"}


def test_a_path_is_decoded_once_only(server: tuple[str, int]) -> None:
    status, event = get(server, "GET", "/agents/100%2525")
    assert (status, event["pathParameters"]) == (200, {"agentId": "100%25"})


def test_an_encoded_slash_separates_segments_as_in_api_gateway(server: tuple[str, int]) -> None:
    assert get(server, "GET", "/runs/r%2F1/logs") == (404, {"message": "Not Found"})
    status, event = get(server, "GET", "/agents/a%2F")
    assert (status, event) == (404, {"message": "Not Found"})


@pytest.mark.parametrize("path", ["//me", "///me", "/me/", "/me//", "//agents/a1"])
def test_empty_segments_are_other_paths(server: tuple[str, int], path: str) -> None:
    assert get(server, "GET", path) == (404, {"message": "Not Found"})


def test_the_query_string_stays_out_of_the_path(server: tuple[str, int]) -> None:
    status, event = get(server, "GET", "/agents/a1?x=%2F&y")
    assert (status, event["rawPath"], event["pathParameters"]) == (
        200,
        "/agents/a1",
        {"agentId": "a1"},
    )
