"""The HTTP/1.1 server in front of the gateway, behaving like API Gateway's endpoint where
a client can tell.

Python's http.server gets several things wrong for that, each fixed here:
- a listen backlog of 5 (socketserver's default): a burst of connections got resets;
- a response written in pieces (status and headers, then the body) on a socket with
  Nagle's algorithm on: on a keep-alive connection each answer waited ~40 ms for the
  client's delayed ACK. Here every response is one write, and TCP_NODELAY is set;
- `Content-Length: abc` raised (the connection dropped without an answer) and
  `Content-Length: -1` read until the client gave up; chunked bodies were not read;
- methods without a `do_<METHOD>` got a 501 HTML page, malformed requests a 400 one;
- `//me` was quietly rewritten to `/me` (http.server's open-redirect guard) and the
  path was routed still percent-encoded.
API Gateway answers every one of those with JSON `{"message": ...}` (404 for a method or
path no route has, 400 for a request it cannot frame, 413 over its 10 MB payload limit),
decodes the path before routing, and routes `//me` nowhere.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from local_mode.console import Console
from local_mode.gateway import MAX_BODY_BYTES, Answer, Gateway, Request

# The kernel caps it (net.core.somaxconn); anything near it absorbs a browser's or a load
# test's burst while the accept loop catches up.
LISTEN_BACKLOG = 1024
MAX_LINE = 65536
CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")

log = logging.getLogger("local_mode.gateway")


class BadFraming(Exception):
    """The request's body cannot be delimited: answer `status` and close the connection."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # StreamRequestHandler sets TCP_NODELAY
    gateway: Gateway  # set on the subclass serve() makes
    console: Console | None = None  # the web console at / (console.py), when served

    def handle_one_request(self) -> None:
        """BaseHTTPRequestHandler's, except that every method reaches the gateway (which
        answers 404 where no route has it), not only those with a do_<METHOD>."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
            if len(self.raw_requestline) > MAX_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # it has answered (send_error, below)
                return
            self._handle()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def _handle(self) -> None:
        started = time.perf_counter()
        # The request target as sent: parse_request has collapsed a leading "//" in
        # self.path, and a path must be routed as API Gateway routes it.
        target = self.requestline.split()[1]
        if target.startswith("/"):
            raw_path, _, query = target.partition("?")
        elif "://" in target:  # absolute form, as sent to a proxy
            split = urlsplit(target)
            raw_path, query = split.path or "/", split.query
        else:  # "*" and the like: no route can have it
            raw_path, query = target, ""
        try:
            body = self._read_body()
        except BadFraming as exc:
            self.close_connection = True
            self._write(Answer.message(exc.status, exc.status.phrase))
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        request = Request(
            method=self.command,
            path=unquote(raw_path),  # API Gateway decodes the path, then routes it
            raw_path=raw_path,
            query=query,
            headers=headers,
            body=body,
            source_ip=self.client_address[0],
        )
        try:
            if raw_path.startswith("/_local/"):
                answer = self.gateway.handle_local(request)
            elif self.console is not None and (page := self.console.answer(request)):
                answer = page
            else:
                answer = self.gateway.handle_api(request)
        except Exception:
            log.exception("local gateway error")
            answer = Answer.message(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        self._write(answer)
        if not raw_path.startswith("/_local/bedrock"):
            log.info(
                "%s %s -> %s (%.0f ms)",
                self.command,
                raw_path,
                answer.status,
                (time.perf_counter() - started) * 1000,
            )

    # ---- the request body ------------------------------------------------------------

    def _read_body(self) -> bytes:
        codings = [
            coding.strip().lower()
            for value in self.headers.get_all("transfer-encoding") or []
            for coding in value.split(",")
            if coding.strip()
        ]
        lengths = {
            value.strip()
            for header in self.headers.get_all("content-length") or []
            for value in header.split(",")
        }
        if codings:
            # Both, or a coding that is not chunked last, cannot be framed safely.
            if lengths or codings[-1] != "chunked":
                raise BadFraming(HTTPStatus.BAD_REQUEST)
            return self._read_chunked()
        if not lengths:
            return b""
        if len(lengths) != 1 or not CONTENT_LENGTH.fullmatch(next(iter(lengths))):
            raise BadFraming(HTTPStatus.BAD_REQUEST)
        length = int(lengths.pop())
        if length > MAX_BODY_BYTES:
            raise BadFraming(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:  # the client closed before sending it all
            raise BadFraming(HTTPStatus.BAD_REQUEST)
        return body

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            size = line.split(b";", 1)[0].strip()
            if len(line) > MAX_LINE or not CHUNK_SIZE.fullmatch(size):
                raise BadFraming(HTTPStatus.BAD_REQUEST)
            length = int(size, 16)
            if length == 0:
                break
            if len(body) + length > MAX_BODY_BYTES:
                raise BadFraming(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            chunk = self.rfile.read(length)
            if len(chunk) != length or self.rfile.read(2) != b"\r\n":
                raise BadFraming(HTTPStatus.BAD_REQUEST)
            body += chunk
        while True:  # trailer fields, up to the empty line
            line = self.rfile.readline(MAX_LINE + 1)
            if not line or len(line) > MAX_LINE:
                raise BadFraming(HTTPStatus.BAD_REQUEST)
            if line in (b"\r\n", b"\n"):
                return bytes(body)

    # ---- the response ---------------------------------------------------------------

    def _write(self, answer: Answer) -> None:
        """The whole response in one write: status line, headers and body together."""
        try:
            phrase = HTTPStatus(answer.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"{self.protocol_version} {answer.status} {phrase}",
            f"date: {self.date_time_string()}",
        ]
        headers = {**answer.headers, "content-length": str(len(answer.body))}
        if self.close_connection:
            headers["connection"] = "close"
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"set-cookie: {cookie}" for cookie in answer.cookies]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
        self.wfile.write(head if self.command == "HEAD" else head + answer.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server itself refuses (a malformed request line, oversized headers):
        API Gateway's JSON, not an HTML page, and the connection closed."""
        status = HTTPStatus(code)
        self.close_connection = True
        self._write(Answer.message(status, status.phrase))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # _handle logs one line per request


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            # A client that goes away mid-answer is no server error.
            log.debug("connection from %s ended early", client_address)
        else:
            log.exception("connection from %s failed", client_address)


def serve(gateway: Gateway, port: int, console: Console | None = None) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:`port` for `gateway`, and `console` at / (call serve_forever
    in a thread)."""
    handler = type("GatewayHandler", (_Handler,), {"gateway": gateway, "console": console})
    return _Server(("127.0.0.1", port), handler)
