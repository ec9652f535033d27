"""THE only way shipml reads model files. Every read checks the file's sha256 against
manifest.json first, and only data formats are parsed: JSON, text, LightGBM text models, NumPy
.npy with allow_pickle=False, and (through `parse`) safetensors, tokenizer JSON and ONNX graphs.
Nothing here can execute code from a file.

A file that matches its manifest but does not parse as its declared format (a pickle put in
its place with the manifest rewritten, a truncated copy) raises ArtifactIntegrityError naming the
artifact inside its model ("artifact 'member0_0.txt' of credit v2"), never a server path: the
path is kept on the exception (`.path`) for logs and `--debug`."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from shipml.errors import ArtifactIntegrityError, ShipmlError
from shipml.registry.artifacts import MANIFEST

__all__ = ["ArtifactReader", "check_lightgbm_text"]

T = TypeVar("T")
_DETAIL = 160  # characters of a parser's own message kept in ours


class ArtifactReader:
    """Reads the files of one stored version, verifying each against the manifest.

    `label` names the version in messages ("credit v2"); the folder's path never appears in
    them."""

    def __init__(self, path: Path | str, *, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label or "the stored model"
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise self._error(f"{self.label}: manifest.json is missing", self.path)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            self.files: dict[str, str] = dict(manifest["files"])
        except (ValueError, KeyError, TypeError) as exc:
            raise self._error(
                f"{self.label}: unreadable manifest.json ({_brief(exc)})", manifest_path
            ) from exc
        missing = [n for n in self.files if not (self.path / n).is_file()]
        if missing:
            raise self._error(f"{self.label}: files missing: {', '.join(missing)}", self.path)

    def read_bytes(self, name: str) -> bytes:
        expected = self.files.get(name)
        if expected is None:
            raise self._error(f"{self._artifact(name)} is not listed in manifest.json", self.path)
        data = (self.path / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise self._error(
                f"{self._artifact(name)} was modified after it was saved (sha256 differs from "
                "manifest.json); refusing to load it",
                self.path / name,
            )
        return data

    def parse(self, name: str, kind: str, parser: Callable[[bytes], T]) -> T:
        """`parser(bytes)` of a verified file; whatever it raises on these bytes becomes an
        ArtifactIntegrityError saying the file is not a valid `kind` (shipml's own errors,
        e.g. a missing optional dependency, pass through)."""
        data = self.read_bytes(name)
        try:
            return parser(data)
        except (ShipmlError, MemoryError):
            raise
        except Exception as exc:
            raise self._error(
                f"{self._artifact(name)} is not a valid {kind} ({_brief(exc)}): restore the "
                "version's files from a backup or train it again",
                self.path / name,
            ) from exc

    def read_text(self, name: str) -> str:
        return self.parse(name, "UTF-8 text file", _utf8)

    def read_json(self, name: str) -> object:
        return self.parse(name, "JSON file", lambda data: json.loads(_utf8(data)))

    def read_npy(self, name: str) -> np.ndarray:
        return self.parse(name, "NumPy .npy file", _npy)

    def read_lightgbm(self, name: str) -> tuple[str, object]:
        """(model text, lightgbm.Booster), the text checked for LightGBM's layout first: the
        library reads a truncated model out of bounds and kills the process."""
        return self.parse(name, "LightGBM model file", _lightgbm)

    def verify_all(self) -> None:
        """Hash every listed file (e.g. before serving a version)."""
        for name in self.files:
            self.read_bytes(name)

    def _artifact(self, name: str) -> str:
        return f"artifact {name!r} of {self.label}"

    @staticmethod
    def _error(message: str, path: Path) -> ArtifactIntegrityError:
        return ArtifactIntegrityError(message, path=str(path))


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _DETAIL else text[: _DETAIL - 3] + "..."


def _utf8(data: bytes) -> str:
    return data.decode("utf-8")


def _npy(data: bytes) -> np.ndarray:
    # read_array reads the .npy format only (np.load would also open zip archives)
    return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)


def _lightgbm(data: bytes) -> tuple[str, object]:
    import lightgbm

    check_lightgbm_text(data)
    text = _utf8(data)
    return text, lightgbm.Booster(model_str=text)


def check_lightgbm_text(data: bytes) -> None:
    """Raise ValueError unless `data` has the layout LightGBM's parser relies on.

    The parser cuts the trees out of the text at the offsets the `tree_sizes=` header gives,
    and reads the parameters up to `end of parameters`, without checking either against the
    text's length: a truncated file makes it read past the end (segmentation fault) or fail
    inside a thread (abort). So the layout model_to_string writes is required: the `tree`
    header, every tree at its offset, `end of trees` right after the last one, a complete
    parameters block and the Python package's closing `pandas_categorical:` line.
    """
    if not data.startswith(b"tree\n"):
        raise ValueError("it does not start with LightGBM's 'tree' header")
    header, sep, body = data.partition(b"\n\nTree=")
    if not sep:
        raise ValueError("it holds no trees")
    body = b"Tree=" + body
    sizes = _tree_sizes(header)
    offset = 0
    for i, size in enumerate(sizes):
        if not body.startswith(b"Tree=%d\n" % i, offset):
            raise ValueError(f"tree {i} is not where its header puts it (the file is cut short?)")
        offset += size
    tail = body[offset:]
    if not tail.lstrip(b"\n").startswith(b"end of trees"):
        raise ValueError("'end of trees' does not follow the last tree (the file is cut short?)")
    # the parameters block is read up to its end marker, again without a bound
    if b"\nend of parameters\n" not in tail or not tail.endswith(b"\n"):
        raise ValueError("its parameters block is incomplete (the file is cut short?)")
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last.startswith(b"pandas_categorical:"):
        raise ValueError("its last line is not 'pandas_categorical:' (the file is cut short?)")


def _tree_sizes(header: bytes) -> list[int]:
    for line in header.split(b"\n"):
        if line.startswith(b"tree_sizes="):
            sizes = [int(s) for s in line[len(b"tree_sizes=") :].split()]
            if not sizes or min(sizes) <= 0:
                raise ValueError("its tree_sizes header is empty or not positive")
            return sizes
    raise ValueError("its header has no tree_sizes line")
