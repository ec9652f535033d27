"""A wheel of the running shipml, for the image: built from its source tree, or an existing one.

Where the source is: an editable or local-folder install records it in `direct_url.json`
(PEP 610); otherwise a checkout is found by walking up from the package to a pyproject.toml
naming shipml. The tree is copied to a temp folder first, so the build leaves no `build/` or
`*.egg-info` behind in the user's checkout.
"""

from __future__ import annotations

import email
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.message import Message
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from shipml.errors import MissingDependency, ShipmlError, UsageError

__all__ = ["shipml_wheel", "wheel_metadata"]

log = logging.getLogger(__name__)
PROJECT = "shipml"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".*")


def wheel_metadata(path: Path) -> Message:
    """The METADATA of a wheel (name, version, Requires-Dist, Provides-Extra)."""
    try:
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            return email.message_from_bytes(zf.read(name))
    except (OSError, zipfile.BadZipFile, StopIteration) as exc:
        raise ShipmlError(f"{path} is not a readable wheel ({exc})") from exc


def shipml_wheel(dest: Path, wheel: Path | None = None) -> Path:
    """Put a wheel of shipml into `dest` and return its path.

    `wheel`: use this file instead of building one. The wheel's version must be the running
    shipml's, so the image runs the code that wrote and tested the model.
    """
    import shipml

    dest.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        wheel = _installed_wheel()
    if wheel is not None:
        wheel = Path(wheel)
        if not wheel.is_file() or wheel.suffix != ".whl":
            raise UsageError(f"{wheel} is not a wheel file (*.whl)")
        out = Path(shutil.copy2(wheel, dest / wheel.name))
    else:
        out = _build(_source_tree(), dest)
    meta = wheel_metadata(out)
    if meta["Name"] != PROJECT or meta["Version"] != shipml.__version__:
        raise UsageError(
            f"{out.name} holds {meta['Name']} {meta['Version']}, but the running shipml is "
            f"{shipml.__version__}: reinstall shipml from that source (pip install -e .) or give "
            "the matching wheel"
        )
    return out


def _direct_url() -> dict:
    try:
        text = metadata.distribution(PROJECT).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return {}
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _installed_wheel() -> Path | None:
    """The wheel file shipml was installed from, when it still exists."""
    info = _direct_url()
    path = _local_path(info.get("url", ""))
    if "archive_info" in info and path is not None and path.suffix == ".whl" and path.is_file():
        return path
    return None


def _source_tree() -> Path:
    info = _direct_url()
    path = _local_path(info.get("url", ""))
    if "dir_info" in info and path is not None and (path / "pyproject.toml").is_file():
        return path
    import shipml

    for parent in Path(shipml.__file__).resolve().parents:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file() and _names_shipml(pyproject):
            return parent
    raise ShipmlError(
        "cannot find shipml's source tree or the wheel it was installed from, so the bundle "
        "cannot include shipml: pass --wheel PATH (e.g. from `pip download shipml=="
        f"{shipml.__version__} --no-deps`) or install shipml from a checkout (pip install -e .)"
    )


def _names_shipml(pyproject: Path) -> bool:
    # tomllib is Python 3.11+; a line match is enough to recognise our own pyproject.toml
    text = pyproject.read_text(encoding="utf-8", errors="replace")
    return re.search(r'^name\s*=\s*["\']shipml["\']\s*$', text, re.MULTILINE) is not None


def _build(source: Path, dest: Path) -> Path:
    """`pip wheel --no-deps` of a copy of the source tree (top-level files + the package's
    top folder, e.g. src/)."""
    import shipml

    package = Path(shipml.__file__).resolve().parent
    source = source.resolve()
    if source not in package.parents:
        raise ShipmlError(
            f"the running shipml ({package}) is not inside its recorded source tree ({source}): "
            "reinstall it (pip install -e .) or pass --wheel PATH"
        )
    package_top = package  # the folder right under the source root: src/ or shipml/
    while package_top.parent != source:
        package_top = package_top.parent
    with tempfile.TemporaryDirectory(prefix="shipml-wheel-") as tmp:
        copy = Path(tmp) / "src-tree"
        copy.mkdir()
        for item in source.iterdir():
            if item.is_file() and not item.name.startswith("."):
                shutil.copy2(item, copy / item.name)
        shutil.copytree(package_top, copy / package_top.name, ignore=_IGNORE)
        log.info("building a wheel of shipml from %s", source)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
               "--wheel-dir", str(Path(tmp) / "out"), str(copy)]  # fmt: skip
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ShipmlError(f"could not build the shipml wheel: {exc}") from exc
        if res.returncode != 0:
            if "No module named pip" in res.stderr:
                raise MissingDependency(
                    "building the shipml wheel needs pip in this environment: "
                    "python -m ensurepip, or pass --wheel PATH"
                )
            tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-5:])
            raise ShipmlError(f"`pip wheel` of {source} failed:\n{tail}")
        built = sorted((Path(tmp) / "out").glob(f"{PROJECT}-*.whl"))
        if not built:
            raise ShipmlError(f"`pip wheel` of {source} produced no shipml wheel")
        return Path(shutil.copy2(built[-1], dest / built[-1].name))
