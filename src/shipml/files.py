"""Writing files so that a reader sees the old content or the new one, never half of one.

`atomic_write` writes one file (a report, a CSV of predictions, a server secret, a cache shard):
a temp file in the same folder, fsynced, renamed over the target with `os.replace`, removed if
anything fails. `publish_folder` does the same for a finished folder (a model version, a bundle).
Where two processes must not both write (the server secret), the caller holds a `filelock`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

__all__ = ["atomic_write", "fsync_path", "npy_bytes", "publish_folder"]


def atomic_write(path: str | os.PathLike, data: str | bytes, *, mode: int = 0o644) -> Path:
    """Write `data` (text is UTF-8) to `path` atomically with permissions `mode`; the folder
    is created if needed. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)  # the rename itself survives a power cut
    return path


def npy_bytes(array) -> bytes:
    """A NumPy array as the bytes of an .npy file, without pickle (object arrays refused)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's entries to disk (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):  # Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_folder(tmp: str | os.PathLike, dest: str | os.PathLike, *, replace: bool = False):
    """Rename the finished folder `tmp` to `dest`, with renames only.

    Without `replace`, `dest` must not exist (or be empty): an OSError otherwise. With it, a
    folder at `dest` is moved aside first and put back if the rename fails, then removed.
    """
    tmp, dest = Path(tmp), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not replace or not dest.exists():
        os.replace(tmp, dest)
        fsync_path(dest.parent)
        return dest
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old, dest)
        raise
    fsync_path(dest.parent)
    shutil.rmtree(old, ignore_errors=True)
    return dest
