"""`write_bundle`: one registered version as a folder `docker build` turns into a serving image.

    dist/
      Dockerfile  .dockerignore  README.md  bundle.json  requirements.txt
      wheels/shipml-<version>-py3-none-any.whl
      registry/registry.db  registry/artifacts/<name>/<id>/...   (only this version)

A text model whose sentence encoder travels in its artifacts (`text_encoder` in encoder.json)
also gets the `text` extra, without what serving does not use (pins.TEXT_SERVE_LEAVE_OUT), and
PyTorch's CPU build from its own index (dockerfile.py): the PyPI build would pull CUDA.

The version is copied file by file through the sha256-checked reader into a fresh folder
registry, under the same name, the same version number and the same aliases, then read back
(load_model) before the bundle is published. The bundle is written to a temp folder beside the
target and renamed into place, so a failure never leaves a half-written bundle.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from shipml.errors import ArtifactIntegrityError, ShipmlError, UsageError
from shipml.files import publish_folder

__all__ = ["write_bundle", "BUNDLE_FILE"]

log = logging.getLogger(__name__)
BUNDLE_FILE = "bundle.json"
_FORMAT = "shipml.bundle"


def write_bundle(
    registry,
    ref: str,
    out_dir: str | Path,
    *,
    python: str | None = None,
    port: int = 8080,
    extras: tuple[str, ...] | list[str] = ("serve",),
    force: bool = False,
    wheel: str | Path | None = None,
) -> Path:
    """Write a deploy bundle of `ref` ("churn@production", "churn/3", "churn") to `out_dir`.

    registry: a Registry, or its URI (folder or SQLAlchemy URL; None: the default registry).
    python: the image's Python, "3.11" (default: the running minor version, which the pinned
        requirements are resolved for).
    extras: shipml extras installed in the image besides "serve" (e.g. "postgres").
    force: replace `out_dir` even when it holds something other than a previous bundle.
    wheel: a shipml wheel to ship instead of building one from the source tree.

    Returns the bundle folder. An existing bundle in `out_dir` is replaced without `force`.
    """
    from shipml.registry.store import Registry, parse_ref

    reg = registry if isinstance(registry, Registry) else Registry(registry)
    info = reg.resolve(ref)
    out = Path(out_dir).expanduser().resolve()
    _check_target(out, force=force, registry=reg)
    python = _checked_python(python)
    if not 1 <= port <= 65535:
        raise UsageError(f"bad port {port}: use 1-65535")
    text, images = _embeds_text(reg, info), _reads_images(reg, info)
    extras = sorted({"serve", *extras, *(["text"] if text else []),
                     *(["images"] if images else [])})  # fmt: skip
    _, _, alias = parse_ref(ref)
    serve_ref = f"{info.name}@{alias}" if alias else f"{info.name}/{info.version}"

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is an ordinary folder
        _write_files(tmp, reg, info, (ref, serve_ref), python, port, extras, (text, images),
                     wheel)  # fmt: skip
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("bundle of %s written to %s", info.ref, out)
    return out


def _checked_python(python: str | None) -> str:
    """The image's Python minor version (default: the running one, the pins' own)."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = python or running
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise UsageError(f"bad Python version {python!r}: give a minor version such as 3.11")
    if python != running:
        log.warning("the image uses Python %s but the pins were resolved on %s", python, running)
    return python


