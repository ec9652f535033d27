"""Where images come from: a folder or zip of class folders (training), a folder, zip or file to
score (prediction), a table with a column of paths (either).

A training folder holds one sub-folder per label; files deeper down belong to their top-level
sub-folder (``photos/scratch/2024-05/a.jpg`` is a ``scratch``). A zip has the same layout. One
folder wrapping the class folders (``photos.zip`` holding ``photos/ok/...``) is looked through,
with a note. Images lying in the root next to class folders have no label: they are left out,
with a note naming them (an error when there are no class folders at all). Files that are not
images (by extension, `IMAGE_SUFFIXES`) are left out with a note; hidden and system files
silently. A class folder with no image is an error; a class with a single image a note.

Every reader returns rows sorted by `name`, so the same folder gives the same table anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from shipml.echo import echo
from shipml.errors import DataError, TargetError
from shipml.images.decode import IMAGE_SUFFIXES
from shipml.images.listing import Listing, list_folder, list_zip

__all__ = [
    "ImageTable",
    "looks_like_image_paths",
    "read_image_folder",
    "read_image_inputs",
    "resolve_image_paths",
]

log = logging.getLogger(__name__)
SHOWN = 5  # file names quoted in a note
_LOOKED_FOR = ", ".join(sorted(IMAGE_SUFFIXES))


@dataclass(frozen=True)
class ImageTable:
    """Images read from a folder, a zip or a file.

    `frame`: one row per image, sorted by `name`, columns ``image`` (the cell: an absolute path
    for a folder or file, the member's bytes for a zip), ``name`` (the path relative to the
    folder, or the zip member's name: for display and output files) and ``label`` (the class
    folder; always for training, for prediction only when the layout has class folders).
    `notes`: what the user should hear (files left out, small classes), for the CLI to show;
    each is also logged at INFO."""

    frame: pd.DataFrame
    source: Path
    notes: tuple[str, ...] = field(default=())

    @property
    def labels(self) -> list[str]:
        """The classes, sorted (empty without a ``label`` column)."""
        if "label" not in self.frame:
            return []
        return sorted(self.frame["label"].unique())

    def __len__(self) -> int:
        return len(self.frame)


def read_image_folder(path: str | Path) -> ImageTable:
    """A folder (or .zip) of class folders, for training: columns image, label, name.

    Errors (DataError): no such path, no image found, no class folder, a class folder without
    images; TargetError: a single class folder."""
    listing = _listing(Path(path))
    images, notes = _images(listing)
    where = _where(listing)
    if not images:
        raise DataError(f"{where}: no images found (looked for {_LOOKED_FOR} files in sub-folders)")
    labelled = _by_class(images, listing.folders)
    if labelled is None:
        raise DataError(
            f"{where}: no class folders, the {len(images)} images lie directly in it; put each "
            f"label's images in its own sub-folder ({where}/ok/, {where}/scratch/, ...), or "
            "train on a table with a column of image paths"
        )
    wrapper, classes, loose = labelled
    if wrapper:
        notes.append(f"read the class folders inside {wrapper!r}")
    if loose:
        notes.append(_listed(f"left out {_count(loose, 'image')} outside the class folders", loose))
    empty = sorted(c for c, files in classes.items() if not files)
    if empty:
        raise DataError(
            f"{where}: class folder {_quoted(empty)} holds no image (looked for {_LOOKED_FOR}); "
            "add images or remove the folder"
        )
    if len(classes) == 1:
        (label,) = classes
        raise TargetError(
            f"{where}: only one class folder ({label!r}); training needs at least two, "
            "one sub-folder per label"
        )
    for label, files in sorted(classes.items()):
        if len(files) == 1:
            notes.append(f"class {label!r} has a single image; a class is learned from several")
    rows = sorted((name, label) for label, files in classes.items() for name in files)
    return _table(listing, [n for n, _ in rows], [lab for _, lab in rows], notes)


def read_image_inputs(path: str | Path) -> ImageTable:
    """Images to score: a folder (all its images, any depth), a .zip, or one image file.
    Columns image and name; also label when the images sit in class folders (so the same
    folder can be evaluated), see `read_image_folder` for the layout."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        cell = pd.Series([str(path.resolve())], dtype=object)
        frame = pd.DataFrame({"image": cell, "name": [path.name]})
        return ImageTable(frame, path)
    listing = _listing(path)
    images, notes = _images(listing)
    if not images:
        raise DataError(f"{_where(listing)}: no images found (looked for {_LOOKED_FOR} files)")
    labelled = _by_class(images, listing.folders)
    classes = {k: v for k, v in labelled[1].items() if v} if labelled else {}
    if not labelled or labelled[2] or len(classes) < 2:  # images outside class folders: none
        return _table(listing, images, None, notes)
    label_of = {name: label for label, files in classes.items() for name in files}
    return _table(listing, images, [label_of[n] for n in images], notes)


def _listing(path: Path) -> Listing:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return list_folder(path)
    if path.suffix.lower() == ".zip":
        return list_zip(path, IMAGE_SUFFIXES)
    raise DataError(
        f"{path}: expected a folder of images, a .zip of them or an image file "
        f"({_LOOKED_FOR}); a table of image paths is read with its image column"
    )


