"""AWS event-stream framing (application/vnd.amazon.eventstream), as Bedrock's streaming endpoints send it.

A message is: total length and headers length (big-endian uint32), the CRC32 of those 8 bytes, the headers,
the payload, and the CRC32 of everything before it. Only string-valued headers (type 7) are needed here.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib

__all__ = ["chunk", "exception", "message"]

_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = _PRELUDE.size + _CRC.size + len(encoded) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(encoded))
    body = prelude + _CRC.pack(zlib.crc32(prelude)) + encoded + payload
    return body + _CRC.pack(zlib.crc32(body))


def chunk(event: bytes) -> bytes:
    """A Bedrock `chunk` event carrying one provider event (JSON bytes), base64-encoded as Bedrock does."""
    payload = json.dumps({"bytes": base64.b64encode(event).decode()}).encode()
    return message({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)


def exception(exception_type: str, text: str) -> bytes:
    """A Bedrock in-stream exception, e.g. `modelStreamErrorException`."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return message(headers, json.dumps({"message": text}).encode())


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value
