"""AWS event-stream framing, for the stand-ins of streaming APIs (Bedrock's ConverseStream).

The binary format botocore decodes (application/vnd.amazon.eventstream): each message is
a prelude (total length, headers length, CRC32 of both), headers, a payload, and a CRC32
of everything before it. Headers here are strings (type 7), which is all an event or an
exception message needs. Written to the specification; the tests decode it with
botocore's own parser, so a framing error fails them.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def _headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: Mapping[str, str], payload: bytes) -> bytes:
    encoded = _headers(headers)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    return message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload).encode(),
    )


def exception(exception_type: str, text: str) -> bytes:
    return message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": text}).encode(),
    )


def converse_stream(
    chunks: Iterable[str], *, stop_reason: str, input_tokens: int, output_tokens: int
) -> bytes:
    """The events Bedrock sends for one text answer, in its order."""
    body = event("messageStart", {"role": "assistant"})
    for chunk in chunks:
        body += event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": chunk}})
    body += event("contentBlockStop", {"contentBlockIndex": 0})
    body += event("messageStop", {"stopReason": stop_reason})
    usage = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + output_tokens,
    }
    return body + event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}})