def _where(listing: Listing) -> str:
    return str(listing.archive or listing.source)


def _images(listing: Listing) -> tuple[list[str], list[str]]:
    """The image names (by extension) and a note on the other files, if any."""
    images, other = [], []
    for name in listing.names:
        (images if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES else other).append(name)
    notes = []
    if other:
        notes.append(_listed(f"left out {_count(other, 'file')} that are not images", other))
    return images, notes


def _by_class(images: list[str], folders: frozenset[str]):
    """(wrapper folder or "", {label: [names]}, [loose names]) or None without class folders.

    A single top folder holding sub-folders (and no image beside them) is a wrapper: looked
    through, as many times as there are such levels."""
    prefix = ""
    while True:
        below = [f[len(prefix) :] for f in folders if f.startswith(prefix) and f != prefix]
        tops = {f.split("/")[0] for f in below}
        loose = [n for n in images if "/" not in n[len(prefix) :]]
        if len(tops) == 1 and not loose and any(f.count("/") > 1 for f in below):
            prefix += tops.pop() + "/"
            continue
        break
    if not tops:
        return None
    classes = {top: [] for top in tops}
    for name in images:
        rest = name[len(prefix) :]
        if "/" in rest:
            classes[rest.split("/")[0]].append(name)
    return prefix.rstrip("/"), classes, loose


def _table(listing: Listing, names: list[str], labels: list[str] | None, notes) -> ImageTable:
    # object, not pandas' str dtype: the same column holds bytes from a zip or an upload
    columns = {"image": pd.Series(listing.cells(names), dtype=object), "name": names}
    if labels is not None:
        columns["label"] = labels
    for note in notes:
        log.info("%s: %s", _where(listing), note)
    return ImageTable(pd.DataFrame(columns), listing.archive or listing.source, tuple(notes))


def _listed(text: str, names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")
    return f"{text}: {shown}"


def _count(items: list, word: str) -> str:
    return f"{len(items)} {word}{'' if len(items) == 1 else 's'}"


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def resolve_image_paths(frame: pd.DataFrame, column: str, base_dir: str | Path) -> pd.DataFrame:
    """A copy of `frame` whose `column` holds absolute paths: relative ones resolved against
    `base_dir` (the table's folder), absolute ones and bytes kept, empty cells None.

    A path that is not a file is a DataError naming the column, the row (1-based, as in the
    rest of shipml), the path as written and where it was looked for; a URL one saying to
    download the images first."""
    if column not in frame.columns:
        known = list(frame.columns)
        raise DataError(f"no column {column!r} for the image paths (columns: {known})")
    base = Path(base_dir).expanduser().resolve()
    cells, missing = [], []
    for row, value in enumerate(frame[column].tolist(), start=1):
        cell = _resolved(value, base, column, row)
        if isinstance(cell, Path):
            missing.append((row, value, cell))
            cell = None
        cells.append(cell)
    if missing:
        row, value, where = missing[0]
        count = f"{len(missing)} of {len(frame)} image files" if len(missing) > 1 else "image file"
        raise DataError(
            f"column {column!r}: {count} not found, first in row {row}: {echo(value)} "
            f"(looked for {where})"
        )
    out = frame.copy()
    out[column] = pd.Series(cells, index=frame.index, dtype=object)
    return out


def _resolved(value, base: Path, column: str, row: int):
    """The cell for one value: an absolute path str, bytes, None, or the Path not found."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    if not isinstance(value, str):
        raise DataError(f"column {column!r}, row {row}: expected an image path, got {echo(value)}")
    text = value.strip()
    if not text:
        return None
    if "://" in text:
        raise DataError(
            f"column {column!r}, row {row}: {echo(value)} is a URL; shipml reads image files "
            "on this machine: download the images and give their paths"
        )
    path = base / Path(text).expanduser()
    if not path.is_file() and "\\" in text:  # a table written on Windows
        path = base / Path(text.replace("\\", "/"))
    return str(path.resolve()) if path.is_file() else path


def looks_like_image_paths(series: pd.Series, *, share: float = 0.8) -> bool:
    """Whether a column holds images: at least `share` of its non-empty values are paths ending
    in an image extension (any case) or bytes. An empty column is not."""
    values = [v for v in series.tolist() if _filled(v)]
    if not values:
        return False
    hits = sum(
        isinstance(v, (bytes, bytearray))
        or (isinstance(v, str) and PurePosixPath(v.strip()).suffix.lower() in IMAGE_SUFFIXES)
        for v in values
    )
    return hits >= share * len(values)


def _filled(value) -> bool:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return False
    return not (isinstance(value, str) and not value.strip())


def is_image_folder(path: Path) -> bool:
    """A folder holding images in its sub-folders (the training layout), or a zip of images."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".zip"
    if not path.is_dir():
        return False
    return any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
               for sub in path.iterdir() if sub.is_dir() for p in sub.rglob("*"))  # fmt: skip
