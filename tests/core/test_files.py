"""One atomic write: readers see the old file or the new one; a failure leaves no trace."""

import multiprocessing
import os
import stat

import pytest

from shipml.files import atomic_write, npy_bytes, publish_folder


def test_atomic_write_text_bytes_and_mode(tmp_path):
    path = tmp_path / "deep" / "report.html"
    assert atomic_write(path, "café\n") == path
    assert path.read_bytes() == "café\n".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    atomic_write(path, b"\x00\x01", mode=0o600)
    assert path.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]  # no temp left


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "scored.csv"
    atomic_write(path, "old\n")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scored.csv"]
    with pytest.raises(TypeError):  # not text or bytes: nothing written
        atomic_write(path, 3.5)
    assert [p.name for p in tmp_path.iterdir()] == ["scored.csv"]


def test_npy_bytes_round_trip_without_pickle(tmp_path):
    import numpy as np

    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    atomic_write(tmp_path / "a.npy", npy_bytes(array))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), array)
    with pytest.raises(ValueError):
        npy_bytes(np.array([{"a": 1}], dtype=object))


def test_publish_folder_new_replace_and_refuse(tmp_path):
    def folder(name, text):
        path = tmp_path / name
        path.mkdir()
        (path / "f.txt").write_text(text)
        return path

    dest = tmp_path / "out"
    publish_folder(folder("a", "1"), dest)
    assert (dest / "f.txt").read_text() == "1"
    with pytest.raises(OSError):  # a version folder is never replaced
        publish_folder(folder("b", "2"), dest)
    assert (dest / "f.txt").read_text() == "1"
    publish_folder(tmp_path / "b", dest, replace=True)
    assert (dest / "f.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the old one is gone


def _secret(home, queue):
    from shipml.serve.pii import load_secret

    queue.put(load_secret(home, env="SHIPML_TEST_NO_SUCH_ENV"))


def test_workers_starting_together_share_one_secret(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_secret, args=(tmp_path, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    secrets = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert len(set(secrets)) == 1 and len(secrets[0]) == 64
    assert stat.S_IMODE((tmp_path / "pii-secret").stat().st_mode) == 0o600
