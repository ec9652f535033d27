"""A multi-layer-perceptron family for the tabular search: TabM (Gorishniy et al., ICLR 2025).

TabM is one MLP that carries k lightly different copies of itself (BatchEnsemble-style
adapters, "tabm-mini": one per-member scaling of the input, the rest shared), trained together
and averaged. Its default variant, TabM-mini with piecewise-linear embeddings of the numbers,
is among the strongest tabular models of the paper's benchmark without a hyper-parameter search.
The model is the authors' package (`tabm`, with `rtdl_num_embeddings` for the embeddings); this
module adds what the package leaves to the user: the preprocessing of shipml's encoded matrix,
the training loop (AdamW, early stopping on each fold's validation rows, a deadline), exact
contributions and storage as safetensors.

- Numbers: missing -> the training median plus a missing-indicator feature; robust scaling
  (median, IQR / 1.349) and RealMLP's smooth clipping x / sqrt(1 + (x / 3)^2), so one extreme
  value cannot saturate the network; then piecewise-linear embeddings on quantile bins.
- Categories (the Encoder's integer codes): one-hot, as TabM does; code 0 is "missing or not
  seen in training", so an unknown value at prediction time is a defined input.
- Raw scores live in the same spaces as LightGBMFitted (log-odds, per-class scores, the
  transformed target): the k members' outputs are averaged as raw scores (the paper averages
  probabilities; raw scores keep contributions additive), and the fold networks are averaged
  like fold boosters, so an ensemble can average families.
- Contributions: integrated gradients (Sundararajan et al. 2017) from the training rows' mean
  representation, summed per encoded feature; whatever the integral's discretization misses is
  put in the bias column, so every row sums exactly to raw(X).

The sizes below are TabM's defaults scaled down for 2 shared CPU cores: k=8 members of width 128
instead of 32 of 512 (a step costs about k x width^2). That is a CPU trade-off, not a tuned
value; benchmarks/mlp.py measures what it gives next to LightGBM.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from shipml._lazy import n_threads
from shipml.data.split import ValidationPlan
from shipml.learners.base import (
    Budget,
    Candidate,
    Config,
    TrainData,
    balanced_weights,
    prior_offset,
)
from shipml.learners.columns import column_kinds

__all__ = ["available", "CONFIGS", "fit_on_folds", "MLPFitted", "MLPFamily", "MLP"]

INSTALL_HINT = 'the MLP family needs PyTorch and tabm: pip install "shipml[text]"'
_NEEDS = ("torch", "tabm", "rtdl_num_embeddings")
_IG_STEPS = 16  # midpoint Riemann steps of the integrated-gradients path
_CHUNK = 4096  # rows per forward pass when predicting
_SHARE = 0.35  # of the search time left when it starts: the MLP's, the rest stays LightGBM's

CONFIGS: list[dict] = [
    {
        "arch_type": "tabm-mini",
        "k": 8,
        "n_blocks": 2,
        "d_block": 128,
        "dropout": 0.1,
        "d_embedding": 16,
        "n_bins": 48,
        "lr": 2e-3,
        "weight_decay": 3e-4,
        "batch_size": 0,  # 0: 256 rows, 512 above 20,000 training rows (the paper's choice)
        "patience": 16,
        "max_epochs": 300,
        "class_weight": "none",
        "target_transform": "none",
    }
]


def available() -> str | None:
    """None when PyTorch, tabm and rtdl_num_embeddings are installed, else the note the search
    shows when skipping. They are looked up, not imported: PyTorch loads when a fit starts, so a
    search that never fits the MLP does not pay for it."""
    from importlib.util import find_spec

    if any(find_spec(name) is None for name in _NEEDS):
        return INSTALL_HINT
    return None


def _torch():
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin
    import torch

    return torch


@contextlib.contextmanager
def _torch_session(seed: int | None = None):
    """At most 2 threads (these matrices are small; more threads on shared cores cost more
    than they give), and a private random state seeded with `seed`, so that a fit is
    deterministic and leaves the caller's torch RNG as it was."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, n_threads()))
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield torch
    finally:
        torch.set_num_threads(before)


