"""Images sent to the server: what a client may put in an image column, and how it is checked.

A client sends an image's bytes, never a place to read it from: a file path or a URL in a
request is refused (the server would otherwise read its own files, or fetch from the network,
on a client's word). The same rule holds on every route:

- JSON records (`/predict`, `/explain`) and CSV cells: the image as base64 text, or as a
  ``data:image/...;base64,`` URI (what a browser's FileReader gives); null or "" for missing;
- multipart uploads (`/predict` with ``multipart/form-data``): one file part per image, its
  field named after the image column (a model with one image column also takes any field name);
  other form fields are the other columns' values;
- Open Inference Protocol v2: a BYTES input whose elements are the raw image bytes (binary
  extension) or base64 text (JSON).

Each image is checked before any pixel is decoded: base64 that decodes, a supported format
(images/decode.py), at most `MAX_PIXELS` pixels (a 20 KB PNG can declare 50,000 x 50,000: a
decompression bomb), and at most `MAX_IMAGES` images per request. Errors are 422s naming the
field (``records[2].photo``); a request with too many images is 413.

The prediction log keeps a fingerprint of each image, never the image: `log_cell` gives its
sha256, size in bytes, and the cheap statistics `shipml monitor` compares with the training
images (width, height, brightness, contrast, saturation: images/stats.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from shipml.echo import echo
from shipml.errors import DataError, SchemaError, TooManyRows

__all__ = [
    "IMAGE_CHUNK", "MAX_IMAGES", "MAX_PIXELS", "UPLOAD_BODY", "UploadRoute", "check_count",
    "decode_records", "explain_images_route", "image_cell", "image_columns", "log_cell",
    "score_images", "upload_field", "upload_records",
]  # fmt: skip

MAX_IMAGES = 64  # per request: ~50 ms each to embed on one core, a few seconds at most
MAX_PIXELS = 25_000_000  # per image on the server (5,000 x 5,000): ~75 MB once decoded
_DATA_URI = re.compile(r"^data:(image/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_LOOKS_LIKE_PLACE = re.compile(r"^(/|~|\.{1,2}/|[a-z][a-z0-9+.-]*://|[a-z]:\\|file:)", re.I)
_SENT_AS = "send the image's bytes as base64 text (or a data: URI), or upload it as multipart"


def image_columns(model) -> list[str]:
    schema = getattr(model, "schema", None)
    if schema is None:
        return []
    return [c.name for c in schema.features if c.kind == "image"]


def image_cell(value, field: str) -> bytes | None:
    """The image bytes a client sent for one cell (None: missing), checked (422 naming
    `field` otherwise)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = _from_text(value.strip(), field)
    else:
        raise SchemaError(f"{field}: expected an image; {_SENT_AS} (got {_kind(value)})")
    _check_image(raw, field)
    return raw


def _from_text(text: str, field: str) -> bytes:
    match = _DATA_URI.match(text)
    body = text[match.end() :] if match else text
    if not match and _LOOKS_LIKE_PLACE.match(text):
        raise SchemaError(
            f"{field}: {echo(text[:80])} looks like a file path or URL; the server never reads "
            f"files or URLs named in a request: {_SENT_AS}"
        )
    body = re.sub(r"\s+", "", body).replace("-", "+").replace("_", "/")  # URL-safe alphabet too
    body += "=" * (-len(body) % 4)
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SchemaError(f"{field}: not valid base64; {_SENT_AS}") from None
    if not raw:
        raise SchemaError(f"{field}: the base64 text decodes to 0 bytes, not an image")
    return raw


def _check_image(raw: bytes, field: str) -> None:
    """Format and pixel count from the header: no pixel decoded."""
    from shipml.images.decode import image_size

    try:
        width, height = image_size(raw, label=field)
    except DataError as exc:
        raise SchemaError(str(exc)) from None
    if width * height > MAX_PIXELS:
        raise SchemaError(
            f"{field}: {width} x {height} = {width * height:,} pixels, over the server's limit "
            f"of {MAX_PIXELS:,}; resize the image before sending it"
        )


def _kind(value) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_count(n_images: int) -> None:
    if n_images > MAX_IMAGES:
        raise TooManyRows(
            f"{n_images} images in one request, over the limit of {MAX_IMAGES}; send them in "
            "several requests"
        )


def decode_records(model, records: list[dict], where) -> list[dict]:
    """`records` with each image column's value replaced by its checked bytes (copies: the
    caller's dicts are not changed). `where(i, column)` names a field in errors."""
    columns = image_columns(model)
    if not columns:
        return records
    check_count(sum(1 for r in records for c in columns if r.get(c) not in (None, "")))
    out = []
    for i, record in enumerate(records):
        record = dict(record)
        for column in columns:
            if column in record:
                record[column] = image_cell(record[column], where(i, column))
        out.append(record)
    return out


