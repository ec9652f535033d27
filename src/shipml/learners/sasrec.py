"""A sequential recommender: SASRec (Kang & McAuley, ICDM 2018), trained with cross-entropy.

Each user's items in time order go through a causal Transformer: item embedding + learned
position embedding, a few pre-LN self-attention blocks (torch.nn.TransformerEncoderLayer under
a causal mask), a final LayerNorm; the hidden state after an item scores every item as the next
one through the item embeddings themselves (weight-tied output, plus a per-item bias). Training
uses a softmax cross-entropy over all items at every position instead of SASRec's binary loss
with one negative (Klenitskiy & Vasilev, RecSys 2023: "Turning Dross Into Gold Loss: is BERT4Rec
really better than SASRec?" — the full softmax is what makes SASRec strong); above
`SAMPLED_ABOVE` items the softmax runs over the target and uniformly sampled negatives.

- Sequences are left-padded; the attention mask blocks the future and the padding (a padded
  position sees only itself), and the positions count back from the most recent item, so a
  sequence scores the same whatever else is in its batch.
- Training: each user's sequence cut into windows of `max_len` + 1 from its end, AdamW with a
  linear warm-up and an inverse-square-root decay, validation NDCG@10 on the search's held-out
  events every epoch (or every `eval_every` steps), the best weights kept, stopped when it has
  not improved for `patience` evaluations or at the deadline (checked between batches).
- `refit` retrains on the events given for the number of epochs the validation run found best,
  if the budget has room for it (estimated from the validation run's step time); otherwise the
  validation run's network is kept: it reads every history at scoring time, so it still sees
  the latest events, it only was not trained on them.
- Scores for any sequence, so an unknown visitor with a few items is scored like a user with
  that history; an empty history gets the learned per-item bias (a popularity-like prior).
- Stored as safetensors (the weights) and JSON (the architecture); no pickle.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from shipml._lazy import n_threads
from shipml.learners.base import Budget, Candidate, Config, RankFolds

__all__ = ["available", "DEFAULTS", "SASRecFitted", "SASRecFamily", "SASREC"]

log = logging.getLogger(__name__)

INSTALL_HINT = 'the sasrec family needs PyTorch: pip install "shipml[text]"'
SAMPLED_ABOVE = 50_000  # items: above this, a sampled softmax instead of the full one
_SHARE = 0.8  # of the search time left when it starts: the rest for the families after it
_LOGIT_FLOATS = 2e7  # logits held per training batch (sets the batch size: memory, not speed)
_EVAL_USERS = 2000  # validation users the early stopping reads (all of them when fewer)
_SCORE_BATCH = 256  # sequences per forward pass when scoring
_MIN_LEN = 20  # the shortest window length

DEFAULTS: dict = {
    "hidden": 64,
    "blocks": 2,
    "heads": 2,
    "dropout": 0.2,
    "lr": 2e-3,
    "weight_decay": 0.01,
    # Small batches: under a CPU time budget more updates per second of compute win (on
    # MovieLens-100k, 3 epochs gave NDCG@10 0.072 at 16 a batch, 0.053 at 32, 0.021 at 128).
    "batch_size": 16,  # at most: fewer when the catalogue is large (_LOGIT_FLOATS), not < 8
    # The latest items say most about the next one (learners/recency.py): on MovieLens-100k
    # the validation NDCG@10 plateaued at 0.091 with windows of 200, 0.111 with 50 (a third of
    # the attention's cost, twice the windows an epoch).
    "max_len": 50,  # at most: the data's 90th percentile of history length, at least 20
    "loss": "full",  # or "sampled" (n_negatives uniform negatives), above SAMPLED_ABOVE items
    "n_negatives": 1024,
    "max_epochs": 200,
    "patience": 6,  # evaluations without improvement before stopping
    "eval_every": 200,  # steps, when an epoch is longer
    "warmup_epochs": 1,  # linear warm-up over this many epochs (at most 200 steps)
}


def available() -> str | None:
    """None when PyTorch imports, else the note the search shows when skipping the family."""
    try:
        _torch()
    except ImportError:
        return INSTALL_HINT
    return None


def _torch():
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin
    import torch

    return torch


@contextlib.contextmanager
def _session(seed: int | None = None):
    """At most 2 threads (restored afterwards) and, with a seed, a private seeded random
    state: a fit is deterministic and leaves the caller's torch RNG as it was."""
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