# -- preprocessing: encoded matrix -> (numbers, category codes) --------------------------------
@dataclass
class _Prep:
    numeric: list[int]  # encoded columns that are numbers
    flagged: list[int]  # numbers that had missing values in training: add an indicator
    categorical: list[int]
    cardinalities: list[int]  # per categorical column: codes seen + 1 (0 = missing/unseen)
    median: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, categorical: list[int]) -> _Prep:
        kinds = column_kinds(X, categorical)
        numeric = kinds.numeric
        Xn = X[:, numeric]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            q = np.nanquantile(Xn, [0.25, 0.5, 0.75], axis=0) if numeric else np.zeros((3, 0))
            q25, med, q75 = q
            std = np.nanstd(Xn, axis=0)
        scale = (q75 - q25) / 1.349  # IQR of a normal distribution is 1.349 sigma
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, np.nan_to_num(std))
        scale = np.where(scale > 1e-12, scale, 1.0)
        card = [n + 1 for n in kinds.n_codes]  # code 0: missing or unseen
        return cls(numeric, kinds.flagged, kinds.categorical, card, np.nan_to_num(med), scale)

    @property
    def n_num(self) -> int:
        return len(self.numeric) + len(self.flagged)

    def numbers(self, X: np.ndarray) -> np.ndarray:
        Xn = X[:, self.numeric]
        z = (np.where(np.isnan(Xn), self.median, Xn) - self.median) / self.scale
        z = z / np.sqrt(1.0 + (z / 3.0) ** 2)  # smooth clipping to (-3, 3)
        return np.column_stack([z, np.isnan(X[:, self.flagged])]).astype(np.float32)

    def codes(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), len(self.categorical)), dtype=np.int64)
        for i, (j, card) in enumerate(zip(self.categorical, self.cardinalities)):
            c = X[:, j]
            ok = ~np.isnan(c) & (c >= 0) & (c < card - 1)
            out[ok, i] = c[ok].astype(np.int64) + 1
        return out

    def groups(self, d_embedding: int) -> np.ndarray:
        """The encoded column of each dimension of the flat representation the MLP reads."""
        parts = [np.repeat(self.numeric + self.flagged, d_embedding)]
        parts += [np.full(card, j) for j, card in zip(self.categorical, self.cardinalities)]
        return np.concatenate(parts).astype(np.int64)

    def to_meta(self) -> dict:
        keys = ("numeric", "flagged", "categorical", "cardinalities")
        return {k: getattr(self, k) for k in keys}


def _quantile_bins(Z: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Bin edges per number for the piecewise-linear embedding: training quantiles (the
    paper's unsupervised variant: no target information enters the preprocessing)."""
    bins = []
    for v in Z.T:
        # unique in float32, the network's precision: the edges must increase strictly
        edges = np.unique(np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1)).astype(np.float32))
        if len(edges) < 3:  # constant or two-valued: two even bins over its range
            lo, hi = float(v.min()), float(v.max())
            lo, hi = (lo - 1.0, hi + 1.0) if hi - lo < 1e-6 else (lo, hi)
            edges = np.linspace(lo, hi, 3)
        bins.append(edges.astype(np.float32))
    return bins


# -- one fold's network -----------------------------------------------------------------------
def _build(prep: _Prep, bins: list, cfg: dict, d_out: int):
    """The TabM module for `prep`'s inputs (built the same way at fit and at load)."""
    import rtdl_num_embeddings
    import tabm

    torch = _torch()
    embeddings = None
    if prep.n_num:
        embeddings = rtdl_num_embeddings.PiecewiseLinearEmbeddings(
            [torch.as_tensor(b) for b in bins], cfg["d_embedding"], activation=False, version="B"
        )
    return tabm.TabM.make(
        n_num_features=prep.n_num,
        cat_cardinalities=prep.cardinalities or None,
        d_out=d_out,
        num_embeddings=embeddings,
        arch_type=cfg["arch_type"],
        k=cfg["k"],
        n_blocks=cfg["n_blocks"],
        d_block=cfg["d_block"],
        dropout=cfg["dropout"],
    )


