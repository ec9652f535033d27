"""The served models: each name's registry reference, re-resolved at most once a second.

Aliases resolve at request time, so `shipml models promote` takes effect without a restart; a
request holds the Model object it started with, so in-flight requests finish on the old version.

A target that cannot be loaded (files that fail their manifest, a model that does not parse, an
alias moved by a process that skipped `promote`'s checks) does not take the server down: it
keeps serving the version it has, logs the failure once per target, reports it through
`on_failure` (the server counts it in /metrics) and tries that target again every `retry_s`
seconds, not on every request. A name with no loaded version at all answers 503
(ModelUnavailable): the server is at fault, not the client.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shipml.errors import ModelNotFound, ModelUnavailable, ShipmlError, UsageError

__all__ = ["ModelPool", "ModelUnavailable"]

log = logging.getLogger("shipml.serve")
_RESOLVE_TTL_S = 1.0
RETRY_S = 30.0


@dataclass
class _Entry:
    ref: str
    version: int | None = None
    model: object = None
    checked: float = -1e9
    retry_at: dict[int, float] = field(default_factory=dict)  # failed version -> next attempt


@dataclass
class ModelPool:
    """Served models by name; each resolves its registry reference when stale. `clock`: a
    monotonic clock in seconds, injectable for tests."""

    registry: object
    refs: dict[str, str]
    on_load: Callable[[str, int, float], None] | None = None  # (name, version, seconds)
    on_failure: Callable[[str, int], None] | None = None  # (name, version) that did not load
    clock: Callable[[], float] = time.monotonic
    retry_s: float = RETRY_S
    entries: dict[str, _Entry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_refs(cls, registry, refs: list[str], on_load=None, on_failure=None) -> "ModelPool":
        from shipml.registry.store import parse_ref

        by_name = {}
        for ref in refs:
            name, _, _ = parse_ref(ref)
            if name in by_name:
                raise UsageError(f"model {name!r} is given twice ({by_name[name]}, {ref})")
            by_name[name] = ref
        pool = cls(registry, by_name, on_load, on_failure)
        for name, ref in by_name.items():
            registry.resolve(ref)  # a bad reference fails at start, not on first request
            with contextlib.suppress(ModelUnavailable):  # logged and counted: 503 until it loads
                pool.get(name)  # load now
        return pool

    def get(self, name: str) -> tuple:
        """(model, version) for a served name, reloading when its alias moved."""
        if name not in self.refs:
            known = ", ".join(sorted(self.refs)) or "none"
            raise ModelNotFound(f"model {name!r} is not served here (served: {known})")
        now = self.clock()
        entry = self.entries.get(name)
        if entry is not None and entry.model is not None and now - entry.checked < _RESOLVE_TTL_S:
            return entry.model, entry.version
        with self.lock:
            entry = self.entries.setdefault(name, _Entry(self.refs[name]))
            if now - entry.checked >= _RESOLVE_TTL_S:
                entry.checked = now
                self._refresh(name, entry, now)
            if entry.model is None:
                raise ModelUnavailable(
                    f"model {name!r} has no version this server can load (see the server log); "
                    f"it tries again every {self.retry_s:g} s"
                )
            return entry.model, entry.version

    def _refresh(self, name: str, entry: _Entry, now: float) -> None:
        """Follow the reference to its current version, keeping the loaded one on failure."""
        import sqlalchemy as sa

        try:
            info = self.registry.resolve(entry.ref)
        except (ShipmlError, sa.exc.SQLAlchemyError) as exc:
            if entry.model is None:
                raise
            log.warning("cannot resolve %s (%s): still serving version %s",
                        entry.ref, exc, entry.version)  # fmt: skip
            return
        if info.version == entry.version or entry.retry_at.get(info.version, now) > now:
            return
        try:
            model = self._load(info)
        except Exception as exc:  # any reason: the server must keep what it has
            self._failed(name, entry, info, exc, now)
            return
        entry.model, entry.version = model, info.version
        entry.retry_at.pop(info.version, None)

    def _failed(self, name: str, entry: _Entry, info, exc: Exception, now: float) -> None:
        first = info.version not in entry.retry_at
        entry.retry_at[info.version] = now + self.retry_s
        keeping = f"still serving version {entry.version}" if entry.model else "nothing to serve"
        (log.warning if first else log.debug)(
            "cannot load %s (%s: %s): %s; trying again in %g s",
            info.ref, type(exc).__name__, exc, keeping, self.retry_s,
        )  # fmt: skip
        if self.on_failure is not None:
            self.on_failure(name, info.version)

    def _load(self, info):
        from shipml.model import Model

        started = time.perf_counter()
        # requests rarely repeat a text: no shard of customers' embeddings per request on disk
        reader = self.registry.open(info)
        reader.verify_all()  # every file, now: not a lazily read one failing mid-request
        model = Model.read(reader, name=info.name, version=info.version, cache=False)
        seconds = time.perf_counter() - started
        log.info("loaded %s in %.0f ms", info.ref, 1000 * seconds)
        if self.on_load is not None:
            self.on_load(info.name, info.version, seconds)
        return model