def log_cell(cell) -> dict | None:
    """What the prediction log keeps of an image: sha256, bytes and its statistics."""
    if cell is None:
        return None
    from shipml.images.stats import image_stats

    raw = bytes(cell)
    entry = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    stats = image_stats([raw], errors="nan").iloc[0]
    entry.update({k: (round(float(v), 3) if v == v else None) for k, v in stats.items()})
    return entry


async def upload_records(request, model) -> list[dict]:
    """The records of a multipart upload: one per file of the image column (with a single image
    column, files under any field name count), the other form fields repeated in each."""
    columns = image_columns(model)
    if not columns:
        raise DataError("this model has no image input: send JSON records or a CSV, not files")
    form = await request.form(max_files=MAX_IMAGES + 1, max_fields=200)
    files: dict[str, list[bytes]] = {}
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
            continue
        column = key if key in columns or len(columns) > 1 else columns[0]
        files.setdefault(column, []).append(await value.read())
    await form.close()
    return _upload_rows(columns, files, fields)


def _upload_rows(columns: list[str], files: dict, fields: dict) -> list[dict]:
    unknown = sorted(set(files) - set(columns))
    if unknown:
        raise SchemaError(
            f"file field {echo(unknown[0])} is not an image input of this model; its image "
            f"inputs: {', '.join(repr(c) for c in columns)}"
        )
    if not files:
        raise SchemaError(f"no file in the upload; send the image(s) as the field {columns[0]!r}")
    counts = {len(v) for v in files.values()}
    if len(counts) > 1:
        raise SchemaError("each image input needs the same number of files (one per row)")
    n = counts.pop()  # the images are counted once, by decode_records (score_images)
    records = []
    for i in range(n):
        record: dict = {c: None for c in columns}
        record.update(fields)
        for column, parts in files.items():
            record[column] = parts[i]
        records.append(record)
    return records


IMAGE_CHUNK = 8  # images scored per step of a heavy job (it can stop between steps)


def upload_field(i: int, column: str) -> str:
    """Where an uploaded file is: file 2 of field 'photo'."""
    return f"file {i + 1} of field {column!r}"


async def score_images(request, heavy, predictor, served: tuple, records: list[dict], key,
                       where) -> list[dict]:  # fmt: skip
    """Predictions for records with images, as a heavy job (a deadline, a slot, stopped when
    the client leaves). `served` is (name, model, version); `where` names fields in errors."""
    from shipml.serve.predict import check_records

    name, model, version = served
    records = decode_records(model, records, where)
    check_records(model, records, where)
    request.state.rows = len(records)

    def part(rows: list[dict]) -> list[dict]:
        return predictor.predict(name, model, version, rows, key, where=None)  # checked above

    return await heavy.run(request, lambda job: job.map(records, part, IMAGE_CHUNK))


class UploadRoute:
    """ASGI middleware: a multipart POST to /v1/models/NAME/predict goes to the upload route
    (/v1/models/NAME/predict/upload), so one URL takes JSON records and uploaded files."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST":
            path = scope.get("path", "")
            if path.startswith("/v1/models/") and path.endswith("/predict"):
                kind = dict(scope.get("headers") or []).get(b"content-type", b"")
                if kind.split(b";")[0].strip().lower() == b"multipart/form-data":
                    scope = dict(scope, path=path + "/upload", raw_path=None)
        return await self.app(scope, receive, send)


UPLOAD_BODY = {  # the upload route's body in the OpenAPI document
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "properties": {
                        "image": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }  # fmt: skip
            }
        },
    }
}


MAX_EXPLAIN_IMAGES = 4  # per request: each heat map scores ~50 occluded copies of its image


async def explain_images_route(request, heavy, model, records: list[dict]) -> list[dict]:
    """Per record: the predicted class, its probability, the region that mattered most, the
    occlusion heat map (rows of numbers) and the map drawn over the image (base64 PNG)."""
    from shipml.serve.heavy import Heavy
    from shipml.serve.predict import check_records, json_field

    Heavy.check_rows(len(records), MAX_EXPLAIN_IMAGES, "explaining images", "MAX_EXPLAIN_IMAGES")
    records = decode_records(model, records, json_field)
    check_records(model, records, json_field)
    request.state.rows = len(records)

    def part(rows: list[dict]) -> list[dict]:
        import pandas as pd

        out = []
        for item in model.explain_image(pd.DataFrame(rows)):
            entry = item.to_dict()
            entry.pop("image")  # the server's name for an uploaded image says nothing
            entry["overlay_png"] = base64.b64encode(item.overlay_png()).decode()
            out.append(entry)
        return out

    return await heavy.run(request, lambda job: job.map(records, part, 1))
