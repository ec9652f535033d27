"""What fine-tuning a sentence encoder needs whatever the objective (finetune.py, fewshot.py):
tokenized texts as padded tensors, pooled embeddings with gradients, AdamW with warmup and
linear decay, a step plan that fits the time budget, and progress events.

The encoder being tuned is a copy: the SentenceEncoder it came from (and its embedding cache)
is left as it was. The tuned weights become a new SentenceEncoder (`with_weights`), so the rest
of training (features, heads, storage, ONNX) treats it like any pretrained encoder.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shipml.encoders import deps
from shipml.encoders.sentence import padded

__all__ = ["TuneResult", "Texts", "Trainer", "plan_steps", "fit_loop"]

log = logging.getLogger(__name__)
_WARMUP_SHARE = 0.06
_MAX_GRAD_NORM = 1.0
_MEASURED_STEPS = 4  # steps timed (with one evaluation) before the schedule is planned


@dataclass
class TuneResult:
    """A tuned encoder and how it got there (for notes, the report and tests)."""

    encoder: object  # SentenceEncoder with the tuned weights
    mode: str  # "finetune" or "fewshot"
    steps: int
    planned_steps: int
    epochs: float
    seconds: float
    best_score: float | None
    best_step: int
    stopped: str  # "planned steps done", "early stopping", "time budget"
    history: list[dict] = field(default_factory=list)  # step, loss, valid score

    def summary(self) -> dict:
        return {
            "mode": self.mode,
            "steps": self.steps,
            "planned_steps": self.planned_steps,
            "epochs": round(self.epochs, 2),
            "seconds": round(self.seconds, 1),
            "best_valid_score": self.best_score,
            "best_step": self.best_step,
            "stopped": self.stopped,
            "history": self.history,
        }


class Texts:
    """Texts tokenized once: padded (ids, mask) int64 tensors for any subset of rows."""

    def __init__(self, encoder, texts: list[str]) -> None:
        self.encodings = encoder.tokenize([t if t else " " for t in texts])
        self.lengths = np.array([len(e.ids) for e in self.encodings])
        self.pad = int(encoder.settings.get("pad_id", 0))

    def __len__(self) -> int:
        return len(self.encodings)

    def tensors(self, rows: np.ndarray):
        torch = deps.torch()
        ids, mask = padded([self.encodings[r].ids for r in rows], self.pad)
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def batches(self, rows: np.ndarray, size: int, rng: np.random.Generator | None = None):
        """Batches of `rows`; with `rng`, shuffled, then sorted by length within pools of 50
        batches so a batch carries little padding while the order stays random."""
        rows = np.asarray(rows)
        if rng is None:
            order = rows[np.argsort(self.lengths[rows], kind="stable")]
            return [order[i : i + size] for i in range(0, len(order), size)]
        rows = rng.permutation(rows)
        out = []
        pool = size * 50
        for start in range(0, len(rows), pool):
            chunk = rows[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            out.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
        order = rng.permutation(len(out))
        return [out[i] for i in order]


def plan_steps(
    per_step: float,
    per_eval: float,
    seconds: float,
    steps_per_epoch: int,
    max_epochs: float,
    every_epoch: bool = True,
) -> tuple[int, int]:
    """(total steps, steps between evaluations) that fit in `seconds`: at most `max_epochs`
    epochs, about 6 evaluations (and, with `every_epoch`, at least one per epoch: a run of many
    short epochs, e.g. a CNN on a small image set, is better scored only ~6 times)."""
    most = max(1, int(max_epochs * steps_per_epoch))
    evals = 6
    usable = max(0.0, seconds - evals * per_eval)
    total = max(1, min(most, int(usable / max(per_step, 1e-6))))
    every = math.ceil(total / evals)
    if every_epoch:
        every = min(steps_per_epoch, every)
    return total, max(1, every)


class Trainer:
    """A trainable copy of an encoder's module plus an optional head, with AdamW, warmup and
    linear decay. `loss_fn(batch_rows) -> loss tensor` is given by the objective."""

    def __init__(self, encoder, *, seed: int, lr: float, head=None, head_lr: float = 1e-3):
        torch = deps.torch()
        torch.manual_seed(seed)
        self.torch = torch
        self.encoder = encoder
        self.module = copy.deepcopy(encoder.module)
        self.module.train()
        self.head = head
        decay, no_decay = [], []
        for name, p in self.module.named_parameters():
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
        groups = [
            {"params": decay, "lr": lr, "weight_decay": 0.01},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
        ]
        if head is not None:
            groups.append({"params": list(head.parameters()), "lr": head_lr, "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups)
        self.base_lrs = [g["lr"] for g in groups]
        self.total = 1
        self.step_no = 0

    def pooled(self, ids, mask):
        """Sentence vectors (normalized, with gradients when training): the encoder's module
        runs all its layers (pooling, Dense, Normalize) itself."""
        return self.module(ids, mask)

    def step(self, loss) -> float:
        """One optimizer step with the scheduled learning rate; returns the loss value."""
        warmup = max(1, int(_WARMUP_SHARE * self.total))
        k = self.step_no
        if k < warmup:
            factor = (k + 1) / warmup
        else:
            factor = max(0.0, (self.total - k) / (self.total - warmup + 1))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.torch.nn.utils.clip_grad_norm_(params, _MAX_GRAD_NORM)
        self.optimizer.step()
        self.step_no += 1
        return float(loss.detach())

    def embed(self, texts: Texts, rows: np.ndarray, size: int = 128) -> np.ndarray:
        """Normalized vectors of `rows` without gradients (evaluation)."""
        torch = self.torch
        self.module.eval()
        out = np.empty((len(rows), self.encoder.dim), dtype=np.float32)
        position = {r: i for i, r in enumerate(rows)}
        with torch.inference_mode():
            for batch in texts.batches(rows, size):
                vectors = self.pooled(*texts.tensors(batch)).float().numpy()
                out[[position[r] for r in batch]] = vectors
        self.module.train()
        return out

    def snapshot(self) -> dict:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def tuned_encoder(self, state: dict | None, source: str):
        if state is not None:
            self.module.load_state_dict(state)
        self.module.eval()
        return self.encoder.with_weights(self.module, source=source)


class Clock:
    """Measures seconds per training step and per evaluation as training goes, on `now` (the
    time plan's clock: time.monotonic unless a test injects one)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.started = now()
        self.step_times: list[float] = []
        self.eval_s = 0.0

    def per_step(self) -> float:
        times = self.step_times[1:][-50:] or self.step_times  # the first pays one-off setup
        return float(np.median(times)) if times else 1.0

    @property
    def elapsed(self) -> float:
        return self.now() - self.started


def emit(progress: Callable[[dict], None] | None, **event) -> None:
    if progress is not None:
        progress({"event": "tune", **event})


def fit_loop(
    trainer: Trainer,
    *,
    mode: str,
    batches: Callable[[np.random.Generator], list[np.ndarray]],
    loss_fn: Callable[[np.ndarray], object],
    evaluate: Callable[[], float],
    deadline: float,
    max_epochs: float,
    patience: int | None,
    seed: int,
    source: str,
    progress: Callable[[dict], None] | None = None,
    keep: str = "best",
    clock: Callable[[], float] = time.monotonic,
    every_epoch: bool = True,
) -> TuneResult:
    """Train until the planned steps are done, validation stops improving `patience` times in
    a row (None: never stop early), or the deadline. `keep="best"`: the weights of the best
    validation score (higher is better); `"last"`: the final weights (validation too small to
    choose on; still scored, for progress). `deadline` is in seconds of `clock`.

    `batches(rng)` gives one epoch of batches; `loss_fn(batch)` the loss of one batch;
    `evaluate()` the validation score of the current weights. `every_epoch`: score at least
    once per epoch (else only ~6 times in all, however many epochs)."""
    rng = np.random.default_rng(seed)
    timer = Clock(clock)
    epoch = batches(rng)
    run = _Run(trainer, mode, timer, deadline, len(epoch), progress)
    run.every_epoch = every_epoch
    # Measure a few steps and one evaluation first, then plan the schedule to fit the time.
    trainer.total = 10 * run.steps_per_epoch  # provisional (warmup length) until measured
    queue = list(epoch)
    stopped = "planned steps done"
    while True:
        if not queue:
            queue = list(batches(rng))
        if run.planned is not None and trainer.step_no >= run.planned:
            break
        if clock() >= deadline:
            stopped = "time budget"
            break
        run.step(loss_fn, queue.pop(0))
        if run.planned is None and trainer.step_no == _MEASURED_STEPS:
            run.plan(evaluate, max_epochs)
        if not run.at_eval():
            continue
        score = run.checkpoint(evaluate)
        if not run.improved(score) and patience is not None and run.bad >= patience:
            stopped = "early stopping"
            break
    return run.result(evaluate, keep, source, stopped)


class _Run:
    """One tuning run's schedule and record: timed steps, the plan made on them, the scored
    checkpoints (re-planned when steps run slower than measured), the best weights."""

    def __init__(self, trainer: Trainer, mode: str, timer: Clock, deadline: float,
                 steps_per_epoch: int, progress) -> None:  # fmt: skip
        self.trainer, self.mode, self.timer, self.deadline = trainer, mode, timer, deadline
        self.steps_per_epoch, self.progress = steps_per_epoch, progress
        self.planned: int | None = None
        self.every = steps_per_epoch
        self.every_epoch = True
        self.history: list[dict] = []
        self.losses: list[float] = []
        self.best, self.best_step, self.best_state, self.bad = -math.inf, 0, None, 0

    def step(self, loss_fn: Callable[[np.ndarray], object], batch: np.ndarray) -> None:
        now = self.timer.now
        t0 = now()
        self.losses.append(self.trainer.step(loss_fn(batch)))
        self.timer.step_times.append(now() - t0)

    def timed_evaluation(self, evaluate: Callable[[], float]) -> float:
        t0 = self.timer.now()
        score = evaluate()
        self.timer.eval_s = self.timer.now() - t0
        return score

    def plan(self, evaluate: Callable[[], float], max_epochs: float) -> None:
        """The steps that fit the time left, from the measured steps and one evaluation."""
        trainer, timer = self.trainer, self.timer
        self.timed_evaluation(evaluate)
        left = self.deadline - timer.now()
        epochs_left = max_epochs - trainer.step_no / self.steps_per_epoch  # the 4 measured
        total, self.every = plan_steps(
            timer.per_step(),
            timer.eval_s,
            left,
            self.steps_per_epoch,
            epochs_left,
            self.every_epoch,
        )
        self.planned = trainer.total = total + trainer.step_no
        log.info(
            "%s: %d steps planned (%.2fs/step, %.1fs/evaluation, %d steps/epoch)",
            self.mode, self.planned, timer.per_step(), timer.eval_s, self.steps_per_epoch,
        )  # fmt: skip

    def at_eval(self) -> bool:
        step = self.trainer.step_no
        return self.planned is not None and (step % self.every == 0 or step == self.planned)

    def checkpoint(self, evaluate: Callable[[], float]) -> float:
        """Score the current weights, record it, and fit the rest of the plan to the time."""
        trainer, timer = self.trainer, self.timer
        score = self.timed_evaluation(evaluate)
        entry = {
            "step": trainer.step_no,
            "epoch": round(trainer.step_no / self.steps_per_epoch, 2),
            "loss": round(float(np.mean(self.losses)), 5),
            "valid": round(score, 5),
            "elapsed_s": round(timer.elapsed, 1),
        }
        self.history.append(entry)
        self.losses = []
        self.replan()
        rate = 1.0 / timer.per_step()
        log.info("%s step %d/%d: loss %.4f, valid %.4f (%.2f steps/s)",
                 self.mode, trainer.step_no, self.planned, entry["loss"], score,
                 rate)  # fmt: skip
        emit(self.progress, mode=self.mode, step=trainer.step_no, steps=self.planned,
             valid=score, steps_per_s=rate, elapsed_s=timer.elapsed)  # fmt: skip
        return score

    def replan(self) -> None:
        """Steps ran slower than measured (a busy machine): end the decay before the deadline."""
        trainer, timer, planned = self.trainer, self.timer, self.planned
        evals_left = math.ceil((planned - trainer.step_no) / self.every)
        seconds = self.deadline - timer.now() - evals_left * timer.eval_s
        fit = int(0.95 * seconds / max(timer.per_step(), 1e-6))
        if trainer.step_no < planned:
            self.planned = trainer.total = max(
                trainer.step_no + 1, min(planned, trainer.step_no + fit)
            )

    def improved(self, score: float) -> bool:
        """Keep the weights of a better score; else count one more checkpoint without gain."""
        if score > self.best + 1e-4:
            step, state = self.trainer.step_no, self.trainer.snapshot()
            self.best, self.best_step, self.best_state, self.bad = score, step, state, 0
            return True
        self.bad += 1
        return False

    def result(self, evaluate: Callable[[], float], keep: str, source: str,
               stopped: str) -> TuneResult:  # fmt: skip
        trainer = self.trainer
        best, best_step, best_state = self.best, self.best_step, self.best_state
        if keep == "last" and trainer.step_no:
            history = self.history
            last = history[-1] if history and history[-1]["step"] == trainer.step_no else None
            best = last["valid"] if last else evaluate()
            best_state, best_step = trainer.snapshot(), trainer.step_no
        if best_state is None:  # stopped before the first evaluation: keep what was trained
            best_state, best_step = trainer.snapshot(), trainer.step_no
            best = evaluate() if trainer.step_no else -math.inf
        return TuneResult(
            encoder=trainer.tuned_encoder(best_state, source),
            mode=self.mode,
            steps=trainer.step_no,
            planned_steps=self.planned or trainer.step_no,
            epochs=trainer.step_no / self.steps_per_epoch,
            seconds=self.timer.elapsed,
            best_score=None if not math.isfinite(best) else round(best, 5),
            best_step=best_step,
            stopped=stopped,
            history=self.history,
        )
