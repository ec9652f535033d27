"""THE only way shipml reads model files. Every read checks the file's sha256 against
manifest.json first, and only data formats are parsed: JSON, text (LightGBM models, HTML),
NumPy .npy with allow_pickle=False. Nothing here can execute code from a file."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from shipml.errors import ArtifactIntegrityError
from shipml.registry.artifacts import MANIFEST

__all__ = ["ArtifactReader"]


class ArtifactReader:
    """Reads the files of one stored version, verifying each against the manifest."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise ArtifactIntegrityError(f"{self.path}: manifest.json is missing")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            self.files: dict[str, str] = dict(manifest["files"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactIntegrityError(f"{manifest_path}: unreadable manifest ({exc})") from exc
        missing = [n for n in self.files if not (self.path / n).is_file()]
        if missing:
            raise ArtifactIntegrityError(f"{self.path}: files missing: {', '.join(missing)}")

    def read_bytes(self, name: str) -> bytes:
        expected = self.files.get(name)
        if expected is None:
            raise ArtifactIntegrityError(f"{self.path}: {name} is not listed in manifest.json")
        data = (self.path / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise ArtifactIntegrityError(
                f"{self.path / name} was modified after it was saved (sha256 differs from "
                "manifest.json); refusing to load it"
            )
        return data

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def read_json(self, name: str) -> object:
        return json.loads(self.read_text(name))

    def read_npy(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.read_bytes(name)), allow_pickle=False)

    def verify_all(self) -> None:
        """Hash every listed file (e.g. before serving a version)."""
        for name in self.files:
            self.read_bytes(name)
