"""Bounded decompression: the one place shipml inflates gzip/zlib data it was sent.

A 1 MB gzip body can hold 1 GiB of zeros. Inflating it whole costs seconds and gigabytes, so
every body or upload goes through :class:`Inflater`, which inflates in steps of at most the
room left and stops as soon as the output passes either cap:

- ``limit``: the largest inflated size (the server passes its ``--max-body-mb``), and
- ``ratio``: the inflated size may not pass ``RATIO`` x the compressed size once it is over
  ``RATIO_FLOOR`` (real tables and JSON compress 3-20x; small, very repetitive bodies under the
  floor are never refused for their ratio).

Passing a cap raises :class:`InflateLimit` (HTTP 413); bad data raises a DataError (400).
"""

from __future__ import annotations

import zlib

from shipml.errors import DataError, InflateLimit

__all__ = ["Inflater", "InflateLimit", "inflate", "is_gzip", "RATIO", "RATIO_FLOOR"]

RATIO = 100
RATIO_FLOOR = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_AUTO = 32 + zlib.MAX_WBITS  # gzip or zlib header, detected


def is_gzip(raw: bytes) -> bool:
    return raw[:2] == _GZIP_MAGIC


class Inflater:
    """Incremental gzip/zlib inflation with caps; feed compressed chunks, get inflated ones.

    `what` names the data in messages ("the request body"); `limit=None` means no size cap
    (the ratio cap still holds unless `ratio=None`).
    """

    def __init__(self, what: str, *, limit: int | None, ratio: int | None = RATIO) -> None:
        self.what, self.limit, self.ratio = what, limit, ratio
        self.compressed = self.inflated = 0
        self._z = zlib.decompressobj(_AUTO)

    def feed(self, chunk: bytes) -> bytes:
        """The inflated bytes of `chunk` (raises InflateLimit as soon as a cap is passed)."""
        self.compressed += len(chunk)
        out = []
        data = chunk
        while data:
            if self._z.eof:  # gzip allows several members back to back
                data = self._next_member(self._z.unused_data + data)
                if not data:
                    break
            piece = self._step(data)
            out.append(piece)
            data = self._z.unconsumed_tail
            if self._z.eof:
                data = self._z.unused_data + data
                if data:
                    data = self._next_member(data)
        return b"".join(out)

    def finish(self) -> None:
        """Call after the last chunk: a stream cut short is an error."""
        if not self._z.eof:
            raise DataError(f"{self.what} is not complete gzip/zlib data (it ends too early)")

    def _step(self, data: bytes) -> bytes:
        room = self._room()
        try:
            piece = self._z.decompress(data, room + 1)
        except zlib.error as exc:
            raise DataError(f"{self.what} is not valid gzip/zlib data ({exc})") from None
        self.inflated += len(piece)
        if len(piece) > room:
            raise self._too_large()
        return piece

    def _room(self) -> int:
        caps = [] if self.limit is None else [self.limit]
        if self.ratio is not None:
            caps.append(max(RATIO_FLOOR, self.ratio * self.compressed))
        return (min(caps) if caps else 1 << 62) - self.inflated

    def _next_member(self, data: bytes) -> bytes:
        if not is_gzip(data):
            raise DataError(f"{self.what} has data after the end of its gzip/zlib stream")
        self._z = zlib.decompressobj(_AUTO)
        return data

    def _too_large(self) -> InflateLimit:
        if self.limit is not None and self.inflated > self.limit:
            cap = f"the {self.limit:,}-byte limit"
        else:
            cap = f"{self.ratio}x its compressed size of {self.compressed:,} bytes"
        return InflateLimit(f"{self.what} inflates to more than {cap}; send less data")


def inflate(raw: bytes, what: str, *, limit: int | None, ratio: int | None = RATIO) -> bytes:
    """All of `raw` inflated, within the caps (see Inflater)."""
    inflater = Inflater(what, limit=limit, ratio=ratio)
    out = inflater.feed(raw)
    inflater.finish()
    return out
