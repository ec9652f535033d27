"""Protocol datatypes and numpy: wire formats, which datatypes each column kind accepts,
and the byte / JSON encoding of tensors (BYTES elements as 4-byte length + UTF-8)."""

from __future__ import annotations

import math
import struct

import numpy as np

from shipml.serve.v2.errors import input_error

# little-endian wire formats of the fixed-size datatypes (BOOL is one byte, 0 or 1; BF16 is the
# upper half of an FP32, read as uint16 and widened)
WIRE = {
    "BOOL": np.dtype("u1"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
INTEGER = {k: v for k, v in WIRE.items() if k[0] in "IU"}
_NUMBER_TYPES = ("FP64", "FP32", "FP16", "BF16", *INTEGER)
DATATYPES = ("BOOL", *_NUMBER_TYPES, "BYTES")
ACCEPTS = {
    "numeric": _NUMBER_TYPES,
    "boolean": ("BOOL", *_NUMBER_TYPES),
    "categorical": ("BYTES",),
    "text": ("BYTES",),
    "datetime": ("BYTES",),
}
ADVERTISED = {"numeric": "FP64", "boolean": "BOOL"}  # other kinds: BYTES


def decode_bytes(name: str, chunk: bytes, n: int, shape: str, *, raw: bool = False) -> np.ndarray:
    """The n elements of a binary BYTES tensor: text (UTF-8), or with `raw` the bytes as sent
    (an image column's files)."""
    out = np.empty(n, dtype=object)
    pos, end = 0, len(chunk)
    for i in range(n):
        if pos + 4 > end:
            raise input_error(name, f": shape {shape} needs {n} values, the binary data holds {i}")
        (length,) = struct.unpack_from("<I", chunk, pos)
        pos += 4
        if pos + length > end:
            raise input_error(
                name,
                f": string {i + 1} says it has {length} bytes but only "
                f"{end - pos} are left in its binary data",
            )
        if raw:
            out[i] = chunk[pos : pos + length] or None
            pos += length
            continue
        try:
            text = chunk[pos : pos + length].decode("utf-8")
        except UnicodeDecodeError:
            raise input_error(name, f": value {i + 1} is not valid UTF-8 text") from None
        out[i] = text or None
        pos += length
    if pos != end:
        raise input_error(
            name,
            f": shape {shape} needs {n} values but its binary data has {end - pos} byte(s) more",
        )
    return out


def tensor_bytes(data: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for text in data.reshape(-1):
            raw = text.encode("utf-8")
            parts.append(struct.pack("<I", len(raw)))
            parts.append(raw)
        return b"".join(parts)
    return np.ascontiguousarray(data, dtype=WIRE[datatype]).tobytes()


def tensor_json(data: np.ndarray, datatype: str) -> list:
    flat = data.reshape(-1)
    if datatype == "BYTES":
        return [str(v) for v in flat]
    # NaN / infinity are not JSON: null (tritonclient's as_numpy reads null as NaN)
    return [v if math.isfinite(v) else None for v in flat.tolist()]