def _write_files(tmp: Path, reg, info, refs, python, port, extras, kinds, wheel) -> None:
    """Every file of the bundle into `tmp`. `refs`: (the reference asked for, the one served);
    `kinds`: (the model embeds text, the model reads images)."""
    from shipml.deploy.dockerfile import DOCKERIGNORE, render_dockerfile, render_readme
    from shipml.deploy.pins import IMAGE_SERVE_LEAVE_OUT, TEXT_SERVE_LEAVE_OUT, pinned_requirements
    from shipml.deploy.wheel import shipml_wheel, wheel_metadata

    ref, serve_ref = refs
    text, images = kinds
    wheel_path = shipml_wheel(tmp / "wheels", Path(wheel) if wheel else None)
    leave_out = (TEXT_SERVE_LEAVE_OUT if text or images else ()) + (
        IMAGE_SERVE_LEAVE_OUT if images else ()
    )
    pins = pinned_requirements(wheel_metadata(wheel_path), extras, leave_out=leave_out)
    torch = next((p.split("==")[1] for p in pins if p.lower().startswith("torch==")), None)
    copied = _copy_version(reg, info, tmp / "registry")
    facts = _facts(info, copied, python, wheel_path, ref)
    header = _requirements_header(extras, torch, leave_out if text else None)
    (tmp / "requirements.txt").write_text(header + "\n".join(pins) + "\n", encoding="utf-8")
    (tmp / "Dockerfile").write_text(
        render_dockerfile(
            python=python,
            wheel=wheel_path.name,
            ref=serve_ref,
            port=port,
            info=facts,
            torch=torch,
        ),
        encoding="utf-8",
    )
    (tmp / ".dockerignore").write_text(DOCKERIGNORE, encoding="utf-8")
    example = _example_record(info.schema)
    (tmp / "README.md").write_text(
        render_readme(ref=serve_ref, port=port, info=facts, example=example, extras=extras),
        encoding="utf-8",
    )
    _write_bundle_file(tmp, reg, info, serve_ref, port, facts, extras)


