"""An on-disk cache of sentence embeddings: training the same texts again (another budget, another
target, `evaluate` after `train`) does not run the transformer again.

Layout: ``<SHIPML_HOME>/cache/embeddings/<encoder id>/<shard>.keys.npy`` (sha256 digests of the
texts, dtype S32) beside ``<shard>.vectors.npy`` (float32 rows) and ``<shard>.truncated.npy``
(whether the text was cut to the encoder's window, so a cached run reports the same counts).
NumPy arrays only, loaded with allow_pickle=False. Each write is a new shard (keys last, each
file renamed into place), so concurrent processes never see half a shard and never need a lock.
A cache past ``MAX_BYTES`` takes no new shards: it stays correct, it only stops growing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from pathlib import Path

import numpy as np

from shipml.files import atomic_write, npy_bytes

__all__ = ["EmbeddingCache", "text_key", "MAX_BYTES"]

log = logging.getLogger(__name__)
MAX_BYTES = 2 << 30


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Vectors by text for one encoder (its id names the folder)."""

    def __init__(self, folder: Path, dim: int) -> None:
        self.folder = Path(folder)
        self.dim = dim
        self._index: dict[bytes, tuple[np.ndarray, bool]] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def root(root: Path | None = None) -> Path:
        if root is None:
            from shipml.config import settings

            root = settings().home.expanduser() / "cache"
        return Path(root) / "embeddings"

    @classmethod
    def seen_by_any(cls, keys: list[bytes], share: float = 0.5, root: Path | None = None) -> bool:
        """Do the caches of all encoders together hold at least `share` of `keys`? Reads only
        the shards' keys (32 bytes a text): a cheap question to ask before loading an encoder."""
        wanted, found = set(keys), set()
        for keys_path in cls.root(root).glob("*/*.keys.npy"):
            try:
                found.update(wanted.intersection(np.load(keys_path, allow_pickle=False).tolist()))
            except (OSError, ValueError):
                continue
            if len(found) >= share * len(wanted):
                return True
        return False

    @classmethod
    def for_encoder(cls, encoder_id: str, dim: int, root: Path | None = None) -> EmbeddingCache:
        return cls(cls.root(root) / encoder_id[:32], dim)

    def _load(self) -> dict[bytes, tuple[np.ndarray, bool]]:
        if self._index is not None:
            return self._index
        index: dict[bytes, tuple[np.ndarray, bool]] = {}
        for keys_path in sorted(self.folder.glob("*.keys.npy")):
            shard = keys_path.name[: -len(".keys.npy")]
            try:
                keys = np.load(keys_path, allow_pickle=False)
                vectors = np.load(self.folder / f"{shard}.vectors.npy", allow_pickle=False)
                cut = np.load(self.folder / f"{shard}.truncated.npy", allow_pickle=False)
            except (OSError, ValueError) as exc:  # a damaged shard is skipped, never trusted
                log.warning("embedding cache: skipping %s (%s)", keys_path.name, exc)
                continue
            n = len(keys)
            if keys.dtype != np.dtype("S32") or vectors.shape != (n, self.dim) or len(cut) != n:
                log.warning("embedding cache: skipping %s (unexpected shape)", keys_path.name)
                continue
            for k, v, c in zip(keys.tolist(), vectors, cut.tolist()):
                index[k] = (v, bool(c))
        self._index = index
        return index

    def get(self, keys: list[bytes]) -> dict[bytes, tuple[np.ndarray, bool]]:
        """The cached (vector, truncated) among `keys`."""
        with self._lock:
            index = self._load()
            return {k: index[k] for k in keys if k in index}

    def put(self, keys: list[bytes], vectors: np.ndarray, truncated: np.ndarray) -> None:
        """Store new rows as one shard (skipped, with a log line, when the cache is full)."""
        if not keys:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        truncated = np.asarray(truncated, dtype=bool)
        with self._lock:
            index = self._load()
            if self.size_bytes() > MAX_BYTES:
                log.info("embedding cache %s is full; not adding %d texts", self.folder, len(keys))
            else:
                self._write_shard(np.array(keys, dtype="S32"), vectors, truncated)
            for k, v, c in zip(keys, vectors, truncated.tolist()):
                index[k] = (v, c)

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray, truncated: np.ndarray) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            shard = uuid.uuid4().hex
            arrays = (("vectors", vectors), ("truncated", truncated), ("keys", keys))
            for suffix, array in arrays:  # keys last: a shard with keys is complete
                atomic_write(self.folder / f"{shard}.{suffix}.npy", npy_bytes(array))
        except OSError as exc:  # a read-only home must not fail training or prediction
            log.warning("embedding cache: cannot write to %s (%s)", self.folder, exc)

    def size_bytes(self) -> int:
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.glob("*.npy"))
