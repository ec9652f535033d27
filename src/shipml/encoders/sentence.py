"""SentenceEncoder: texts in, one L2-normalized float32 vector per text out.

The model is a sentence-transformers model (loading.py loads folders with sentence-transformers
itself): every module it lists runs, in order (Transformer, Pooling in any mode, Dense,
Normalize, ...), on the CPU, as one torch module from (input_ids, attention_mask) to normalized
vectors (stack.py). Texts longer than the model's window are truncated and counted; empty and
missing texts get the zero vector (no information) without running the model.

Speed on a small CPU comes from three things: texts are sorted by length so a batch carries
almost no padding, each distinct text is encoded once, and an on-disk cache (cache.py) remembers
vectors of earlier calls by the encoder's id (its weights, tokenizer and every module's
settings) and the text's sha256.

The encoder saves itself as data (`artifacts()`): the sentence-transformers folder as
sentence-transformers saves it (safetensors weights, JSON settings, tokenizer files) and the
fast tokenizer's JSON; `loading.from_artifacts` rebuilds it. The torch modules load on first
use only, so reading a registered model stays cheap until it predicts. Fine-tuning and other
runtimes (ONNX) plug in by replacing `module` (or `runtime`) and re-saving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from shipml.encoders import deps
from shipml.encoders.cache import EmbeddingCache, text_key

__all__ = [
    "SentenceEncoder",
    "EncodeReport",
    "EncodeStopped",
    "as_text",
    "char_cap",
    "CHARS_PER_TOKEN",
    "encoder_id",
    "padded",
    "weights_id",
]

log = logging.getLogger(__name__)
# A token is at most about this many characters: a text longer than CHARS_PER_TOKEN times the
# window's tokens is truncated, so the characters past that cost nothing to encode.
CHARS_PER_TOKEN = 8


def char_cap(max_length: int) -> int:
    """The characters of one text that an encoder with a `max_length`-token window reads, at
    most: what every projection of encoding time counts a text as."""
    return CHARS_PER_TOKEN * max_length


class EncodeStopped(Exception):
    """Encoding passed the encoder's `deadline` (checked between batches): the `texts` done
    (of `total` distinct ones), with their `vectors` and truncation flags, kept in the cache."""

    def __init__(self, texts: list[str], vectors: np.ndarray, cut: np.ndarray, total: int):
        super().__init__(f"stopped at the deadline after {len(texts):,} of {total:,} texts")
        self.texts, self.vectors, self.cut, self.total = texts, vectors, cut, total


_BATCH = 64  # texts per forward pass
_BATCH_TOKENS = 8192  # and at most this many tokens (long texts: smaller batches)
CACHE_MIN_TEXTS = 32  # smaller calls (a server's single rows) skip the disk cache


@dataclass
class EncodeReport:
    """What one or more `encode` calls did: counts for notes and tests."""

    texts: int = 0
    empty: int = 0  # missing, blank or non-text values: zero vector
    truncated: int = 0  # distinct texts longer than the window, cut to `max_length` tokens
    cached: int = 0  # distinct texts found in the cache
    computed: int = 0  # distinct texts run through the model
    seconds: float = 0.0

    def notes(self, column: str, max_length: int) -> list[str]:
        out = []
        if self.truncated:
            out.append(
                f"column '{column}': {self.truncated} text(s) longer than the encoder's window "
                f"of {max_length} tokens were truncated"
            )
        if self.empty:
            out.append(f"column '{column}': {self.empty} empty or missing text(s) left blank")
        return out


def encoder_id(weights_sha: str, tokenizer_sha: str, settings: dict) -> str:
    """What identifies an encoder's output: its weights, tokenizer and pooling settings."""
    canon = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(f"{weights_sha}:{tokenizer_sha}:{canon}".encode()).hexdigest()


def weights_id(module, tokenizer, settings: dict) -> str:
    """`encoder_id` of a torch module and a `tokenizers.Tokenizer` (as configured for use)."""
    return encoder_id(_weights_sha(module), _sha(tokenizer.to_str().encode()), settings)


