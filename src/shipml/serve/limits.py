"""Request limits: the body size (413), compressed bodies (413 once inflated past the limit),
header size (431) and the per-key rate (429, see ratelimit.py)."""

import json

from starlette.exceptions import HTTPException

from shipml.data.inflate import InflateLimit, Inflater
from shipml.errors import DataError, TooMany

__all__ = ["BodyLimit", "HeaderLimit", "TooMany", "MAX_HEADER_BYTES", "MAX_HEADERS_BYTES"]

MAX_HEADER_BYTES = 16 * 1024  # one header line (name + value)
MAX_HEADERS_BYTES = 64 * 1024  # all of a request's headers and its URL
_ENCODED = (b"gzip", b"x-gzip", b"deflate")


class BodyLimit:
    """ASGI middleware: 413 for bodies over `max_bytes`, by header or while streaming.

    A body with `Content-Encoding: gzip` (or deflate) is inflated here, chunk by chunk, within
    the same `max_bytes` and the ratio cap of data/inflate.py; the app sees the plain body."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _reject(send, 413, f"request body over the {self.max_bytes:,}-byte limit")
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding in _ENCODED:
            scope = _plain_scope(scope)
            receive = _inflating(receive, Inflater("the request body", limit=self.max_bytes))
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _Refused(413, f"request body over the {self.max_bytes:,}-byte limit")
            return message

        started = False

        async def sending(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except _Refused as refused:
            if started:  # too late for another answer: let the server drop the connection
                raise
            await _reject(send, refused.status, refused.message)


class HeaderLimit:
    """ASGI middleware: 431 when one header or all of them (with the URL) pass the limits.

    `shipml serve` also refuses them while they arrive (serve/http.py), before they are
    buffered; this covers any other ASGI server the app runs under."""

    def __init__(self, app, max_header: int = MAX_HEADER_BYTES,
                 max_total: int = MAX_HEADERS_BYTES) -> None:  # fmt: skip
        self.app, self.max_header, self.max_total = app, max_header, max_total

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            message = headers_problem(scope, self.max_header, self.max_total)
            if message:
                return await _reject(send, 431, message)
        return await self.app(scope, receive, send)


def headers_problem(scope, max_header: int, max_total: int) -> str | None:
    """Why the request's headers are too large, or None."""
    total = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    for name, value in scope.get("headers") or []:
        size = len(name) + len(value) + 4
        if size > max_header:
            return (f"request header {_header_name(name)} is {size:,} bytes; "
                    f"the limit is {max_header:,}")  # fmt: skip
        total += size
    if total > max_total:
        return f"request headers are {total:,} bytes in all; the limit is {max_total:,}"
    return None


def _header_name(name: bytes) -> str:
    from shipml.echo import echo

    return echo(name.decode("latin-1"), 60)


def _plain_scope(scope) -> dict:
    """The scope without Content-Encoding and Content-Length: the app gets the inflated body."""
    drop = (b"content-encoding", b"content-length")
    return {**scope, "headers": [(k, v) for k, v in scope["headers"] if k not in drop]}


def _inflating(receive, inflater: Inflater):
    async def inflated():
        message = await receive()
        if message["type"] != "http.request":
            return message
        try:
            body = inflater.feed(message.get("body", b""))
            if not message.get("more_body", False):
                inflater.finish()
        except InflateLimit as exc:
            raise _Refused(413, str(exc)) from None
        except DataError as exc:
            raise _Refused(400, str(exc)) from None
        return {**message, "body": body}

    return inflated


class _Refused(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it on as it is (it turns other
    errors raised while reading the body into a 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status, self.message = status, message


async def _reject(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
