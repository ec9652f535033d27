"""What a folder or a zip holds: its files as relative POSIX names, sorted, noise left out.

Both sources look the same to `sources.py`: a sorted list of relative names ("scratch/a.jpg"),
with the folders (even empty ones) as names ending in "/", and a way to turn a name into an
image cell (the file's path for a folder, the member's bytes for a zip). Hidden files and
folders (".DS_Store", "._a.jpg", ".git/"), macOS's "__MACOSX/" and Windows' "Thumbs.db" /
"desktop.ini" are left out silently: no user put them there on purpose.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shipml.errors import DataError, InflateLimit

__all__ = ["Listing", "MAX_ZIP_BYTES", "is_noise", "list_folder", "list_zip"]

MAX_ZIP_BYTES = 2_000_000_000  # images held in memory from one zip; a larger one: unzip it
_NOISE = {"__macosx", "thumbs.db", "desktop.ini", "$recycle.bin"}


def is_noise(part: str) -> bool:
    """A name no user means as data: hidden (dot), macOS and Windows bookkeeping."""
    return part.startswith(".") or part.lower() in _NOISE


@dataclass(frozen=True)
class Listing:
    """`names`: files, sorted; `folders`: every folder, as "a/", "a/b/"; `cell(name)`."""

    source: Path
    names: tuple[str, ...]
    folders: frozenset[str]
    archive: Path | None = None  # the zip, when the names are its members
    members: dict[str, str] | None = None  # name -> the member's name as stored (a zip)

    def cells(self, names: list[str]) -> list:
        """The image cells for `names`: absolute paths, or the zip members' bytes."""
        if self.archive is None:
            return [str(self.source / name) for name in names]
        with zipfile.ZipFile(self.archive) as zf:
            return [_read_member(zf, self.members[name], self.archive) for name in names]


def list_folder(root: Path) -> Listing:
    """Every file under `root` (symbolic links to files followed; to folders, only at the top,
    where a class folder may be one), hidden and system files left out."""
    root = root.resolve()
    names, folders = [], set()
    for top in sorted(root.iterdir()):
        if is_noise(top.name):
            continue
        if top.is_file():
            names.append(top.name)
        elif top.is_dir():
            folders.add(top.name + "/")
            _walk(root, top, names, folders)
    return Listing(root, tuple(sorted(names)), frozenset(folders))


def _walk(root: Path, top: Path, names: list[str], folders: set[str]) -> None:
    for here, dirs, files in os.walk(top, onerror=None):
        dirs[:] = sorted(d for d in dirs if not is_noise(d))
        rel = Path(here).relative_to(root).as_posix()
        folders.update(f"{rel}/{d}/" for d in dirs)
        names.extend(f"{rel}/{f}" for f in files if not is_noise(f))


def list_zip(path: Path, suffixes: frozenset[str]) -> Listing:
    """The zip's members (folders included), hidden and system ones left out. The images
    among them (by `suffixes`) must fit MAX_ZIP_BYTES once inflated (an InflateLimit if not)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable zip ({exc})") from None
    members, folders, total = {}, set(), 0
    for info in infos:
        # "a\\b.jpg" from old Windows tools, "/a/b.jpg" or "./a" from careless ones: a/b.jpg
        raw = PurePosixPath(info.filename.replace("\\", "/")).parts
        parts = tuple(p for p in raw if p not in ("/", "."))
        if not parts or any(is_noise(p) for p in parts) or ".." in parts:
            continue
        for depth in range(1, len(parts)):
            folders.add("/".join(parts[:depth]) + "/")
        if info.is_dir():
            folders.add("/".join(parts) + "/")
            continue
        members["/".join(parts)] = info.filename
        if PurePosixPath(parts[-1]).suffix.lower() in suffixes:
            total += info.file_size
    if total > MAX_ZIP_BYTES:
        raise InflateLimit(
            f"{path}: its images inflate to {total / 1e9:.1f} GB, over the "
            f"{MAX_ZIP_BYTES / 1e9:.0f} GB read into memory from a zip; unzip it, give the folder"
        )
    names = tuple(sorted(members))
    return Listing(path, names, frozenset(folders), archive=path, members=members)


def _read_member(zf: zipfile.ZipFile, name: str, archive: Path) -> bytes:
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: a compression we lack
        raise DataError(f"{archive}: cannot read {name!r} ({exc})") from None
