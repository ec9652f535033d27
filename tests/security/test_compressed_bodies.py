"""Compressed bodies are inflated within the body limit (issue 13, item 1).

A 1 MB gzip body that inflates to 1 GiB used to take 11.7 s and 2 GB of memory on
/v2/models/NAME/infer (Content-Encoding: gzip) and 1.45 GB on /predict/csv (gzip sniffed from
the bytes). Now every compressed body goes through data/inflate.py: 413 as soon as the inflated
size passes --max-body-mb (5 MB here) or 100x the compressed size.
"""

import gzip
import time
import zlib

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import GERMAN
from security.bombs import MIB, gzip_bomb
from security.live import Live
from shipml.errors import DataError
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore

GIB = 1 << 30


@pytest.fixture(scope="module")
def bomb() -> bytes:
    body = gzip_bomb(GIB)
    assert len(body) < 1.2 * MIB  # ~1 MB on the wire, under the 5 MB body limit
    return body


@pytest.fixture(scope="module")
def live(credit_model, registry_dir):
    server = Live(registry_dir)
    yield server
    assert "Traceback" not in server.stop()


@pytest.fixture()
def app_client(credit_model, registry_dir):
    key = KeyStore(Registry(registry_dir).engine).create("gz-" + str(time.time_ns()), ["predict"])
    app = create_app(["credit"], registry=Registry(registry_dir), max_body_bytes=200_000)
    return TestClient(app), {"Authorization": f"Bearer {key}"}


def _german_csv(n: int) -> bytes:
    return pd.read_csv(GERMAN).drop(columns="credit_risk").head(n).to_csv(index=False).encode()


def _v2_doc(credit_model, n: int = 2) -> bytes:
    import json

    frame = pd.read_csv(GERMAN).head(n)
    inputs = []
    for col in credit_model.schema.features:
        numeric = col.kind == "numeric"
        values = frame[col.name].astype(float if numeric else str).tolist()
        inputs.append({"name": col.name, "shape": [n], "datatype": "FP64" if numeric else "BYTES",
                       "data": values})  # fmt: skip
    return json.dumps({"inputs": inputs}).encode()


def test_gzip_bombs_get_413_at_once_and_cost_no_memory(live, bomb, credit_model):
    routes = [  # (path, extra headers): the v2 and JSON routes by header, the CSV by sniffing
        ("/v2/models/credit/infer", {"Content-Encoding": "gzip"}),
        ("/v1/models/credit/predict", {"Content-Encoding": "gzip",
                                       "Content-Type": "application/json"}),
        ("/v1/models/credit/predict/csv", {"Content-Type": "text/csv"}),
    ]  # fmt: skip
    with httpx.Client(base_url=live.base, headers=live.headers, timeout=60) as client:
        warm = client.post("/v1/models/credit/predict/csv", content=_german_csv(5),
                           headers={"Content-Type": "text/csv"})  # fmt: skip
        assert warm.status_code == 200
        warm = client.post("/v2/models/credit/infer", content=_v2_doc(credit_model))
        assert warm.status_code == 200, warm.text
        peak_before = live.status("VmHWM")
        for path, headers in routes:
            started = time.perf_counter()
            res = client.post(path, content=bomb, headers=headers)
            seconds = time.perf_counter() - started
            assert res.status_code == 413, (path, res.status_code, res.text[:200])
            # whichever cap the stream passes first: the 5 MB inflated size, or 100x the
            # compressed bytes read so far (which one depends on how the body arrives in chunks)
            error = res.json()["error"]
            assert "inflates to more than the 5,242,880-byte limit" in error or (
                "inflates to more than 100x its compressed size" in error
            ), error
            assert seconds < 1.0, (path, seconds)
        grown = live.status("VmHWM") - peak_before
        assert grown < 50 * MIB, f"peak memory grew by {grown / MIB:.0f} MB"
        # the server is still fine, and a normal gzip body on the same routes still works
        res = client.post("/v2/models/credit/infer", content=gzip.compress(_v2_doc(credit_model)),
                          headers={"Content-Encoding": "gzip"})  # fmt: skip
        assert res.status_code == 200, res.text
        res = client.post("/v1/models/credit/predict/csv", content=gzip.compress(_german_csv(5)),
                          headers={"Content-Type": "text/csv"})  # fmt: skip
        assert res.status_code == 200 and len(res.text.splitlines()) == 6


def test_small_compressed_bodies_work_on_every_route(app_client, credit_model):
    client, headers = app_client
    records = pd.read_csv(GERMAN).drop(columns="credit_risk").head(3).to_dict(orient="records")
    import json

    body = json.dumps({"records": records}).encode()
    for encoding, packed in [("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))]:
        res = client.post("/v1/models/credit/predict", content=packed,
                          headers={**headers, "Content-Encoding": encoding,
                                   "Content-Type": "application/json"})  # fmt: skip
        assert res.status_code == 200, res.text
        assert len(res.json()["predictions"]) == 3
    expected = client.post("/v1/models/credit/predict", json={"records": records}, headers=headers)
    assert [p["label"] for p in res.json()["predictions"]] == [
        p["label"] for p in expected.json()["predictions"]
    ]


def test_broken_compressed_bodies_are_a_clear_400(app_client):
    client, headers = app_client
    body = gzip.compress(b'{"records": [{"a": 1}]}')
    for bad, words in [(b"\x1f\x8bnot gzip at all", "not valid gzip/zlib data"),
                       (body[:-12], "ends too early")]:  # fmt: skip
        res = client.post("/v2/models/credit/infer", content=bad,
                          headers={**headers, "Content-Encoding": "gzip"})  # fmt: skip
        assert res.status_code == 400 and words in res.json()["error"], res.text
    res = client.post("/v1/models/credit/predict/csv", content=b"\x1f\x8b\x08\x00garbage",
                      headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 400 and "gzip" in res.json()["error"]


def test_the_ratio_cap_holds_when_the_size_limit_is_large():
    from shipml.data.inflate import RATIO, RATIO_FLOOR, InflateLimit, inflate

    bomb = gzip_bomb(64 * MIB)
    with pytest.raises(InflateLimit, match=f"{RATIO}x its compressed size") as err:
        inflate(bomb, "the upload", limit=10 * GIB)
    assert err.value.status == 413
    # under the floor, a very repetitive body is fine whatever its ratio
    assert inflate(gzip.compress(bytes(RATIO_FLOOR)), "x", limit=None) == bytes(RATIO_FLOOR)


def test_the_inflater_streams_members_and_stops_early():
    from shipml.data.inflate import InflateLimit, Inflater, inflate

    data = b"a,b\n1,2\n" * 1000
    packed = gzip.compress(data[:4000]) + gzip.compress(data[4000:])  # two gzip members
    inflater = Inflater("the body", limit=len(data))
    out = b"".join(inflater.feed(packed[i : i + 7]) for i in range(0, len(packed), 7))
    inflater.finish()
    assert out == data
    inflater = Inflater("the body", limit=len(data) - 1)
    with pytest.raises(InflateLimit, match=f"the {len(data) - 1:,}-byte limit"):
        inflater.feed(packed)
    assert inflater.inflated <= len(data)  # stopped at the cap, not after inflating it all
    with pytest.raises(DataError, match="data after the end"):
        inflate(gzip.compress(b"x") + b"trailing", "the body", limit=None)
