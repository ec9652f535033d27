"""The served models: each name's registry reference, re-resolved at most once a second.

Aliases resolve at request time, so `shipml models promote` takes effect without a restart; a
request holds the Model object it started with, so in-flight requests finish on the old version.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shipml.errors import ModelNotFound, ShipmlError

__all__ = ["ModelPool"]

log = logging.getLogger("shipml.serve")
_RESOLVE_TTL_S = 1.0


@dataclass
class _Entry:
    ref: str
    version: int | None = None
    model: object = None
    checked: float = -1e9


@dataclass
class ModelPool:
    """Served models by name; each resolves its registry reference when stale."""

    registry: object
    refs: dict[str, str]
    on_load: Callable[[str, int, float], None] | None = None  # (name, version, seconds)
    entries: dict[str, _Entry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_refs(cls, registry, refs: list[str], on_load=None) -> "ModelPool":
        from shipml.registry.store import parse_ref

        by_name = {}
        for ref in refs:
            name, _, _ = parse_ref(ref)
            if name in by_name:
                raise ShipmlError(f"model {name!r} is given twice ({by_name[name]}, {ref})")
            by_name[name] = ref
        pool = cls(registry, by_name, on_load)
        for name in by_name:
            pool.get(name)  # load now: a bad reference fails at start, not on first request
        return pool

    def get(self, name: str) -> tuple:
        """(model, version) for a served name, reloading when its alias moved."""
        if name not in self.refs:
            known = ", ".join(sorted(self.refs)) or "none"
            raise ModelNotFound(f"model {name!r} is not served here (served: {known})")
        now = time.monotonic()
        entry = self.entries.get(name)
        if entry is not None and now - entry.checked < _RESOLVE_TTL_S:
            return entry.model, entry.version
        with self.lock:
            entry = self.entries.setdefault(name, _Entry(self.refs[name]))
            if now - entry.checked >= _RESOLVE_TTL_S:
                info = self.registry.resolve(entry.ref)
                if info.version != entry.version:
                    entry.model, entry.version = self._load(info), info.version
                entry.checked = now
            return entry.model, entry.version

    def _load(self, info):
        from shipml.model import Model

        started = time.perf_counter()
        # requests rarely repeat a text: no shard of customers' embeddings per request on disk
        reader = self.registry.open(info)
        model = Model.read(reader, name=info.name, version=info.version, cache=False)
        seconds = time.perf_counter() - started
        log.info("loaded %s in %.0f ms", info.ref, 1000 * seconds)
        if self.on_load is not None:
            self.on_load(info.name, info.version, seconds)
        return model
