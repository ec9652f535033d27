"""Request limits: the body size (413) and the per-key rate (429, see ratelimit.py)."""

import json

__all__ = ["BodyLimit", "TooMany"]


class TooMany(Exception):
    """Rate limit hit; args[0] = seconds until the key's next token."""


class BodyLimit:
    """ASGI middleware: 413 for bodies over `max_bytes`, by header or while streaming."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _reject(send, self.max_bytes)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _reject(send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _reject(send, limit: int) -> None:
    body = json.dumps({"error": f"request body over the {limit:,}-byte limit"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
