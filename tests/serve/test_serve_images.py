"""An image model behind the server: base64 JSON, multipart uploads, CSV and v2 BYTES; the
server never reads a path a client names; bombs, non-images and floods are refused with 4xx;
the prediction log keeps a fingerprint of each image, never the image."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import DATA

pytest.importorskip("efficientnet_lite_pytorch")

DEFECTS = DATA / "images" / "defects"
BAD = DATA / "images" / "bad"


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    import shipml
    from shipml.registry.store import Registry
    from shipml.serve.app import create_app
    from shipml.serve.keys import KeyStore

    home = tmp_path_factory.mktemp("image-registry")
    model = shipml.train(DEFECTS, name="defects", time_budget=40, n_trials=2, report=False,
                         registry_uri=str(home), progress=False)  # fmt: skip
    reg = Registry(home)
    key = KeyStore(reg.engine).create("images", ["predict"])
    app = create_app(["defects"], registry=reg, rate_per_s=1000, burst=1000,
                     max_body_bytes=2_000_000)  # fmt: skip
    return TestClient(app), {"Authorization": f"Bearer {key}"}, model, reg


def _photos(n: int = 3) -> list:
    return sorted((DEFECTS / "spot").glob("*.png"))[:n]


def _b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _post(client, headers, records):
    return client.post("/v1/models/defects/predict", json={"records": records}, headers=headers)


def test_base64_records_predict_like_the_model(image_server):
    client, headers, model, _ = image_server
    photos = _photos(3)
    records = [{"image": _b64(p)} for p in photos]
    records[1]["image"] = "data:image/png;base64," + records[1]["image"]  # a FileReader's URI
    res = _post(client, headers, records)
    assert res.status_code == 200, res.text
    got = [r["probabilities"] for r in res.json()["predictions"]]
    want = model.predict_proba(model.input_frame(photos[0]))
    assert got[0] == pytest.approx({str(k): v for k, v in want.iloc[0].items()}, abs=1e-5)
    assert [r["label"] for r in res.json()["predictions"]] == list(model.predict(
        [{"image": p.read_bytes()} for p in photos]))  # fmt: skip


def test_a_path_or_url_is_never_read(image_server):
    client, headers, _, _ = image_server
    real = str(_photos(1)[0])  # a file the server could read: it must not
    for place in (real, "/etc/passwd", "../x.png", "file:///etc/passwd", "http://10.0.0.1/a.png"):
        res = _post(client, headers, [{"image": place}])
        assert res.status_code == 422, (place, res.text)
        assert "never reads files or URLs" in res.json()["error"]
        assert "records[0].image" in res.json()["error"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"%PDF-1.4 hello").decode(), "not an image"),
        (12, "got a number"),
        (["a"], "got a list"),
    ],
)
def test_bad_images_are_422_naming_the_field(image_server, value, says):
    client, headers, _, _ = image_server
    res = _post(client, headers, [{"image": _b64(_photos(1)[0])}, {"image": value}])
    assert res.status_code == 422, res.text
    assert set(res.json()) == {"error"} and says in res.json()["error"]
    assert "records[1].image" in res.json()["error"]


def test_a_decompression_bomb_is_refused_before_decoding(image_server):
    client, headers, _, _ = image_server
    res = _post(client, headers, [{"image": _b64(BAD / "bomb.png")}])
    assert res.status_code == 422, res.text
    assert "pixels" in res.json()["error"] and "records[0].image" in res.json()["error"]


def test_too_many_images_in_one_request_is_413(image_server):
    from shipml.serve.images import MAX_IMAGES

    client, headers, _, _ = image_server
    tiny = _b64(BAD / "tiny.png")
    res = _post(client, headers, [{"image": tiny}] * (MAX_IMAGES + 1))
    assert res.status_code == 413 and str(MAX_IMAGES) in res.json()["error"]


def test_multipart_upload_on_the_predict_url(image_server):
    client, headers, model, _ = image_server
    photos = _photos(2)
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in photos]
    res = client.post("/v1/models/defects/predict", files=files, headers=headers)
    assert res.status_code == 200, res.text
    labels = [r["label"] for r in res.json()["predictions"]]
    assert labels == list(model.predict([{"image": p.read_bytes()} for p in photos]))
    broken = [("image", ("x.jpg", (BAD / "truncated.jpg").read_bytes()[:40], "image/jpeg"))]
    res = client.post("/v1/models/defects/predict", files=broken, headers=headers)
    assert res.status_code == 422 and "file 1 of field 'image'" in res.json()["error"]
    res = client.post("/v1/models/defects/predict", data={"image": "x"}, files=[], headers=headers)
    assert res.status_code in (415, 422)


def test_csv_with_base64_cells(image_server):
    client, headers, _, _ = image_server
    photos = _photos(2)
    body = "image\n" + "\n".join(_b64(p) for p in photos) + "\n"
    res = client.post("/v1/models/defects/predict/csv", content=body.encode(),
                      headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 200, res.text
    lines = res.text.strip().splitlines()
    assert len(lines) == 3 and "image" not in lines[0].split(",")  # images not echoed back
    body = "image\n/etc/hostname\n"
    res = client.post("/v1/models/defects/predict/csv", content=body.encode(),
                      headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 422 and "row 1, column 'image'" in res.json()["error"]


def test_v2_bytes_binary_and_json(image_server):
    client, headers, model, _ = image_server
    photos = _photos(2)
    raw = [p.read_bytes() for p in photos]
    blob = b"".join(struct.pack("<I", len(r)) + r for r in raw)
    head = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                                   "parameters": {"binary_data_size": len(blob)}}],
                       "outputs": [{"name": "label"}]}).encode()  # fmt: skip
    res = client.post("/v2/models/defects/infer", content=head + blob,
                      headers={**headers, "Inference-Header-Content-Length": str(len(head)),
                               "Content-Type": "application/octet-stream"})  # fmt: skip
    assert res.status_code == 200, res.text
    want = [str(v) for v in model.predict([{"image": r} for r in raw])]
    assert res.json()["outputs"][0]["data"] == want
    doc = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                       "data": [_b64(photos[0]), "/etc/passwd"]}]}  # fmt: skip
    res = client.post("/v2/models/defects/infer", json=doc, headers=headers)
    assert res.status_code == 422 and "input 'image' row 2" in res.json()["error"]


def test_explain_draws_a_heat_map_per_image(image_server):
    from PIL import Image

    from shipml.serve.images import MAX_EXPLAIN_IMAGES

    client, headers, model, _ = image_server
    photo = _photos(1)[0]
    res = client.post("/v1/models/defects/explain", json={"records": [{"image": _b64(photo)}]},
                      headers=headers)  # fmt: skip
    assert res.status_code == 200, res.text
    (item,) = res.json()["explanations"]
    assert item["prediction"] == model.predict([{"image": photo.read_bytes()}])[0]
    assert np.asarray(item["heat"]).shape == (7, 7) and item["region"]
    overlay = Image.open(__import__("io").BytesIO(base64.b64decode(item["overlay_png"])))
    assert overlay.size == (64, 64)
    res = client.post("/v1/models/defects/explain", json={"records": [{"image": "/etc/passwd"}]},
                      headers=headers)  # fmt: skip
    assert res.status_code == 422 and "never reads" in res.json()["error"]
    many = [{"image": _b64(photo)}] * (MAX_EXPLAIN_IMAGES + 1)
    res = client.post("/v1/models/defects/explain", json={"records": many}, headers=headers)
    assert res.status_code == 413


def test_the_log_keeps_a_fingerprint_never_the_image(image_server):
    import hashlib

    from shipml.monitor.log import read_log

    client, headers, _, reg = image_server
    photo = _photos(1)[0]
    assert _post(client, headers, [{"image": _b64(photo)}]).status_code == 200
    client.app.state.predictor.log.flush()
    rows = read_log(reg.engine, "defects")
    entry = rows["image"].iloc[-1]
    assert entry["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert entry["bytes"] == photo.stat().st_size and entry["width"] == 64
    assert 0 <= entry["brightness"] <= 255
    with reg.engine.connect() as conn:
        stored = " ".join(r[0] for r in conn.exec_driver_sql("SELECT inputs FROM predictions"))
    assert _b64(photo)[:40] not in stored
    assert np.isfinite(entry["contrast"])


def test_monitor_sees_darker_photos_from_the_log(image_server, tmp_path):
    from PIL import Image

    from shipml.monitor.check import monitor

    client, headers, _, reg = image_server
    records = []
    for p in sorted(DEFECTS.glob("*/*.png"))[:40]:
        pixels = np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) * 0.4
        buffer = __import__("io").BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
        records.append({"image": base64.b64encode(buffer.getvalue()).decode()})
    for start in range(0, len(records), 20):
        assert _post(client, headers, records[start : start + 20]).status_code == 200
    client.app.state.predictor.log.flush()
    result = monitor(reg, "defects", since=None, report=tmp_path / "monitor.html")
    column = next(c for c in result["dataset"]["columns"] if c["column"] == "image")
    assert column["drift"] is True and "brightness" in column["method"], column
    assert "image" in result["drifted_columns"]
    assert (tmp_path / "monitor.html").stat().st_size > 1000