# -- the network ------------------------------------------------------------------------------
@cache
def _net_class():
    """The nn.Module class (defined on first use: torch is imported only then)."""
    torch = _torch()
    nn = torch.nn

    class SASRecNet(nn.Module):
        def __init__(self, arch: dict) -> None:
            super().__init__()
            d, self.max_len, self.heads = arch["hidden"], arch["max_len"], arch["heads"]
            self.item = nn.Embedding(arch["n_items"] + 1, d, padding_idx=0)  # 0: padding
            self.position = nn.Embedding(arch["max_len"], d)
            self.dropout = nn.Dropout(arch["dropout"])
            layer = nn.TransformerEncoderLayer(d, arch["heads"], 4 * d, arch["dropout"],
                                               activation="gelu", batch_first=True,
                                               norm_first=True)  # fmt: skip
            self.blocks = nn.TransformerEncoder(layer, arch["blocks"], enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.bias = nn.Parameter(torch.zeros(arch["n_items"]))
            with torch.no_grad():
                nn.init.normal_(self.item.weight, std=0.02)
                nn.init.normal_(self.position.weight, std=0.02)
                self.item.weight[0].zero_()

        def forward(self, seq):
            """(B, L) left-padded item codes + 1 -> (B, L, hidden) states."""
            length = seq.shape[1]
            pos = torch.arange(self.max_len - length, self.max_len)
            x = self.dropout(self.item(seq) + self.position(pos)[None])
            return self.norm(self.blocks(x, mask=self._mask(seq)))

        def _mask(self, seq):
            """(B * heads, L, L), True where attention is blocked: the future and the padding
            (a padded position attends to itself only, so no row is all blocked)."""
            length = seq.shape[1]
            causal = torch.ones(length, length, dtype=torch.bool).tril()
            allowed = causal[None] & (seq != 0)[:, None, :]
            allowed |= torch.eye(length, dtype=torch.bool)[None]
            return (~allowed).repeat_interleave(self.heads, dim=0)

        def logits(self, h, items=None):
            """Scores of every item (or of the item codes `items`) for states `h`."""
            if items is None:
                return h @ self.item.weight[1:].T + self.bias
            return h @ self.item.weight[items + 1].T + self.bias[items]

    return SASRecNet


def _build(arch: dict):
    return _net_class()(arch)


def _padded(seqs: list[np.ndarray], max_len: int):
    """A (n, L) int64 tensor of item codes + 1, left-padded with 0 to the longest of the last
    `max_len` items of each sequence."""
    torch = _torch()
    seqs = [np.asarray(s[-max_len:], dtype=np.int64) for s in seqs]
    width = max([len(s) for s in seqs] + [1])
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for row, s in enumerate(seqs):
        if len(s):
            out[row, width - len(s) :] = s + 1
    return torch.from_numpy(out)


def _scores(net, seqs: list, max_len: int) -> np.ndarray:
    """(len(seqs), n_items) float32: each sequence's next-item scores from its last state;
    an empty sequence gets the item bias."""
    torch = _torch()
    out = np.empty((len(seqs), net.bias.shape[0]), dtype=np.float32)
    with torch.inference_mode():
        out[:] = net.bias.numpy()
        lengths = np.array([min(len(s), max_len) for s in seqs], dtype=np.int64)
        rows = np.argsort(lengths, kind="stable")  # batches of like lengths: little padding
        rows = rows[lengths[rows] > 0]
        for start in range(0, len(rows), _SCORE_BATCH):
            part = rows[start : start + _SCORE_BATCH]
            h = net(_padded([seqs[i] for i in part], max_len))[:, -1]
            out[part] = net.logits(h).numpy()
    return out


# -- training ---------------------------------------------------------------------------------
def _windows(seqs: list[np.ndarray], max_len: int) -> list[np.ndarray]:
    """Training sequences: each user's items cut into windows of `max_len` + 1 from the end,
    overlapping by one item so every transition is learned once; users with one item only
    have nothing to learn from."""
    out = []
    for s in seqs:
        end = len(s)
        while end >= 2:
            start = max(0, end - max_len - 1)
            out.append(np.asarray(s[start:end]))
            if start == 0:
                break
            end = start + 1
    return out


def _batches(lengths: np.ndarray, size: int, rng: np.random.Generator):
    """Index arrays of `size` windows, epoch after epoch, each epoch in a new seeded order;
    windows of similar lengths go together (sorted within runs of 32 batches), so that little
    of a batch is padding."""
    span = size * 32
    while True:
        order = rng.permutation(len(lengths))
        batches = []
        for start in range(0, len(order), span):
            part = order[start : start + span]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches += [part[i : i + size] for i in range(0, len(part), size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]


def _loss(net, batch, cfg: dict):
    """Cross-entropy of the next item at every position that has one: over every item, or
    over the target and `n_negatives` uniform negatives ("sampled")."""
    torch = _torch()
    F = torch.nn.functional
    inputs, targets = batch[:, :-1], batch[:, 1:]
    keep = targets > 0
    h, y = net(inputs)[keep], targets[keep] - 1
    if cfg["loss"] != "sampled":
        return F.cross_entropy(net.logits(h), y)
    n_items = net.bias.shape[0]
    neg = torch.randint(n_items, (cfg["n_negatives"],))
    pos = (h * net.item.weight[y + 1]).sum(-1) + net.bias[y]
    other = net.logits(h, neg).masked_fill(neg[None, :] == y[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], other], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(y), dtype=torch.long))


