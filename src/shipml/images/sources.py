"""Where images come from: a folder with one sub-folder per label, a zip of the same layout, one
image file, or a table column of paths (relative to the table)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from shipml.errors import DataError
from shipml.images.decode import IMAGE_SUFFIXES

__all__ = ["read_image_folder", "read_image_inputs", "resolve_image_paths", "is_image_folder"]


def _is_image(name: str) -> bool:
    parts = Path(name).parts
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return not hidden and Path(name).suffix.lower() in IMAGE_SUFFIXES


def is_image_folder(path: Path) -> bool:
    """A folder holding images in its sub-folders (the training layout)."""
    if not path.is_dir():
        return False
    return any(p.is_file() and _is_image(p.name) for sub in path.iterdir() if sub.is_dir()
               for p in sub.rglob("*"))  # fmt: skip


def _members(path: Path) -> list[tuple[str, object]]:
    """(relative name, cell) of every image under a folder or in a zip, sorted by name."""
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if not n.endswith("/") and _is_image(n))
            return [(n, archive.read(n)) for n in names]
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return [(p.relative_to(path).as_posix(), str(p.resolve())) for p in files
            if _is_image(p.relative_to(path).as_posix())]  # fmt: skip


def read_image_folder(path: Path) -> pd.DataFrame:
    """Training images: columns `image` (path or bytes) and `label` (the top sub-folder)."""
    if not path.exists():
        raise DataError(f"folder not found: {path}")
    rows = [(cell, Path(name).parts[0]) for name, cell in _members(path)
            if len(Path(name).parts) > 1]  # fmt: skip
    if not rows:
        raise DataError(f"{path}: no images in sub-folders (one sub-folder per label, holding "
                        f"{', '.join(IMAGE_SUFFIXES)} files)")  # fmt: skip
    return pd.DataFrame(rows, columns=["image", "label"])


def read_image_inputs(path: Path) -> pd.DataFrame:
    """Images to predict: columns `image` and `name` (and `label` when they sit in sub-folders,
    as for training, so that `evaluate` can score them)."""
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_file() and path.suffix.lower() != ".zip":
        return pd.DataFrame({"image": [str(path.resolve())], "name": [path.name]})
    members = _members(path)
    if not members:
        raise DataError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    frame = pd.DataFrame({"image": [c for _, c in members], "name": [n for n, _ in members]})
    if all(len(Path(n).parts) > 1 for n, _ in members):
        frame["label"] = [Path(n).parts[0] for n, _ in members]
    return frame


def resolve_image_paths(frame: pd.DataFrame, column: str, base: Path) -> pd.DataFrame:
    """Relative paths in `column` made absolute against `base` (the table's folder); a path
    that names no file is a DataError with its row."""
    out = frame.copy()
    cells = []
    for row, value in enumerate(frame[column].tolist(), start=1):
        if not isinstance(value, str) or not value.strip():
            cells.append(value if isinstance(value, bytes) else None)
            continue
        path = Path(value.strip()).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise DataError(f"column '{column}', row {row}: no image file at {value!r}")
        cells.append(str(path.resolve()))
    out[column] = pd.Series(cells, index=frame.index, dtype=object)
    return out
