"""The HTTP/1.1 protocol `shipml serve` runs: uvicorn's httptools protocol with a header limit.

httptools buffers headers without any limit (32 MB of them were accepted), and an ASGI
middleware only sees them once they are complete. This protocol counts the bytes of the request
line and headers as they arrive and answers 431 `{"error": ...}` as soon as one header passes
MAX_HEADER_BYTES or all of them pass MAX_HEADERS_BYTES (serve/limits.py), then closes the
connection. Without httptools, uvicorn's h11 protocol is used with the same total limit (h11
answers 400 there).
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shipml.serve.limits import MAX_HEADER_BYTES, MAX_HEADERS_BYTES

__all__ = ["LimitedHttpTools"]

_LINGER_S = 1.0  # read and drop what the client still sends, so it gets the 431 (not a reset)


class _HeadersTooLarge(Exception):
    pass


class LimitedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that refuses oversized request headers with 431 while they arrive."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0
        self._refused: str | None = None

    # -- counting ------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 4
        if size > MAX_HEADER_BYTES:
            self._refuse(f"a request header is {size:,} bytes; the limit is {MAX_HEADER_BYTES:,}")
        self._count(size)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return  # lingering: dropped
        super().data_received(data)
        if self._in_head and self._refused is None:  # one header still arriving, piece by piece
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADERS_BYTES:
                self._answer_431(self._total_message())

    def send_400_response(self, msg: str) -> None:
        if self._refused is not None:  # the parser stopped because _refuse raised
            return self._answer_431(self._refused)
        return super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEADERS_BYTES:
            self._refuse(self._total_message())

    def _total_message(self) -> str:
        return f"request headers pass the limit of {MAX_HEADERS_BYTES:,} bytes in all"

    def _refuse(self, message: str) -> None:
        self._refused = message
        raise _HeadersTooLarge(message)  # httptools stops; uvicorn calls send_400_response

    # -- answering -----------------------------------------------------------------------------
    def _answer_431(self, message: str) -> None:
        self._refused = message
        if self.transport.is_closing():
            return
        body = json.dumps({"error": message}).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_S, self.transport.close)
        else:
            self.transport.close()