def _flat(net, x_num, x_cat):
    """The flat representation TabM's backbone reads: number embeddings, then one-hots (what
    TabM.forward builds; split out so integrated gradients can walk along it)."""
    parts = []
    if x_num is not None:
        parts.append(net.num_module(x_num).flatten(1))
    if x_cat is not None:
        parts.append(net.cat_module(x_cat).float())
    return parts[0] if len(parts) == 1 else _torch().cat(parts, dim=1)


def _members(net, flat):
    """(rows, k, d_out): each of the k members' outputs."""
    return net.output(net.backbone(net.ensemble_view(flat)))


@dataclass
class _FoldNet:
    """One trained network and what maps the encoded matrix to its inputs and its outputs back
    to raw scores (class-weighting offset, regression target scale)."""

    prep: _Prep
    bins: list[np.ndarray]
    net: object  # tabm.TabM, in eval mode
    baseline: np.ndarray  # mean flat representation of the training rows (IG reference)
    offset: np.ndarray
    y_mean: float = 0.0
    y_std: float = 1.0

    def inputs(self, X: np.ndarray):
        torch = _torch()
        x_num = torch.from_numpy(self.prep.numbers(X)) if self.prep.n_num else None
        x_cat = torch.from_numpy(self.prep.codes(X)) if self.prep.categorical else None
        return x_num, x_cat

    def raw(self, X: np.ndarray, task: str) -> np.ndarray:
        with _torch_session() as torch, torch.inference_mode():
            parts = [self._mean_output(X[i : i + _CHUNK]) for i in range(0, len(X), _CHUNK)]
        out = np.concatenate(parts) if parts else np.zeros((0, len(self.offset)))
        return out + self.offset if task == "multiclass" else out[:, 0] + self.offset[0]

    def _mean_output(self, X: np.ndarray) -> np.ndarray:
        out = _members(self.net, _flat(self.net, *self.inputs(X))).mean(dim=1)
        return out.double().numpy() * self.y_std + self.y_mean  # regression: target scale

    def contributions(self, X: np.ndarray, d_embedding: int) -> np.ndarray:
        """(n, d_out, p) integrated gradients per encoded feature (no bias column)."""
        groups = self.prep.groups(d_embedding)
        to_feature = np.zeros((len(groups), X.shape[1]))
        to_feature[np.arange(len(groups)), groups] = 1.0
        parts = []
        with _torch_session() as torch:
            base = torch.from_numpy(self.baseline)
            for i in range(0, len(X), _CHUNK // _IG_STEPS):
                with torch.inference_mode():
                    flat = _flat(self.net, *self.inputs(X[i : i + _CHUNK // _IG_STEPS]))
                attr = _integrated_gradients(self.net, flat.clone(), base).double().numpy()
                parts.append(np.einsum("ndc,dp->ncp", attr, to_feature) * self.y_std)
        return np.concatenate(parts) if parts else np.zeros((0, len(self.offset), X.shape[1]))

    def to_meta(self) -> dict:
        return {**self.prep.to_meta(), "y_mean": self.y_mean, "y_std": self.y_std}

    def to_bytes(self) -> bytes:
        from safetensors.torch import save

        torch = _torch()
        tensors = {f"net.{k}": v.detach().clone().contiguous()
                   for k, v in self.net.state_dict().items()}  # fmt: skip
        tensors |= {f"bins.{j}": torch.from_numpy(b) for j, b in enumerate(self.bins)}
        arrays = {"median": self.prep.median, "scale": self.prep.scale,
                  "baseline": self.baseline, "offset": self.offset}  # fmt: skip
        tensors |= {f"prep.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in
                    arrays.items()}  # fmt: skip
        return save(tensors)

    @classmethod
    def from_bytes(cls, data: bytes, meta: dict, cfg: dict, task: str) -> _FoldNet:
        """Rebuild the network from its configuration and load the stored tensors into it
        (strict: a missing or extra tensor, or a wrong shape, is an error)."""
        from safetensors.torch import load

        t = load(data)
        keys = ("numeric", "flagged", "categorical", "cardinalities")
        prep = _Prep(*(list(meta[k]) for k in keys), t["prep.median"].numpy(),
                     t["prep.scale"].numpy())  # fmt: skip
        bins = [t[f"bins.{j}"].numpy() for j in range(prep.n_num)]
        offset = t["prep.offset"].numpy()
        d_out = len(offset) if task == "multiclass" else 1
        with _torch_session(0):  # building draws initial weights: keep the caller's RNG
            net = _build(prep, bins, cfg, d_out)
        state = {k[len("net.") :]: v for k, v in t.items() if k.startswith("net.")}
        net.load_state_dict(state, strict=True)
        net.eval()
        baseline = t["prep.baseline"].numpy()
        return cls(prep, bins, net, baseline, offset, float(meta["y_mean"]), float(meta["y_std"]))


def _integrated_gradients(net, flat, base):
    """(rows, dims, d_out): (x - x0) * the mean gradient along the straight path x0 -> x,
    `_IG_STEPS` midpoints. Rows are independent in eval mode, so one backward pass of the
    summed output gives every row's gradient."""
    torch = _torch()
    delta = flat - base
    d_out = net.output.weight.shape[-1]
    total = torch.zeros((*flat.shape, d_out))
    with torch.enable_grad():
        for s in range(_IG_STEPS):
            z = (base + (s + 0.5) / _IG_STEPS * delta).requires_grad_(True)
            out = _members(net, z).mean(dim=1)
            for c in range(d_out):
                (grad,) = torch.autograd.grad(out[:, c].sum(), z, retain_graph=c < d_out - 1)
                total[:, :, c] += grad
    return delta[:, :, None] * total / _IG_STEPS


# -- training ---------------------------------------------------------------------------------
def _weighting(data: TrainData, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Row weights (ones if none) and the raw-score offset that undoes class balancing, as
    the other families do (learners/base.py)."""
    offset = np.zeros(data.n_classes if data.task == "multiclass" else 1)
    weight = np.ones(len(data.y)) if data.weight is None else np.asarray(data.weight, float)
    if data.task != "regression" and mode == "balanced":
        weight = weight * balanced_weights(data.y, data.n_classes)
        offset = prior_offset(data.y, data.n_classes)
    return weight, offset


def _loss(out, y, w, task: str):
    """Weighted mean loss; `out` is (rows, k, d_out) during training (each member learns on
    its own, as in the paper) or (rows, 1, d_out) for the averaged prediction."""
    F = _torch().nn.functional
    k = out.shape[1]
    if task == "binary":
        per = F.binary_cross_entropy_with_logits(
            out[..., 0], y[:, None].expand(-1, k), reduction="none"
        )
    elif task == "multiclass":
        per = F.cross_entropy(out.flatten(0, 1), y.repeat_interleave(k), reduction="none")
        per = per.view(-1, k)
    else:
        per = (out[..., 0] - y[:, None]) ** 2
    return (per.mean(dim=1) * w).sum() / w.sum()


@dataclass
class _Tensors:
    x_num: object
    x_cat: object
    y: object
    w: object

    @classmethod
    def of(cls, fold: _FoldNet, data: TrainData, weight: np.ndarray) -> _Tensors:
        torch = _torch()
        x_num, x_cat = fold.inputs(data.X)
        if data.task == "multiclass":
            y = torch.from_numpy(data.y.astype(np.int64))
        else:
            y = torch.from_numpy(((data.y - fold.y_mean) / fold.y_std).astype(np.float32))
        return cls(x_num, x_cat, y, torch.from_numpy(weight.astype(np.float32)))

    def rows(self, idx):
        x_num = None if self.x_num is None else self.x_num[idx]
        x_cat = None if self.x_cat is None else self.x_cat[idx]
        return x_num, x_cat, self.y[idx], self.w[idx]

    def __len__(self) -> int:
        return len(self.y)


def _new_fold(train: TrainData, cfg: dict, d_out: int, offset: np.ndarray) -> _FoldNet:
    prep = _Prep.fit(train.X, train.categorical)
    bins = _quantile_bins(prep.numbers(train.X), cfg["n_bins"]) if prep.n_num else []
    net = _build(prep, bins, cfg, d_out)
    y_mean, y_std = 0.0, 1.0
    if train.task == "regression":  # the network learns a standardized target
        y_mean, y_std = float(np.mean(train.y)), float(np.std(train.y)) or 1.0
    return _FoldNet(prep, bins, net, np.zeros(0, np.float32), offset, y_mean, y_std)


def _fit_fold(train: TrainData, valid: TrainData, cfg: dict, d_out: int, budget: Budget,
              share_end: float) -> tuple[_FoldNet | None, bool]:  # fmt: skip
    """The fold's network and whether it trained to the end; None for the network when time
    cut its first epoch (an untrained network's scores are noise, not a candidate's)."""
    weight, offset = _weighting(train, cfg["class_weight"])
    vweight, _ = _weighting(valid, cfg["class_weight"])
    fold = _new_fold(train, cfg, d_out, offset)
    tt, tv = _Tensors.of(fold, train, weight), _Tensors.of(fold, valid, vweight)
    finished, trained = _train(fold.net, tt, tv, cfg, train.task, budget, share_end)
    if not trained:
        return None, False
    fold.baseline = _mean_flat(fold, train.X)
    return fold, finished


def _train(net, train: _Tensors, valid: _Tensors, cfg: dict, task: str, budget: Budget,
           share_end: float) -> tuple[bool, bool]:  # fmt: skip
    """AdamW at a constant rate, the best epoch on `valid` kept (patience in epochs, as in the
    paper). Stops before an epoch that would end after min(deadline, `share_end`) — its length
    measured on the previous one — and at once when that time comes mid-epoch. What follows
    the training (one forward pass over all the fold's rows) is kept inside that time too,
    estimated from the validation pass. (finished, trained): finished if it ended by early
    stopping or the epoch cap, not if time cut it; trained if at least one epoch ended."""
    torch = _torch()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    size = cfg["batch_size"] or (256 if len(train) <= 20_000 else 512)
    clock = budget.clock

    tail = 0.0  # seconds of the forward pass over every row of the fold, after training

    def end() -> float:  # read each time: a planned deadline may move
        return min(budget.deadline, share_end) - tail

    def late() -> bool:
        return clock() >= end()

    best, best_state, bad, epoch_s, finished = np.inf, None, 0, 0.0, True
    for _ in range(cfg["max_epochs"]):
        t0 = clock()
        if t0 + epoch_s > end() or not _epoch(net, opt, train, size, task, late):
            finished = False
            break
        t1 = clock()
        value = _valid_loss(net, valid, task)
        tail = (clock() - t1) * (len(train) + len(valid)) / len(valid)
        if value < best:
            best, bad = value, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
        epoch_s = clock() - t0
        if bad >= cfg["patience"]:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return finished, best_state is not None


def _epoch(net, opt, train: _Tensors, size: int, task: str, late) -> bool:
    """One pass over the rows in a seeded random order; False if `late()` cut it."""
    torch = _torch()
    net.train()
    try:
        for idx in torch.randperm(len(train)).split(size):
            if late():
                return False
            x_num, x_cat, y, w = train.rows(idx)
            loss = _loss(_members(net, _flat(net, x_num, x_cat)), y, w, task)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        net.eval()
    return True


def _valid_loss(net, valid: _Tensors, task: str) -> float:
    """Loss of the members' averaged output: what the fold will predict."""
    torch = _torch()
    with torch.inference_mode():
        outs = []
        for i in range(0, len(valid), _CHUNK):
            x_num, x_cat, _, _ = valid.rows(slice(i, i + _CHUNK))
            outs.append(_members(net, _flat(net, x_num, x_cat)).mean(dim=1, keepdim=True))
        return float(_loss(torch.cat(outs), valid.y, valid.w, task))


def _mean_flat(fold: _FoldNet, X: np.ndarray) -> np.ndarray:
    """The integrated-gradients reference: the training rows' mean representation (after the
    learned number embeddings), i.e. an "average row"."""
    torch = _torch()
    with torch.inference_mode():
        total = None
        for i in range(0, len(X), _CHUNK):
            s = _flat(fold.net, *fold.inputs(X[i : i + _CHUNK])).double().sum(dim=0)
            total = s if total is None else total + s
    return (total / len(X)).float().numpy()


def _warm_up(data: TrainData, cfg: dict, d_out: int) -> None:
    """One training step of a throwaway network on a batch of rows, before the time is shared
    out: PyTorch's first backward pass pays one-off set-up costs (about 1 s on 2 loaded cores,
    7 epochs of house_prices' 935 rows) that came out of the first fold's share, which then
    trained half the epochs of the others, or none on a busier machine (an untrained network
    scored the MLP 0.22 RMSE of log price where it scores 0.12 given the time)."""
    rows = data.take(np.arange(min(len(data.y), cfg["batch_size"] or 256)))
    fold = _new_fold(rows, cfg, d_out, np.zeros(d_out))
    batch = _Tensors.of(fold, rows, np.ones(len(rows.y)))
    _epoch(fold.net, _torch().optim.AdamW(fold.net.parameters()), batch, len(batch), data.task,
           lambda: False)  # fmt: skip


# -- the family's entry point and its fitted model --------------------------------------------
def fit_on_folds(data: TrainData, plan: ValidationPlan, params: dict, seed: int,
                 budget: Budget) -> tuple[np.ndarray, MLPFitted, bool]:  # fmt: skip
    """One network per fold of `plan`, early-stopped on the fold's validation rows. Returns
    (out-of-fold raw scores on all rows, 0 where no fold validates; the fold networks as one
    fitted model; complete). Each fold gets an equal share of the time left when it starts;
    complete is False when time cut a fold short or left folds untrained (their rows stay 0;
    a fold whose first epoch the time cut is untrained, and training stops there)."""
    # Import torch and the model before sharing the time out: a first import takes seconds
    # (12 s on a loaded machine) that must not come out of the first fold's share.
    import tabm  # noqa: F401

    cfg = {**CONFIGS[0], **params}
    data = data.transformed(cfg["target_transform"])
    d_out = data.n_classes if data.task == "multiclass" else 1
    if not budget.expired:
        with _torch_session(seed):
            _warm_up(data, cfg, d_out)
    oof = np.zeros((len(data.y), d_out) if data.task == "multiclass" else len(data.y))
    folds, complete = [], True
    for i, (tr, va) in enumerate(plan.folds):
        if budget.expired:
            complete = False
            break
        share_end = budget.clock() + budget.remaining / (len(plan.folds) - i)
        with _torch_session(seed * 1009 + i):
            fold, finished = _fit_fold(data.take(tr), data.take(va), cfg, d_out, budget,
                                       share_end)  # fmt: skip
        if fold is None:  # time cut its first epoch: this fold and those after stay untrained
            complete = False
            break
        oof[va] = fold.raw(data.X[va], data.task)
        folds.append(fold)
        complete = complete and finished
    return oof, MLPFitted(folds, data.task, cfg), complete


@dataclass
class MLPFitted:
    """TabM networks (one per fold) averaged in raw-score space, like LightGBMFitted's fold
    boosters."""

    folds: list[_FoldNet]
    task: str
    config: dict = field(default_factory=lambda: dict(CONFIGS[0]))
    kind: str = "mlp"

    def raw(self, X: np.ndarray) -> np.ndarray:
        if not self.folds:
            raise RuntimeError("this MLP has no trained network: the deadline came first")
        X = np.asarray(X, dtype=np.float64)
        return np.mean([f.raw(X, self.task) for f in self.folds], axis=0)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, p + 1), or (n, k, p + 1) for multiclass: integrated gradients per encoded
        feature averaged over the fold networks; the bias column is raw(X) minus their sum
        (the reference row's score plus the integral's small discretization error), so each
        row sums exactly to raw(X)."""
        X = np.asarray(X, dtype=np.float64)
        d = self.config["d_embedding"]
        per_feature = np.mean([f.contributions(X, d) for f in self.folds], axis=0)
        bias = self.raw(X).reshape(len(X), -1) - per_feature.sum(axis=2)
        out = np.concatenate([per_feature, bias[:, :, None]], axis=2)
        return out if self.task == "multiclass" else out[:, 0, :]

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        """Weights, bins and scaling of each fold as one safetensors file (data only)."""
        files = {f"{prefix}_{i}.safetensors": f.to_bytes() for i, f in enumerate(self.folds)}
        meta = {
            "kind": self.kind,
            "files": list(files),
            "config": self.config,
            "folds": [f.to_meta() for f in self.folds],
        }
        return meta, files

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> MLPFitted:
        """`reader`: registry/formats.py's ArtifactReader. Each file is checked against the
        manifest, then parsed; a file that is not what was saved raises
        ArtifactIntegrityError naming it."""
        cfg = dict(meta["config"])

        def parser(fold_meta: dict):
            return lambda data: _FoldNet.from_bytes(data, fold_meta, cfg, task)

        folds = [
            reader.parse(name, "safetensors file", parser(fm))
            for name, fm in zip(meta["files"], meta["folds"], strict=True)
        ]
        return cls(folds, task, cfg)


@dataclass(frozen=True)
class MLPFamily:
    """The search's view of the MLP (learners/base.py's Family): tuned defaults, no search
    space, fold networks (no refit), early-stopped inside its share of the time left."""

    name: str = "mlp"
    kind: str = "mlp"
    keep: int = 2
    floor: bool = False
    baseline: bool = False
    searched: bool = False
    refits: bool = False
    stops_at_deadline: bool = True

    def available(self) -> str | None:
        return available()

    def configs(self, data: TrainData) -> list[Config]:
        return [Config(f"mlp#{i}", dict(c)) for i, c in enumerate(CONFIGS)]

    def suggest(self, trial, task: str, transforms: list[str]) -> dict | None:
        return None

    def fit(self, folds, config: Config, budget: Budget, trial=None) -> Candidate:
        """Every fold keeps its best epoch on its validation rows, so a fold the deadline cut
        still gives valid out-of-fold scores: the candidate counts when every fold trained."""
        share = Budget(budget.clock() + _SHARE * max(0.0, budget.remaining), budget.clock)
        transform = config.params.get("target_transform", "none")
        oof, fitted, _ = fit_on_folds(folds.data, folds.plan, config.params, folds.seed, share)
        trained = len(fitted.folds) == len(folds.plan.folds)
        return folds.candidate(self.name, config.params, oof, fitted, transform=transform,
                               complete=trained, scored=trained)  # fmt: skip

    def refit(self, cand: Candidate, data: TrainData, seed: int, budget: Budget) -> Candidate:
        return cand

    def load(self, meta: dict, reader, task: str) -> MLPFitted:
        return MLPFitted.load(meta, reader, task)


MLP = MLPFamily()