def _facts(info, copied, python: str, wheel_path: Path, ref: str) -> dict:
    """What the Dockerfile, the README and bundle.json say about the bundle."""
    import shipml

    return {
        "name": info.name,
        "version": info.version,
        "aliases": copied.aliases,
        "image": _image_name(info.name),
        "python": python,
        "wheel": wheel_path.name,
        "shipml_version": shipml.__version__,
        "source_ref": ref,
        "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _requirements_header(extras, torch: str | None, left_out) -> str:
    """The comment lines on top of requirements.txt (`left_out`: None, or the distributions a
    text model's image leaves out)."""
    import shipml
    from shipml.deploy.dockerfile import CPU_TORCH_INDEX

    header = (
        f"# Exact versions for {shipml.__version__} + extras [{','.join(extras)}], as "
        f"installed on Python {sys.version.split()[0]} ({sys.platform}).\n"
    )
    if torch is not None:
        header += (
            f"# torch: install its CPU build first, as the Dockerfile does: pip install "
            f"--no-deps --index-url {CPU_TORCH_INDEX} torch=={torch}\n"
        )
    if left_out is not None:
        header += "# Left out (not used to serve): " + ", ".join(left_out) + "\n"
    return header


def is_bundle(path: Path) -> bool:
    """True when `path` holds a bundle written by write_bundle."""
    try:
        data = json.loads((path / BUNDLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == _FORMAT


def _check_target(out: Path, *, force: bool, registry) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()) or is_bundle(out):
        return
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents or out == Path.home().resolve():
        raise UsageError(f"refusing to replace {out}: it holds the current folder or your home")
    root = registry.artifact_root
    if out == root or out in root.parents:
        raise UsageError(f"refusing to replace {out}: it holds the registry being bundled")
    if not force:
        raise UsageError(
            f"{out} is not empty and holds no shipml bundle: choose an empty or new folder, "
            "or pass --force to replace its contents"
        )


def _copy_version(reg, info, folder: Path):
    """Copy one version into a fresh folder registry: same name, number, aliases; read back."""
    import sqlalchemy as sa

    from shipml.model import load_model
    from shipml.registry import tables as t
    from shipml.registry.store import Registry

    source = reg.open(info)
    dest = Registry(folder, artifact_root=folder / "artifacts")
    try:
        writer = dest.writer()
        try:
            for name in sorted(source.files):
                writer.write_bytes(name, source.read_bytes(name))  # sha256-checked read
            manifest = writer.finish()
            if manifest["files"] != source.files:
                raise ArtifactIntegrityError(f"the copy of {info.ref} differs from its manifest")
            first = dest.register(
                info.name,
                writer,
                task=info.task,
                metrics=info.metrics,
                lineage=info.lineage,
                schema=info.schema,
            )
        except BaseException:
            writer.abort()
            raise
        # A fresh registry numbers its first version 1: give it the original number and date,
        # so `churn/3` means the same model inside and outside the image.
        with dest.engine.begin() as conn:
            conn.execute(
                t.versions.update()
                .where(t.versions.c.version == first.version)
                .values(version=info.version, created_at=info.created_at)
            )
        for alias in info.aliases:
            dest.set_alias(info.name, alias, info.version)
        copied = dest.get(info.name, info.version)
        reader = dest.open(copied)
        reader.verify_all()
        load_model(reader, name=copied.name, version=copied.version)  # raises if unreadable
        with dest.engine.connect() as conn:  # nothing else (e.g. keys) came along
            if conn.execute(sa.select(sa.func.count()).select_from(t.versions)).scalar() != 1:
                raise ShipmlError("the bundled registry should hold exactly one version")
        return copied
    finally:
        dest.engine.dispose()  # closes SQLite, which folds its WAL file back into registry.db


def _embeds_text(reg, info) -> bool:
    """True when the model's text columns are encoded by a sentence encoder it carries."""
    encoder = reg.open(info).read_json("encoder.json")
    return isinstance(encoder, dict) and "text_encoder" in encoder


def _reads_images(reg, info) -> bool:
    """True when the model has an image input (its network, or pixels, ride in its files)."""
    encoder = reg.open(info).read_json("encoder.json")
    return isinstance(encoder, dict) and "image_encoder" in encoder


def _example_record(schema: dict) -> dict:
    """One input record for the README's curl line, from the schema's examples (never a value
    of a column marked as personal data)."""
    from shipml.data.schema import FEATURE_KINDS

    record = {}
    for col in schema.get("columns", []):
        if col.get("kind") not in FEATURE_KINDS:
            continue
        value = col.get("example")
        if col.get("pii"):
            value = "..."
        elif col.get("kind") == "image":  # the image itself, never a path
            value = "<the image file as base64>"
        elif col.get("kind") == "numeric" and value is not None:
            try:
                number = float(value)
                value = int(number) if number.is_integer() else number
            except ValueError:
                pass
        record[col["name"]] = value
    return record


def _image_name(name: str) -> str:
    """A Docker repository name from a model name (lower case, [a-z0-9._-])."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-")
    return cleaned or "shipml-model"


def _write_bundle_file(tmp: Path, reg, info, serve_ref, port, facts, extras) -> None:
    from shipml.deploy.dockerfile import REGISTRY
    from shipml.registry.artifacts import sha256_file

    files = {
        p.relative_to(tmp).as_posix(): sha256_file(p)
        for p in sorted(tmp.rglob("*"))
        if p.is_file() and p.name != BUNDLE_FILE
    }
    data = {
        "format": _FORMAT,
        "format_version": 1,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "shipml_version": facts["shipml_version"],
        "source": {
            "registry": reg.engine.url.render_as_string(hide_password=True),
            "ref": facts["source_ref"],
        },
        "model": {
            "name": info.name,
            "version": info.version,
            "aliases": facts["aliases"],
            "task": info.task,
        },
        "serve": {"ref": serve_ref, "port": port, "registry": REGISTRY},
        "image": facts["image"],
        "python": facts["python"],
        "extras": extras,
        "wheel": f"wheels/{facts['wheel']}",
        "files": files,  # as written; the registry database changes once keys are added
    }
    (tmp / BUNDLE_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _publish(tmp: Path, out: Path) -> None:
    """Put the finished folder at `out`, replacing what is there, with renames only."""
    publish_folder(tmp, out, replace=True)
