"""Writing a version's files: into a private temp folder, fsynced, with manifest.json last; then
one atomic rename publishes the folder. A crash at any point leaves no half-written version."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import numpy as np

from shipml.files import fsync_path, publish_folder

__all__ = ["ArtifactWriter", "MANIFEST", "artifacts_of_parts", "sha256_file"]

MANIFEST = "manifest.json"
_TMP = ".tmp"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifacts_of_parts(parts, prefix: str) -> tuple[list[dict], dict]:
    """(each part's meta, all their files) for objects stored side by side, part i under the
    prefix `{prefix}_{i}` (a stack of image encoders, the fold networks of a family)."""
    metas, files = [], {}
    for i, part in enumerate(parts):
        meta, more = part.artifacts(f"{prefix}_{i}")
        metas.append(meta)
        files.update(more)
    return metas, files


class ArtifactWriter:
    """Collects a version's files in `<root>/.tmp/<id>`; `publish(dest)` makes them final."""

    def __init__(self, root: Path) -> None:
        self.id = uuid.uuid4().hex
        self.dir = Path(root) / _TMP / self.id
        self.dir.mkdir(parents=True)
        self.files: list[str] = []

    def _path(self, name: str) -> Path:
        if "/" in name or "\\" in name or name.startswith(".") or name == MANIFEST:
            raise ValueError(f"bad artifact file name {name!r}")
        if name in self.files:
            raise ValueError(f"artifact file {name!r} written twice")
        self.files.append(name)
        return self.dir / name

    def write_bytes(self, name: str, data: bytes) -> None:
        self._path(name).write_bytes(data)

    def write_text(self, name: str, text: str) -> None:
        self._path(name).write_text(text, encoding="utf-8")

    def write_json(self, name: str, obj: object) -> None:
        self.write_text(name, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False))

    def write_npy(self, name: str, array: np.ndarray) -> None:
        arr = np.asarray(array)
        if arr.dtype == object:
            raise ValueError(f"{name}: object arrays cannot be stored without pickle")
        with open(self._path(name), "wb") as fh:
            np.save(fh, arr, allow_pickle=False)

    def write(self, name: str, content: str | bytes | np.ndarray) -> None:
        if isinstance(content, str):
            self.write_text(name, content)
        elif isinstance(content, bytes):
            self.write_bytes(name, content)
        else:
            self.write_npy(name, content)

    def finish(self) -> dict:
        """Hash every file, write manifest.json, fsync all. Returns the manifest."""
        manifest = {
            "format": 1,
            "files": {name: sha256_file(self.dir / name) for name in sorted(self.files)},
        }
        (self.dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        for name in [*self.files, MANIFEST]:
            fsync_path(self.dir / name)
        fsync_path(self.dir)
        return manifest

    def publish(self, dest: Path) -> Path:
        """Atomically move the finished folder to `dest` (which must not exist)."""
        return publish_folder(self.dir, dest)

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def clean_stale_temp(root: Path, older_than_s: float = 6 * 3600) -> None:
    """Remove temp folders left by killed processes (never younger ones: they may be in use)."""
    import time

    tmp = Path(root) / _TMP
    if not tmp.is_dir():
        return
    now = time.time()
    for child in tmp.iterdir():
        try:
            if now - child.stat().st_mtime > older_than_s:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            continue
