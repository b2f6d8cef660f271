"""HTTP/1.1 messages for the watchdog's tiny server (_http.py): the request and response objects, reading one
request from bytes (strictly: sizes capped, no chunked uploads), rendering one response."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_HEADER_BYTES = 8 * 1024  # request line + headers
MAX_BODY_BYTES = 16 * 1024
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
REASONS = {
    200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 411: "Length Required",
    413: "Content Too Large", 414: "URI Too Long", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}  # fmt: skip


class HttpError(ValueError):
    """A request the server refuses; `status` is the HTTP status code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request:
    """One parsed request (header names lower-case)."""

    __slots__ = ("body", "client", "headers", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes = b"",
        client: str = "",
    ) -> None:
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body
        self.client = client


class Response:
    """What an app answers; `headers` are extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.headers: dict[str, str] = {} if headers is None else headers


def _read_line(rfile: Any, budget: int) -> bytes:
    line: bytes = rfile.readline(budget + 1)
    if len(line) > budget:
        raise HttpError(431, "request line and headers are too large")
    return line


def read_request(
    rfile: Any, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
) -> Request:
    """Parse one request from a binary file; raises HttpError for anything malformed or too large, EOFError when
    the client sent nothing."""
    budget = max_header_bytes
    line = _read_line(rfile, budget)
    if not line:
        raise EOFError("connection closed before a request")
    budget -= len(line)
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]):
        raise HttpError(400, "malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, f"unsupported protocol {version[:20]!r}")
    if not target.startswith("/"):
        raise HttpError(400, "the request target must be a path")
    headers: dict[str, str] = {}
    while True:
        line = _read_line(rfile, budget)
        budget -= len(line)
        if not line:
            raise HttpError(400, "headers ended early")
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.rstrip(b"\r\n").partition(b":")
        if not sep or not _TOKEN.match(name):  # also refuses obsolete line folding (leading whitespace)
            raise HttpError(400, "malformed header line")
        key = name.decode("latin-1").lower()
        if key in headers and key in ("host", "content-length", "authorization", "transfer-encoding"):
            raise HttpError(400, f"duplicate {key} header")
        text = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    if "transfer-encoding" in headers:
        raise HttpError(411, "Transfer-Encoding is not accepted; send a Content-Length")
    body = b""
    raw_length = headers.get("content-length")
    if raw_length is not None:
        if not raw_length.isdigit() or not raw_length.isascii():
            raise HttpError(400, "invalid Content-Length")
        length = int(raw_length)
        if length > max_body_bytes:
            raise HttpError(413, f"body larger than {max_body_bytes} bytes")
        body = rfile.read(length)
        if len(body) != length:
            raise HttpError(400, "body shorter than its Content-Length")
    split = urlsplit(target)
    try:
        query = dict(parse_qsl(split.query, keep_blank_values=True, strict_parsing=False, max_num_fields=20))
    except ValueError as exc:
        raise HttpError(400, "too many query parameters") from exc
    return Request(method=method, path=unquote(split.path), query=query, headers=headers, body=body)


def render_response(response: Response, *, head_only: bool = False) -> bytes:
    """The bytes of `response`, always with Content-Length and `Connection: close`."""
    reason = REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: close",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "X-Frame-Options: DENY",
        "Referrer-Policy: no-referrer",
    ]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


def error_response(status: int, message: str) -> Response:
    """A small JSON error body: {"error": message}."""
    return Response(status, json.dumps({"error": message}).encode())


def request_size(data: bytes | bytearray, max_header_bytes: int, max_body_bytes: int) -> int | None:
    """How many bytes of `data` make one whole request, or None while more must be read. A head that
    `read_request` will refuse (too large; a bad, repeated or too large Content-Length; chunked) is whole at once."""
    ends = [(i, i + n) for i, n in ((data.find(b"\n\r\n"), 3), (data.find(b"\n\n"), 2)) if i >= 0]
    if not ends:
        return len(data) if len(data) > max_header_bytes else None
    head = min(ends)[1]
    lines = bytes(data[:head]).lower().split(b"\n")
    lengths = [line[15:].strip() for line in lines if line.startswith(b"content-length:")]
    chunked = any(line.startswith(b"transfer-encoding:") for line in lines)
    if head > max_header_bytes or chunked or len(lengths) != 1 or not lengths[0].isdigit():
        return head
    length = int(lengths[0])
    if length > max_body_bytes:
        return head
    return head + length if len(data) >= head + length else None
