"""The torch side of a sentence encoder: one module mapping (input_ids, attention_mask) to
L2-normalized sentence vectors, which inference, fine-tuning and the ONNX export all call.

`SentenceStack` runs every module of a sentence-transformers model in order (Transformer,
Pooling in any mode, Dense, Normalize, ...), exactly as `SentenceTransformer.forward` does,
then applies the model's `truncate_dim` and normalizes: the vectors of
`SentenceTransformer.encode(texts, normalize_embeddings=True)`, which is plain `encode()` for a
model whose last module is Normalize (all-MiniLM-L6-v2 and most others).

`PooledTransformer` is how models saved before shipml used sentence-transformers stored their
encoder (a transformers model, mean or CLS pooling); it is kept so that they load and predict
as they did.

This module imports torch: import it inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch

__all__ = ["SentenceStack", "PooledTransformer", "pool", "describe", "stored_files"]


class SentenceStack(torch.nn.Module):
    """A `SentenceTransformer` as (input_ids, attention_mask) -> L2-normalized vectors."""

    def __init__(self, model) -> None:
        from sentence_transformers.sentence_transformer.modules import Normalize

        super().__init__()
        self.model = model  # the SentenceTransformer (an nn.Sequential of its modules)
        self.truncate_dim = model.truncate_dim
        # a model ending in Normalize (and not truncated after it) is normalized already
        self.normalize = bool(self.truncate_dim) or not isinstance(model[-1], Normalize)

    def forward(self, input_ids, attention_mask):
        features = self.model({"input_ids": input_ids, "attention_mask": attention_mask})
        vectors = features["sentence_embedding"]
        if self.truncate_dim:
            vectors = vectors[..., : self.truncate_dim]
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        return vectors


class PooledTransformer(torch.nn.Module):
    """A transformers model with mean or first-token ([CLS]) pooling: the old stored layout."""

    def __init__(self, model, pooling: str) -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling

    def forward(self, input_ids, attention_mask):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
        return pool(hidden, attention_mask, self.pooling)


def pool(hidden, mask, pooling: str):
    """Sentence vectors from token vectors: the mean over real tokens, or the first ([CLS])
    token; L2-normalized (the old layout's pooling)."""
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


_PATH_KEYS = {"_name_or_path", "name_or_path", "transformers_version", "_commit_hash"}


def describe(model) -> list[dict]:
    """What, besides weights and tokenizer, decides a sentence-transformers model's vectors: each
    module's class and settings (pooling mode, Dense activation, ...), the transformer's config
    (as its sha256, without the folder it came from) and the model-level `truncate_dim`."""
    modules = []
    for module in model:
        kind = f"{type(module).__module__}.{type(module).__name__}"
        entry = {"type": kind, "config": _jsonable(module.get_config_dict())}
        inner = getattr(module, "auto_model", None)
        if inner is not None:
            config = {k: v for k, v in inner.config.to_dict().items() if k not in _PATH_KEYS}
            text = json.dumps(config, sort_keys=True, default=str)
            entry["model_config_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        modules.append(entry)
    if model.truncate_dim:
        modules.append({"type": "truncate_dim", "config": {"dim": int(model.truncate_dim)}})
    return modules


def _jsonable(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def stored_files(stack) -> dict[str, bytes] | None:
    """{path in the folder: bytes} of the sentence-transformers folder that `save()` writes for
    the stack's model (safetensors weights, no model card); None for the old layout."""
    if not isinstance(stack, SentenceStack):
        return None
    with tempfile.TemporaryDirectory(prefix="shipml-encoder-") as tmp:
        stack.model.save(tmp, create_model_card=False, safe_serialization=True)
        files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
        return {p.relative_to(tmp).as_posix(): p.read_bytes() for p in files}
