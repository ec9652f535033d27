"""Gzip bombs for the attack tests: built in a second, never holding the inflated bytes."""

import struct
import zlib

MIB = 1 << 20


def gzip_bomb(size: int) -> bytes:
    """A valid gzip stream of `size` zero bytes (a multiple of 1 MiB), about size / 1000 long.

    Each MiB is compressed after a full flush, so every MiB but the first compresses to the same
    bytes: one is compressed and repeated, and the trailer gets the CRC and length of the whole.
    """
    block = bytes(MIB)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    unit = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    assert z.compress(block) + z.flush(zlib.Z_FULL_FLUSH) == unit
    end = z.flush()[:-8]  # the last (empty) block; the trailer is written below
    crc = 0
    for _ in range(size // MIB):
        crc = zlib.crc32(block, crc)
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return head + unit * (size // MIB - 1) + end + trailer