def _weights_sha(module) -> str:
    """sha256 of every tensor of `module` (name, dtype, shape, bytes), in name order."""
    torch = deps.torch()
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


class SentenceEncoder:
    """Encodes texts with a transformer. Build one with `shipml.encoders.load_encoder`.

    `settings`: max_length (tokens, [CLS]/[SEP] included), dim, pad_id, and what else decides
    the vectors (`modules`: each sentence-transformers module's settings; `pooling` in the old
    stored layout). `loader()` returns (torch module, tokenizers.Tokenizer) on first use: the
    module maps (input_ids, attention_mask) to normalized vectors (stack.py).
    """

    def __init__(
        self,
        loader: Callable[[], tuple[object, object]],
        *,
        settings: dict,
        id: str,
        source: str,
        use_cache: bool = True,
        runtime=None,
        tokenizer_loader: Callable[[], object] | None = None,
    ) -> None:
        self._loader = loader
        self.runtime = runtime  # OnnxRuntime (onnx.py) in place of the torch module, or None
        self._tokenizer_loader = tokenizer_loader  # the tokenizer alone, without torch
        self.settings = dict(settings)
        self.id = id
        self.source = source
        self.use_cache = use_cache
        self._module = None
        self._tokenizer = None
        self._cache: EmbeddingCache | None = None
        # Seconds per character of text, measured by the first estimate_seconds; set it to
        # make every estimate (and the choices made on them) independent of machine speed.
        self.seconds_per_char: float | None = None
        # A time.monotonic() after which encode() stops between batches (EncodeStopped): the
        # training budget's; None for predictions.
        self.deadline: float | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<SentenceEncoder {self.source} dim={self.dim} max_length={self.max_length} "
            f"runtime={self.runtime_kind}>"
        )

    @property
    def runtime_kind(self) -> str:
        return self.runtime.kind if self.runtime is not None else "pytorch"

    # -- facts -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.settings["dim"])

    @property
    def max_length(self) -> int:
        return int(self.settings["max_length"])

    # -- lazy parts --------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._module is not None:
            return
        with self._lock:  # a server's first requests may arrive together: load once
            if self._module is None:
                module, tokenizer = self._loader()
                if self._tokenizer is None:
                    tokenizer.no_padding()
                    tokenizer.enable_truncation(self.max_length)
                    self._tokenizer = tokenizer
                self._module = module.eval()

    @property
    def module(self):
        """The torch module, (input_ids, attention_mask) -> normalized vectors: every module
        of the sentence-transformers model (stack.py). Loaded on first access."""
        self._ensure_loaded()
        return self._module

    @property
    def tokenizer(self):
        """The `tokenizers.Tokenizer`, truncating at `max_length` (loaded on first access)."""
        if self._tokenizer is None and self._tokenizer_loader is not None:
            with self._lock:
                if self._tokenizer is None:
                    tokenizer = self._tokenizer_loader()
                    tokenizer.no_padding()
                    tokenizer.enable_truncation(self.max_length)
                    self._tokenizer = tokenizer
        if self._tokenizer is None:
            self._ensure_loaded()
        return self._tokenizer

    @property
    def cache(self) -> EmbeddingCache | None:
        if self.use_cache and self._cache is None:
            self._cache = EmbeddingCache.for_encoder(self.id, self.dim)
        return self._cache if self.use_cache else None

    # -- encoding ----------------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[object],
        *,
        batch_size: int = _BATCH,
        report: EncodeReport | None = None,
    ) -> np.ndarray:
        """(n, dim) float32, rows of unit length (zero rows for empty or missing texts)."""
        started = time.monotonic()
        report = report if report is not None else EncodeReport()
        cleaned = [as_text(t) for t in texts]
        out = np.zeros((len(cleaned), self.dim), dtype=np.float32)
        rows: dict[str, list[int]] = {}
        for i, text in enumerate(cleaned):
            if text:
                rows.setdefault(text, []).append(i)
        report.texts += len(cleaned)
        report.empty += len(cleaned) - sum(len(r) for r in rows.values())
        unique = list(rows)
        vectors: dict[str, np.ndarray] = {}
        cache = self.cache if len(unique) >= CACHE_MIN_TEXTS else None
        keys = {}
        if cache is not None:
            keys = {t: text_key(t) for t in unique}
            found = cache.get(list(keys.values()))
            for t in unique:
                if keys[t] in found:
                    vectors[t], cut = found[keys[t]]
                    report.truncated += cut
            report.cached += len(vectors)
        todo = [t for t in unique if t not in vectors]
        if todo:
            try:
                computed, cut = self._compute(todo, batch_size)
            except EncodeStopped as stopped:
                if cache is not None and stopped.texts:  # the next run starts from them
                    cache.put([keys[t] for t in stopped.texts], stopped.vectors, stopped.cut)
                raise
            report.computed += len(todo)
            report.truncated += int(cut.sum())
            vectors.update(zip(todo, computed))
            if cache is not None:
                cache.put([keys[t] for t in todo], computed, cut)
        for text, idx in rows.items():
            out[idx] = vectors[text]
        report.seconds += time.monotonic() - started
        return out

    def tokenize(self, texts: list[str]) -> list:
        """`tokenizers.Encoding` per text, truncated to the window."""
        return self.tokenizer.encode_batch(texts)

    def _compute(self, texts: list[str], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, truncated flags) of distinct non-empty texts."""
        encodings = self.tokenize(texts)
        truncated = np.array([bool(e.overflowing) for e in encodings], dtype=bool)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        done: list[int] = []
        for batch in _batches(order, lengths, batch_size):
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise EncodeStopped([texts[i] for i in done], out[done], truncated[done],
                                    len(texts))  # fmt: skip
            out[batch] = self._forward([encodings[i] for i in batch])
            done.extend(int(i) for i in batch)
        return out, truncated

    def _forward(self, encodings: list) -> np.ndarray:
        """One padded batch through the model: pooled, normalized vectors."""
        ids, mask = padded([e.ids for e in encodings], int(self.settings.get("pad_id", 0)))
        if self.runtime is not None:
            return self.runtime.forward(ids, mask)
        torch = deps.torch()
        ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
        with torch.inference_mode():
            vectors = self.module(ids_t, mask_t)
        return vectors.float().numpy()

    def estimate_seconds(
        self, texts: Sequence[object], *, sample: int = 64, cached: bool = True
    ) -> float:
        """Projected seconds to encode the distinct texts of `texts` that the cache lacks.

        Measured on a random sample: seconds per token the model actually ran (padding
        included), times the texts' tokens estimated from their characters. The real run pads
        almost nothing (texts sorted by length), so per padded token is the honest rate.
        `cached=False`: as if nothing were cached (weights about to change)."""
        unique = list(dict.fromkeys(t for t in (as_text(x) for x in texts) if t))
        cache = self.cache if cached and len(unique) >= CACHE_MIN_TEXTS else None
        if cache is not None:
            keys = [text_key(t) for t in unique]
            found = cache.get(keys)
            unique = [t for t, k in zip(unique, keys) if k not in found]
        if not unique:
            return 0.0
        cap = char_cap(self.max_length)  # characters beyond the window cost nothing
        if self.seconds_per_char is None:  # measured once per encoder: then free
            self.seconds_per_char = self._measure_per_char(unique, sample, cap)
        return self.seconds_per_char * sum(min(len(t), cap) for t in unique)

    def _measure_per_char(self, unique: list[str], sample: int, cap: int) -> float:
        rng = np.random.default_rng(0)
        picked = [unique[i] for i in rng.choice(len(unique), min(sample, len(unique)), False)]
        self._forward(self.tokenize(picked[:2]))  # the first call pays one-off setup
        encodings = self.tokenize(picked)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        padded = sum(len(b) * int(lengths[b].max()) for b in _batches(order, lengths, 32))
        t0 = time.monotonic()
        self._compute(picked, 32)
        per_token = (time.monotonic() - t0) / padded
        return per_token * lengths.sum() / sum(min(len(t), cap) for t in picked)

    @property
    def weights_bytes(self) -> int:
        """Bytes of the encoder's weights (what storing it, or exporting it, handles)."""
        return int(sum(t.numel() * t.element_size() for t in self.module.state_dict().values()))

    def with_weights(self, module, *, source: str) -> SentenceEncoder:
        """The same tokenizer and settings with other weights (e.g. fine-tuned): a new id, so
        cached embeddings of the old weights are never mistaken for the new ones."""
        tokenizer = self.tokenizer
        ident = weights_id(module, tokenizer, self.settings)
        tuned = SentenceEncoder(
            lambda: (module, tokenizer),
            settings=self.settings,
            id=ident,
            source=source,
            use_cache=self.use_cache,
        )
        tuned.seconds_per_char = self.seconds_per_char  # same architecture, same speed
        return tuned

    def with_onnx(self, model: bytes, *, kind: str = "onnx-int8") -> SentenceEncoder:
        """The same tokenizer and settings running an ONNX graph of this encoder (onnx.py);
        a new id, so the embedding cache never mixes vectors of two runtimes."""
        from shipml.encoders.onnx import OnnxRuntime

        tokenizer = self.tokenizer
        ident = encoder_id(_sha(model), _sha(tokenizer.to_str().encode()), self.settings)
        return SentenceEncoder(
            self._loader,
            settings=self.settings,
            id=ident,
            source=self.source,
            use_cache=self.use_cache,
            runtime=OnnxRuntime(model, kind),
            tokenizer_loader=lambda: tokenizer,
        )

    # -- storage -----------------------------------------------------------------------------
    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        """(meta JSON, {file name: bytes | str}): the sentence-transformers folder as its own
        `save()` writes it (safetensors weights, JSON settings, tokenizer files; listed in
        `meta["files"]` by their path in the folder), and the fast tokenizer's JSON (what the
        ONNX runtime needs without torch). Nothing executable."""
        from shipml.encoders.stack import stored_files

        module = self.module
        meta = {"id": self.id, "source": self.source, "settings": self.settings,
                "tokenizer": f"{prefix}.tokenizer.json"}  # fmt: skip
        files = {f"{prefix}.tokenizer.json": self.tokenizer.to_str()}
        stored = stored_files(module)
        if stored is None:  # the old layout (a model saved before): saved as it was read
            st = deps.safetensors_torch()
            files[f"{prefix}.safetensors"] = st.save(_state_dict(module.model))
            files[f"{prefix}.config.json"] = json.dumps(module.model.config.to_dict(),
                                                        sort_keys=True)  # fmt: skip
            meta.update(weights=f"{prefix}.safetensors", config=f"{prefix}.config.json")
        else:
            meta["files"] = {}
            for relative, data in stored.items():
                name = f"{prefix}.st.{relative.replace('/', '.')}"
                if name in files:
                    raise ValueError(f"two encoder files would be stored as {name!r}")
                files[name] = data
                meta["files"][relative] = name
        if self.runtime is not None:  # the graph that predicts; the weights stay for PyTorch
            files[f"{prefix}.onnx"] = self.runtime.model
            meta.update(onnx=f"{prefix}.onnx", runtime=self.runtime.kind)
        return meta, files


def padded(token_ids: list, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) int64 arrays of token id lists, right-padded to the longest."""
    width = max(len(t) for t in token_ids)
    ids = np.full((len(token_ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for i, t in enumerate(token_ids):
        ids[i, : len(t)] = t
        mask[i, : len(t)] = 1
    return ids, mask


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _state_dict(module) -> dict:
    return {k: v.detach().contiguous() for k, v in module.state_dict().items()}


def as_text(value: object) -> str:
    """A cell as text: missing (None, NaN, pd.NA) -> ""; numbers and others via str()."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and math.isnan(value):
        return ""
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pass
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


def _batches(order: np.ndarray, lengths: np.ndarray, batch_size: int):
    """Consecutive slices of `order` (sorted by length) within the text and token limits."""
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and end - start < batch_size:
            if (end - start + 1) * lengths[order[end]] > _BATCH_TOKENS:
                break
            end += 1
        yield order[start:end]
        start = end
