"""Error bodies never tell a client where the server keeps its files.

`path_scrubber(registry)` returns a function that removes the server's own paths (SHIPML_HOME,
the registry's folder, its artifact root) from a message: a path under one of them becomes its
last part (``.../artifacts/credit/3f2a/model.json`` -> ``model.json``), the root alone
``<server path>``. The server applies it to every error body (app.py); logs keep full paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

__all__ = ["path_scrubber"]


def path_scrubber(reg) -> Callable[[str], str]:
    """text -> text without `reg`'s folders and SHIPML_HOME in it."""
    from shipml.config import settings

    home = settings().home.expanduser()
    roots = {str(reg.artifact_root), str(home), str(home.resolve())}
    if reg.url.startswith("sqlite:///"):
        roots.add(str(Path(reg.url[len("sqlite:///") :]).parent))
    roots = {r for r in roots if len(r) > 1}  # never "/" itself
    alternatives = "|".join(re.escape(r) for r in sorted(roots, key=len, reverse=True))
    pattern = re.compile(rf"(?:{alternatives})(?=$|[/\\\s'\"),:;])([/\\][^\s'\"(),:;]*)?")

    def short(match) -> str:
        tail = (match.group(1) or "").rstrip("/\\")
        return re.split(r"[/\\]", tail)[-1] or "<server path>"

    def scrub(text: str) -> str:
        return pattern.sub(short, text)

    return scrub