@dataclass
class _Run:
    """What one training run ended with."""

    steps: int  # optimizer steps taken, or at the best evaluation when there were some
    best: float = float("nan")  # the best validation value
    best_scores: np.ndarray | None = None  # the validation users' scores at the best step
    complete: bool = True  # False when the deadline cut it
    step_seconds: float = 0.0
    history: list = field(default_factory=list)  # (step, value) per evaluation


def _warmup_steps(cfg: dict, steps_per_epoch: int) -> int:
    return max(1, min(200, int(cfg["warmup_epochs"] * steps_per_epoch)))


def _optimizer(net, cfg: dict, warmup: int):
    """AdamW; the rate rises linearly over `warmup` steps, then decays as 1/sqrt(step)."""
    torch = _torch()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])

    def factor(step: int) -> float:
        step += 1
        return step / warmup if step <= warmup else math.sqrt(warmup / step)

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _train(net, windows: list, cfg: dict, budget: Budget, seed: int, *, max_steps: int,
           check=None) -> _Run:  # fmt: skip
    """Train `net` for at most `max_steps` steps or until `budget`'s deadline (checked before
    every batch, less the time of the last check: a state the deadline cuts is checked once
    more). `check(net) -> (value, scores)`: the validation score, read every epoch (or every
    `eval_every` steps); the best state is restored at the end and training stops when
    `patience` checks in a row did not improve it. Without `check`: the last state."""
    size = int(cfg["batch_size"])
    per_epoch = math.ceil(len(windows) / size)
    every = max(1, min(per_epoch, int(cfg["eval_every"])))
    opt, schedule = _optimizer(net, cfg, int(cfg.get("warmup_steps") or 0)
                               or _warmup_steps(cfg, per_epoch))  # fmt: skip
    run, best_state, bad, step, clock = _Run(0), None, 0, 0, budget.clock
    max_steps = max_steps if windows else 0  # users with one item each: nothing to learn
    t0, tail = clock(), 0.0  # tail: seconds of the last check, kept free before the deadline
    lengths = np.array([len(w) for w in windows])
    batches = _batches(lengths, size, np.random.default_rng(seed))
    net.train()
    while step < max_steps:
        if clock() + tail >= budget.deadline:  # read each time: a planned deadline may move
            run.complete = False
            break
        loss = _loss(net, _padded([windows[i] for i in next(batches)], cfg["max_len"] + 1), cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        step += 1
        if check is not None and (step % every == 0 or step == max_steps):
            t1 = clock()
            better = _evaluate(net, check, run, step)
            tail = clock() - t1
            bad = 0 if better else bad + 1
            best_state = _state(net) if better else best_state
            if bad >= cfg["patience"]:
                break
    run.step_seconds = (clock() - t0) / max(step, 1)
    unchecked = check is not None and (not run.history or run.history[-1][0] != step)
    if unchecked and _evaluate(net, check, run, step):  # the deadline came between checks
        best_state = _state(net)
    if best_state is not None:
        net.load_state_dict(best_state)
    else:  # no check, or none gave a finite value: the last state
        run.steps = step
    net.eval()
    return run


def _evaluate(net, check, run: _Run, step: int) -> bool:
    """Score the current state; True (and `run` updated) when it is the best so far."""
    net.eval()
    value, scores = check(net)
    net.train()
    run.history.append((step, value))
    if np.isfinite(value) and not (value <= run.best):  # the first finite value wins too
        run.best, run.best_scores, run.steps = value, scores, step
        return True
    return False


def _state(net) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _checker(folds: RankFolds, max_len: int, seed: int):
    """`check(net) -> (value, scores)`: the search's metric on (at most `_EVAL_USERS` of) the
    validation users; scores are returned when those are all of them."""
    from shipml.recommend.interactions import RankTargets
    from shipml.scoring import score

    targets = folds.targets
    n = len(targets)
    rows = np.arange(n)
    if n > _EVAL_USERS:
        rows = np.sort(np.random.default_rng(seed).choice(n, _EVAL_USERS, replace=False))
    part = RankTargets(targets.history.take(rows), targets.target[rows])

    def check(net):
        s = _scores(net, part.history.sequences, max_len)
        return score(folds.metric, "recommend", part, s), (s if len(rows) == n else None)

    return check


# -- the fitted model -------------------------------------------------------------------------
@dataclass
class SASRecFitted:
    """A trained network and its architecture (`arch`: n_items, max_len, hidden, blocks, heads,
    dropout). `refit`: whether it was retrained on the events it serves (else it is the
    validation run's network)."""

    net: object  # SASRecNet, in eval mode
    arch: dict
    refit: bool = False
    kind: str = "sasrec"
    step_seconds: float = field(default=0.0, compare=False)  # measured, not stored

    def scores(self, histories) -> np.ndarray:
        with _session():
            return _scores(self.net, list(histories.sequences), self.arch["max_len"])

    def similar(self, items: np.ndarray) -> np.ndarray:
        """Cosine similarity of the item embeddings."""
        with _session():
            emb = self.net.item.weight.detach()[1:].numpy().astype(np.float32)
        norm = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return norm[np.asarray(items, dtype=np.int64)] @ norm.T

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        from safetensors.torch import save

        name = f"{prefix}_sasrec.safetensors"
        tensors = {k: v.detach().clone().contiguous() for k, v in self.net.state_dict().items()}
        meta = {"kind": self.kind, "weights": name, "arch": dict(self.arch), "refit": self.refit}
        return meta, {name: save(tensors)}

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> SASRecFitted:
        """Rebuild the network from `arch` and load the stored tensors into it (strict: a
        missing or extra tensor, or a wrong shape, is an ArtifactIntegrityError)."""
        from shipml.errors import MissingDependency

        if available() is not None:
            raise MissingDependency(f"this model has a sasrec member: {INSTALL_HINT}")
        arch = dict(meta["arch"])

        def parse(data: bytes):
            from safetensors.torch import load

            with _session(0):  # building draws initial weights: keep the caller's RNG
                net = _build(arch)
            net.load_state_dict(load(data), strict=True)
            return net.eval()

        net = reader.parse(meta["weights"], "safetensors file", parse)
        return cls(net, arch, bool(meta.get("refit", False)))


# -- the family -------------------------------------------------------------------------------
def _params(data) -> dict:
    """DEFAULTS scaled to the log: the window length from its users' history lengths, the
    loss from its catalogue size, the batch from the logits it holds."""
    lengths = np.bincount(data.user, minlength=data.n_users)
    lengths = lengths[lengths > 0]
    q90 = float(np.quantile(lengths, 0.9)) if len(lengths) else 1.0
    max_len = int(np.clip(math.ceil(q90), _MIN_LEN, DEFAULTS["max_len"]))
    loss = "sampled" if data.n_items > SAMPLED_ABOVE else "full"
    width = DEFAULTS["n_negatives"] + 1 if loss == "sampled" else data.n_items
    tokens = float(np.mean(np.minimum(lengths, max_len))) if len(lengths) else 1.0
    batch = int(np.clip(_LOGIT_FLOATS / (tokens * width), 8, DEFAULTS["batch_size"]))
    return {**DEFAULTS, "max_len": max_len, "loss": loss, "batch_size": batch}


def _arch(cfg: dict, n_items: int) -> dict:
    keys = ("hidden", "blocks", "heads", "dropout", "max_len")
    return {"n_items": int(n_items), **{k: cfg[k] for k in keys}}


@dataclass(frozen=True)
class SASRecFamily:
    """The search's view of SASRec (learners/base.py's Family): one configuration scaled to the
    data (no search space), early-stopped on the validation users inside its share of the time
    left, refit on all events for the epochs found best when the time plan leaves room."""

    name: str = "sasrec"
    kind: str = "sasrec"
    keep: int = 1
    floor: bool = False
    baseline: bool = False
    searched: bool = False
    refits: bool = True
    stops_at_deadline: bool = True

    def available(self) -> str | None:
        return available()

    def configs(self, data) -> list[Config]:
        return [Config("sasrec", _params(data))]

    def suggest(self, trial, task, transforms):
        return None

    def fit(self, folds: RankFolds, config: Config, budget: Budget, trial=None) -> Candidate:
        cfg = {**DEFAULTS, **config.params}
        share = Budget(budget.clock() + _SHARE * max(0.0, budget.remaining), budget.clock)
        windows = _windows(folds.data.sequences(), cfg["max_len"])
        per_epoch = max(1, math.ceil(len(windows) / cfg["batch_size"]))
        cfg["warmup_steps"] = _warmup_steps(cfg, per_epoch)
        arch = _arch(cfg, folds.data.n_items)
        with _session(folds.seed):
            net = _build(arch)
            check = _checker(folds, cfg["max_len"], folds.seed)
            run = _train(net, windows, cfg, share, folds.seed,
                         max_steps=int(cfg["max_epochs"]) * per_epoch, check=check)  # fmt: skip
        log.info("sasrec: best %s %.4f at step %d of %d (%.3fs a step, %s); checks: %s",
                 folds.metric, run.best, run.steps, run.history[-1][0] if run.history else 0,
                 run.step_seconds, "complete" if run.complete else "cut by the deadline",
                 " ".join(f"{s}:{v:.4f}" for s, v in run.history))  # fmt: skip
        fitted = SASRecFitted(net, arch, step_seconds=run.step_seconds)
        scores = run.best_scores
        if scores is None:
            scores = fitted.scores(folds.targets.history)
        params = {**config.params, "warmup_steps": cfg["warmup_steps"],
                  "epochs": round(run.steps / per_epoch, 3), "steps": run.steps}  # fmt: skip
        return folds.candidate(self.name, params, scores, fitted, complete=run.complete)

    def refit(self, cand: Candidate, data, seed: int, budget: Budget) -> Candidate:
        """Retrain on `data` for the validation run's epochs, when the budget has room for it
        (with a margin); else, or when the deadline still cuts it, `cand` as it was."""
        cfg = {**DEFAULTS, **cand.params}
        windows = _windows(data.sequences(), cfg["max_len"])
        per_epoch = max(1, math.ceil(len(windows) / cfg["batch_size"]))
        steps = max(1, round(float(cfg.get("epochs", 1.0)) * per_epoch))
        old = cand.fitted
        if steps * old.step_seconds * 1.2 > budget.remaining or not windows:
            return cand
        arch = _arch(cfg, data.n_items)
        with _session(seed):
            net = _build(arch)
            run = _train(net, windows, cfg, budget, seed, max_steps=steps)
        if run.complete:
            cand.fitted = SASRecFitted(net, arch, refit=True, step_seconds=run.step_seconds)
        return cand

    def load(self, meta: dict, reader, task: str) -> SASRecFitted:
        return SASRecFitted.load(meta, reader, task)


SASREC = SASRecFamily()
