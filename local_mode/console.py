"""The web console at `/`: the files of web/ and a config.json for local mode.

What CloudFront does for the deployed console, as far as a browser can tell: the files
with their content types, gzip when the browser accepts it, the same security headers
(a CSP allowing only this origin: the API is the same origin here), and a config.json
written for this platform (the stacks write the deployed one) that says "sign in
through /_local/sign-in".
"""

from __future__ import annotations

import gzip
import json
import mimetypes
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from local_mode.assembly import ROOT
from local_mode.gateway import Answer, Request

WEB = ROOT / "web"
# Same directives as the distribution's response headers policy (constructs/web_console.py),
# with connect-src narrowed to this origin: the API is served from it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
COMPRESSIBLE = (".html", ".js", ".css", ".json", ".svg")
MIN_GZIP_BYTES = 256


class Console:
    """Answers GET/HEAD for the console's paths; None for everything else (the API's)."""

    def __init__(self, config: Callable[[], dict[str, Any]], root: Path = WEB) -> None:
        self.root = root.resolve()
        self.config = config

    def answer(self, request: Request) -> Answer | None:
        if request.method not in ("GET", "HEAD"):
            return None
        path = request.path
        if path == "/config.json":
            body = json.dumps(self.config()).encode()
            return self._answer(request, "/config.json", body, cache="no-store")
        if path in ("/", "/index.html"):
            file = self.root / "index.html"
        elif path.endswith(tuple(TYPES)) and ".." not in path and path.startswith("/"):
            file = (self.root / path.lstrip("/")).resolve()
            if not file.is_relative_to(self.root):
                return None
        else:
            return None
        if not file.is_file():
            return None  # the API's 404 {"message": "Not Found"}
        return self._answer(request, str(file), file.read_bytes(), cache="no-cache")

    def _answer(self, request: Request, name: str, body: bytes, *, cache: str) -> Answer:
        suffix = Path(name).suffix
        headers = {
            "content-type": TYPES.get(suffix)
            or mimetypes.guess_type(name)[0]
            or "application/octet-stream",
            "cache-control": cache,
            **SECURITY_HEADERS,
        }
        if suffix in COMPRESSIBLE:
            headers["vary"] = "accept-encoding"
            if len(body) >= MIN_GZIP_BYTES and accepts_gzip(
                request.headers.get("accept-encoding", "")
            ):
                body = gzip.compress(body, compresslevel=9, mtime=0)
                headers["content-encoding"] = "gzip"
        return Answer(HTTPStatus.OK, headers, body)


def accepts_gzip(header: str) -> bool:
    """`gzip` in Accept-Encoding with a non-zero q (RFC 9110 §12.5.3)."""
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip().startswith("q=") or float(q) > 0
            except ValueError:
                return False
    return False


def local_config(environment: dict[str, str], region: str) -> dict[str, Any]:
    """config.json for local mode: the API on this origin, sign-in through /_local/."""
    models = [m for m in environment.get("ALLOWED_MODELS", "").split(",") if m]
    return {
        "mode": "local",
        "apiUrl": "",
        "region": region,
        "allowedModels": models,
        "maxOutputTokens": int(environment.get("MAX_OUTPUT_TOKENS") or 1024),
    }
